// Reads tensor bytes of safetensors files with pread into caller buffers, as cat reads: no page
// faults, no mapped pages to drop, and the caller's memory bounded by its buffers. The streaming
// commands (map, merge) read gigabytes this way; touching a mapping instead cost them as much
// kernel time as their arithmetic.
#pragma once

#include "basin/io/safetensors.h"

#include <cstdint>
#include <map>
#include <vector>

namespace basin {

class TensorReader {
  public:
    explicit TensorReader(const std::vector<const SafetensorsFile*>& files);
    ~TensorReader();
    TensorReader(const TensorReader&) = delete;
    TensorReader& operator=(const TensorReader&) = delete;

    // Reads bytes [from, from + bytes) of a tensor's data into out.
    void read(const SafetensorsFile& file, const TensorInfo& info, std::uint64_t from, std::size_t bytes,
              void* out) const;
    // Asks the kernel to start reading those bytes into the page cache (cold files); returns at once.
    void prefetch(const SafetensorsFile& file, const TensorInfo& info, std::uint64_t from, std::size_t bytes) const;

  private:
    int fd_of(const SafetensorsFile& file) const;
    std::map<const SafetensorsFile*, int> fds_;
};

} // namespace basin
