// File helpers: whole-file reads, read-only memory maps, and atomic writes (write to a temporary
// file in the same folder, fsync, rename), so that no reader ever sees a half-written file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace basin {

namespace fs = std::filesystem;

std::string read_text_file(const fs::path& path);

// Read-only mapping of a whole file. Movable, not copyable.
class MappedFile {
  public:
    MappedFile() = default;
    explicit MappedFile(const fs::path& path);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const std::uint8_t* data() const { return data_; }
    std::size_t size() const { return size_; }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
    const std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
};

// Calls write(stream-like file descriptor path) on "<path>.tmp-<pid>", then renames it onto path.
// On any exception the temporary file is removed and the exception propagates.
void write_file_atomically(const fs::path& path,
                           const std::function<void(std::FILE* out)>& write);
void write_text_atomically(const fs::path& path, const std::string& text);

} // namespace basin
