#include "basin/io/tensor_reader.h"

#include "basin/core/error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace basin {

TensorReader::TensorReader(const std::vector<const SafetensorsFile*>& files) {
    try {
        for (const auto* f : files) {
            if (fds_.count(f)) continue;
            const int fd = ::open(f->path().c_str(), O_RDONLY | O_CLOEXEC);
            BASIN_CHECK(fd >= 0, f->path().string(), ": cannot open (", std::strerror(errno), ")");
            fds_[f] = fd;
        }
    } catch (...) {
        for (auto& [file, fd] : fds_)
            ::close(fd);
        throw;
    }
}

TensorReader::~TensorReader() {
    for (auto& [file, fd] : fds_)
        ::close(fd);
}

int TensorReader::fd_of(const SafetensorsFile& file) const {
    const auto it = fds_.find(&file);
    BASIN_CHECK(it != fds_.end(), file.path().string(), ": not opened by this reader");
    return it->second;
}

void TensorReader::read(const SafetensorsFile& file, const TensorInfo& info, std::uint64_t from, std::size_t bytes,
                        void* out) const {
    const int fd = fd_of(file);
    std::uint64_t offset = file.file_offset(info) + from;
    auto* dst = static_cast<std::uint8_t*>(out);
    while (bytes > 0) {
        const ssize_t got = ::pread(fd, dst, bytes, off_t(offset));
        if (got < 0 && errno == EINTR) continue;
        BASIN_CHECK(got > 0, file.path().string(), ": read failed at byte ", offset, " (",
                    got < 0 ? std::strerror(errno) : "the file is shorter than its header says", ")");
        dst += got, offset += std::uint64_t(got), bytes -= std::size_t(got);
    }
}

void TensorReader::prefetch(const SafetensorsFile& file, const TensorInfo& info, std::uint64_t from,
                            std::size_t bytes) const {
    ::posix_fadvise(fd_of(file), off_t(file.file_offset(info) + from), off_t(bytes), POSIX_FADV_WILLNEED);
}

} // namespace basin
