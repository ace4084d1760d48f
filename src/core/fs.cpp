#include "basin/core/fs.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basin/core/error.h"

namespace basin {

std::string read_text_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    BASIN_CHECK(in, path.string(), ": cannot open file (", std::strerror(errno), ")");
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

MappedFile::MappedFile(const fs::path& path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY);
    BASIN_CHECK(fd >= 0, path.string(), ": cannot open file (", std::strerror(errno), ")");
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(path.string(), ": not a regular file");
    }
    size_ = static_cast<std::size_t>(st.st_size);
    if (size_ > 0) {
        void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (mapped == MAP_FAILED) {
            ::close(fd);
            fail(path.string(), ": cannot map file (", std::strerror(errno), ")");
        }
        data_ = static_cast<const std::uint8_t*>(mapped);
    }
    ::close(fd);
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
    other.data_ = nullptr;
    other.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
    if (this != &other) {
        if (data_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
        path_ = std::move(other.path_);
        data_ = other.data_;
        size_ = other.size_;
        other.data_ = nullptr;
        other.size_ = 0;
    }
    return *this;
}

void write_file_atomically(const fs::path& path, const std::function<void(std::FILE*)>& write) {
    fs::path tmp = path;
    tmp += ".tmp-" + std::to_string(::getpid());
    std::FILE* out = std::fopen(tmp.c_str(), "wb");
    BASIN_CHECK(out, path.string(), ": cannot create file (", std::strerror(errno), ")");
    try {
        write(out);
        BASIN_CHECK(std::fflush(out) == 0 && ::fsync(::fileno(out)) == 0, path.string(),
                    ": write failed (", std::strerror(errno), ")");
        BASIN_CHECK(std::fclose(out) == 0, path.string(), ": close failed (",
                    std::strerror(errno), ")");
        out = nullptr;
        std::error_code ec;
        fs::rename(tmp, path, ec);
        BASIN_CHECK(!ec, path.string(), ": cannot rename temporary file (", ec.message(), ")");
    } catch (...) {
        if (out) std::fclose(out);
        std::error_code ignored;
        fs::remove(tmp, ignored);
        throw;
    }
}

void write_text_atomically(const fs::path& path, const std::string& text) {
    write_file_atomically(path, [&](std::FILE* out) {
        BASIN_CHECK(std::fwrite(text.data(), 1, text.size(), out) == text.size(), path.string(),
                    ": write failed (", std::strerror(errno), ")");
    });
}

} // namespace basin
