// Content hashing (SHA-256) for provenance records and cache keys.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace basin {

class Sha256 {
  public:
    Sha256();
    void update(const void* data, std::size_t size);
    std::string hex_digest(); // finalises; the object must not be updated afterwards

  private:
    void compress(const std::uint8_t* block);
    std::uint32_t state_[8];
    std::uint8_t buffer_[64];
    std::size_t buffered_ = 0;
    std::uint64_t total_bytes_ = 0;
};

// Whether SHA-256 may use the CPU's SHA extensions (default: yes, when present). Returns whether
// they are in use now. For tests that check both code paths.
bool use_sha_extensions(bool allowed);

// splitmix64's output function: a well-mixed 64-bit value from a counter or a seed.
inline std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// 64-bit FNV-1a of a text (seeds derived from tensor names, independent of their order).
inline std::uint64_t fnv1a64(std::string_view text) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text)
        h = (h ^ c) * 1099511628211ull;
    return h;
}

std::string sha256_hex(const void* data, std::size_t size);
std::string sha256_file(const std::filesystem::path& path);
// sha256_file, remembered in cache_root()/file-hashes under the file's absolute path, size,
// modification time (ns) and inode: a file that changes in any of these is hashed again. Models
// merged or scored many times are read for hashing once. An unwritable cache is not an error.
std::string sha256_file_cached(const std::filesystem::path& path);

} // namespace basin
