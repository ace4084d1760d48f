// Content hashing (SHA-256) for provenance records and cache keys.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

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

std::string sha256_hex(const void* data, std::size_t size);
std::string sha256_file(const std::filesystem::path& path);

} // namespace basin
