// safetensors reading and writing.
//
// File layout: 8-byte little-endian header length N, N bytes of JSON header, then the data
// buffer. The header maps tensor names to {dtype, shape, data_offsets: [begin, end)} relative to
// the buffer, plus an optional "__metadata__" string->string map. The reader memory-maps the file
// and validates the header completely before any tensor is touched.
#pragma once

#include "basin/core/fs.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace basin {

enum class Dtype { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, F8_E4M3, F8_E5M2 };

std::size_t dtype_size(Dtype dtype);
const char* dtype_name(Dtype dtype);
bool parse_dtype(const std::string& name, Dtype* out);
bool is_floating(Dtype dtype);

// Converts n elements of a floating dtype (F16, BF16, F32, F64) to float32.
void convert_to_f32(Dtype dtype, const void* src, float* dst, std::size_t n);
// dst[i] = float32(src[i]) - minus[i], in one pass where the CPU allows (F16 with F16C).
void convert_minus_f32(Dtype dtype, const void* src, const float* minus, float* dst, std::size_t n);
// dst[i] = bfloat16(float32(src[i]) - minus[i]), round to nearest even (map --precision bf16).
// With AVX-512 BF16 (VCVTNEPS2BF16) subnormal differences become zeros; elsewhere they are kept.
void convert_minus_bf16(Dtype dtype, const void* src, const float* minus, std::uint16_t* dst, std::size_t n);
// Converts n float32 values to F16, BF16, F32 or F64 (round to nearest even).
void convert_from_f32(Dtype dtype, const float* src, void* dst, std::size_t n);

using Shape = std::vector<std::int64_t>;
std::string shape_string(const Shape& shape);
std::int64_t shape_numel(const Shape& shape);

struct TensorInfo {
    std::string name;
    Dtype dtype = Dtype::F32;
    Shape shape;
    std::uint64_t begin = 0; // offsets into the data buffer
    std::uint64_t end = 0;
    std::int64_t numel() const { return shape_numel(shape); }
    std::uint64_t nbytes() const { return end - begin; }
};

constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

class SafetensorsFile {
  public:
    explicit SafetensorsFile(const fs::path& path);
    // A tensor file by its name: a torch.save archive for .bin/.pt/.pth (read in place without
    // running its pickle: io/torch_bin.h; its metadata says "format": "pt-zip"), else safetensors.
    static std::unique_ptr<SafetensorsFile> open(const fs::path& path);

    const fs::path& path() const { return file_.path(); }
    const std::vector<TensorInfo>& tensors() const { return tensors_; } // in offset order
    const TensorInfo* find(const std::string& name) const;
    const TensorInfo& at(const std::string& name) const; // throws naming the file
    const std::uint8_t* data(const TensorInfo& info) const { return buffer_ + info.begin; }
    // Where a tensor's bytes start in the file (for readers that use pread instead of the mapping).
    std::uint64_t file_offset(const TensorInfo& info) const {
        return std::uint64_t(buffer_ - file_.data()) + info.begin;
    }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    std::uint64_t file_size() const { return file_.size(); }

  private:
    struct TorchArchive {};
    SafetensorsFile(const fs::path& path, TorchArchive);

    MappedFile file_;
    const std::uint8_t* buffer_ = nullptr;
    std::vector<TensorInfo> tensors_;
    std::unordered_map<std::string, std::size_t> index_;
    std::map<std::string, std::string> metadata_;
};

// A tensor to be written: its bytes must hold numel * dtype_size bytes.
struct TensorView {
    std::string name;
    Dtype dtype = Dtype::F32;
    Shape shape;
    const void* data = nullptr;
    // Without data: called to produce the bytes into a buffer of numel * dtype_size bytes just
    // before they are written, so a writer holds one tensor at a time (merges stream this way).
    std::function<void(void* bytes)> fill;
};

// Writes a spec-conformant file (header padded with spaces to a multiple of 8) atomically.
void write_safetensors(const fs::path& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

} // namespace basin
