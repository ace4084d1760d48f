#include "basin/core/fs.h"

#include "basin/core/error.h"
#include "basin/core/interrupt.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace basin {

std::string read_text_file(const fs::path& path, std::uint64_t max_bytes) {
    std::FILE* in = std::fopen(path.c_str(), "rb");
    BASIN_CHECK(in, path.string(), ": cannot open file (", std::strerror(errno), ")");
    auto too_large = [&] {
        std::fclose(in);
        fail(path.string(), ": larger than ", max_bytes >> 20, " MiB, the most basin reads for this kind of file");
    };
    struct stat st {};
    if (::fstat(::fileno(in), &st) == 0 && S_ISREG(st.st_mode) && std::uint64_t(st.st_size) > max_bytes) too_large();
    std::string text;
    char buffer[1 << 16];
    std::size_t got;
    while ((got = std::fread(buffer, 1, sizeof buffer, in)) > 0) {
        if (text.size() + got > max_bytes) too_large(); // a file growing or not regular
        text.append(buffer, got);
    }
    const bool failed = std::ferror(in);
    std::fclose(in);
    BASIN_CHECK(!failed, path.string(), ": read failed (", std::strerror(errno), ")");
    return text;
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
        BASIN_CHECK(std::fflush(out) == 0 && ::fsync(::fileno(out)) == 0, path.string(), ": write failed (",
                    std::strerror(errno), ")");
        BASIN_CHECK(std::fclose(out) == 0, path.string(), ": close failed (", std::strerror(errno), ")");
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
        BASIN_CHECK(std::fwrite(text.data(), 1, text.size(), out) == text.size(), path.string(), ": write failed (",
                    std::strerror(errno), ")");
    });
}

fs::path canonical_or_absolute(const fs::path& p) {
    std::error_code ec;
    auto c = fs::weakly_canonical(p, ec);
    return ec ? fs::absolute(p).lexically_normal() : c;
}

fs::path check_output_folder(const fs::path& out_arg, bool overwrite, const fs::path& input_model) {
    BASIN_CHECK(!out_arg.empty(), "--out is required");
    const fs::path out = fs::absolute(out_arg).lexically_normal();
    if (!input_model.empty())
        BASIN_CHECK(out != fs::absolute(input_model).lexically_normal(), "--out ", out.string(),
                    " is the input model's folder");
    if (fs::exists(out)) {
        BASIN_CHECK(fs::is_directory(out), out.string(), ": exists and is not a folder");
        BASIN_CHECK(overwrite || fs::is_empty(out), out.string(),
                    ": output folder exists and is not empty (pass --overwrite to replace it)");
    }
    const fs::path parent = out.parent_path();
    std::error_code ec;
    fs::create_directories(parent, ec);
    const bool writable = !ec && ::access(parent.c_str(), W_OK) == 0;
    BASIN_CHECK(writable, parent.string(), ": cannot write the output folder here (",
                ec ? ec.message() : std::string(std::strerror(errno)), ")");
    return out;
}

void write_folder_atomically(const fs::path& out, const std::function<void(const fs::path&)>& fill) {
    fs::path tmp = out;
    tmp += ".tmp-" + std::to_string(::getpid());
    fs::remove_all(tmp);
    try {
        fs::create_directories(tmp);
        fill(tmp);
        if (fs::exists(out)) fs::remove_all(out);
        fs::rename(tmp, out);
    } catch (const std::exception& e) {
        std::error_code ignored;
        fs::remove_all(tmp, ignored);
        if (dynamic_cast<const Interrupted*>(&e)) throw; // a clean stop, not a write error
        fail("writing ", out.string(), ": ", e.what());
    }
}

namespace {
std::uint64_t status_kb(const char* key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    const std::size_t n = std::strlen(key);
    while (std::getline(in, line))
        if (line.compare(0, n, key) == 0) return std::strtoull(line.c_str() + n, nullptr, 10);
    return 0;
}
} // namespace

std::uint64_t current_rss_bytes() {
    return status_kb("VmRSS:") * 1024;
}
std::uint64_t peak_rss_bytes() {
    return status_kb("VmHWM:") * 1024;
}

fs::path cache_root() {
    if (const char* dir = std::getenv("BASIN_CACHE")) return dir;
    if (const char* xdg = std::getenv("XDG_CACHE_HOME")) return fs::path(xdg) / "basin";
    if (const char* home = std::getenv("HOME")) return fs::path(home) / ".cache" / "basin";
    return fs::temp_directory_path() / "basin-cache";
}

} // namespace basin
