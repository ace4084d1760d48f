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

// Reads a whole file, refusing one larger than max_bytes (checked while reading, so a huge or
// endless file costs at most max_bytes of memory). The limits for the metadata files basin
// reads are in core/limits.h.
std::string read_text_file(const fs::path& path, std::uint64_t max_bytes = std::uint64_t(256) << 20);

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
void write_file_atomically(const fs::path& path, const std::function<void(std::FILE* out)>& write);
void write_text_atomically(const fs::path& path, const std::string& text);

// The path with symbolic links, "." and ".." resolved as far as it exists (weakly_canonical), else
// absolute and normalised: one spelling of a path, for comparing paths given in different ways.
fs::path canonical_or_absolute(const fs::path& p);

// Checks an output folder before any work: refuses a non-empty folder unless overwrite, and a
// parent that cannot be written. Returns the absolute path.
fs::path check_output_folder(const fs::path& out, bool overwrite, const fs::path& input_model = {});

// Writes a folder through `fill(tmp)` into a temporary sibling, then renames it onto out, so a
// killed run never leaves a folder that looks complete.
void write_folder_atomically(const fs::path& out, const std::function<void(const fs::path&)>& fill);

// basin's cache folder: $BASIN_CACHE, else $XDG_CACHE_HOME/basin, else ~/.cache/basin, else a
// folder in the system's temporary directory.
fs::path cache_root();

// Resident memory of this process now and at its peak (VmRSS, VmHWM), in bytes; 0 if unknown.
std::uint64_t current_rss_bytes();
std::uint64_t peak_rss_bytes();

} // namespace basin
