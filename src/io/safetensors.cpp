#include "basin/io/safetensors.h"

#include "basin/core/cpu.h"
#include "basin/core/error.h"
#include "basin/io/torch_bin.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <future>
#include <immintrin.h>
#include <nlohmann/json.hpp>

namespace basin {
namespace {

struct DtypeEntry {
    Dtype dtype;
    const char* name;
    std::size_t size;
};
constexpr DtypeEntry kDtypes[] = {
    {Dtype::BOOL, "BOOL", 1}, {Dtype::U8, "U8", 1},           {Dtype::I8, "I8", 1},           {Dtype::I16, "I16", 2},
    {Dtype::U16, "U16", 2},   {Dtype::F16, "F16", 2},         {Dtype::BF16, "BF16", 2},       {Dtype::I32, "I32", 4},
    {Dtype::U32, "U32", 4},   {Dtype::F32, "F32", 4},         {Dtype::F64, "F64", 8},         {Dtype::I64, "I64", 8},
    {Dtype::U64, "U64", 8},   {Dtype::F8_E4M3, "F8_E4M3", 1}, {Dtype::F8_E5M2, "F8_E5M2", 1},
};

float half_to_float(std::uint16_t h) {
    std::uint32_t sign = std::uint32_t(h & 0x8000) << 16;
    std::uint32_t exponent = (h >> 10) & 0x1f;
    std::uint32_t mantissa = h & 0x3ff;
    std::uint32_t bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else { // subnormal: normalise
            int shift = 0;
            while ((mantissa & 0x400) == 0) {
                mantissa <<= 1;
                ++shift;
            }
            mantissa &= 0x3ff;
            bits = sign | (std::uint32_t(127 - 15 - shift + 1) << 23) | (mantissa << 13);
        }
    } else if (exponent == 0x1f) {
        bits = sign | 0x7f800000 | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float out;
    std::memcpy(&out, &bits, 4);
    return out;
}

std::uint16_t float_to_half(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, 4);
    std::uint32_t sign = (bits >> 16) & 0x8000;
    std::uint32_t abs = bits & 0x7fffffff;
    if (abs >= 0x7f800000) // inf or nan
        return std::uint16_t(sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0));
    if (abs >= 0x477ff000) return std::uint16_t(sign | 0x7c00); // overflows to inf
    if (abs < 0x38800000) { // half subnormal or zero: value = m * 2^-24, m rounded to even
        float magnitude;
        std::memcpy(&magnitude, &abs, 4);
        return std::uint16_t(sign | std::uint32_t(std::nearbyint(magnitude * 16777216.0f)));
    }
    std::uint32_t rounded = abs + 0xfff + ((abs >> 13) & 1); // round to nearest even
    return std::uint16_t(sign | ((rounded - (112u << 23)) >> 13));
}

float bf16_to_float(std::uint16_t h) {
    std::uint32_t bits = std::uint32_t(h) << 16;
    float out;
    std::memcpy(&out, &bits, 4);
    return out;
}

std::uint16_t float_to_bf16(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, 4);
    if ((bits & 0x7fffffff) > 0x7f800000) return std::uint16_t((bits >> 16) | 0x40); // quiet nan
    bits += 0x7fff + ((bits >> 16) & 1);
    return std::uint16_t(bits >> 16);
}

} // namespace

std::size_t dtype_size(Dtype dtype) {
    for (const auto& entry : kDtypes)
        if (entry.dtype == dtype) return entry.size;
    return 0;
}

const char* dtype_name(Dtype dtype) {
    for (const auto& entry : kDtypes)
        if (entry.dtype == dtype) return entry.name;
    return "?";
}

bool parse_dtype(const std::string& name, Dtype* out) {
    for (const auto& entry : kDtypes)
        if (name == entry.name) {
            *out = entry.dtype;
            return true;
        }
    return false;
}

bool is_floating(Dtype dtype) {
    return dtype == Dtype::F16 || dtype == Dtype::BF16 || dtype == Dtype::F32 || dtype == Dtype::F64;
}

// Tensor data need not be aligned: the format does not require the header to be padded (found
// by fuzzing: an odd header length put F16 data at an odd address). Elements are loaded with
// memcpy, which compiles to a plain load where that is allowed.
template <typename T> T load_unaligned(const std::uint8_t* bytes, std::size_t i) {
    T v;
    std::memcpy(&v, bytes + i * sizeof(T), sizeof(T));
    return v;
}

// F16C converts 8 halves per instruction; streaming readers (map, merge) convert gigabytes.
__attribute__((target("avx,f16c"))) void half_to_float_f16c(const std::uint8_t* in, float* out, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i))));
    for (; i < n; ++i)
        out[i] = half_to_float(load_unaligned<std::uint16_t>(in, i));
}

__attribute__((target("avx,f16c"))) void float_to_half_f16c(const float* in, std::uint16_t* out, std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) // round to nearest even, as float_to_half
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i)
        out[i] = float_to_half(in[i]);
}

// dst = src - minus in one pass (map's task vectors): the conversion's output is used while in
// registers instead of being stored and read again.
__attribute__((target("avx,f16c"))) void half_minus_float_f16c(const std::uint8_t* in, const float* minus, float* out,
                                                               std::size_t n) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i,
                         _mm256_sub_ps(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i))),
                                       _mm256_loadu_ps(minus + i)));
    for (; i < n; ++i)
        out[i] = half_to_float(load_unaligned<std::uint16_t>(in, i)) - minus[i];
}

bool have_f16c() {
    static const bool yes = cpu_has_f16c();
    return yes;
}

bool have_avx512bf16() {
    static const bool yes = cpu_has_avx512bf16();
    return yes;
}

// F16 model values minus the float32 base, rounded to bfloat16, 16 at a time in registers.
__attribute__((target("avx512f,avx512bf16"))) void half_minus_bf16_avx512(const std::uint8_t* in, const float* minus,
                                                                          std::uint16_t* out, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        // the zero-masked form: GCC 12 warns of the undefined vector inside _mm512_cvtph_ps
        const __m512 value =
            _mm512_maskz_cvtph_ps(__mmask16(0xffff), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 2 * i)));
        const __m256bh rounded = _mm512_cvtneps_pbh(_mm512_sub_ps(value, _mm512_loadu_ps(minus + i)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), (__m256i)rounded);
    }
    for (; i < n; ++i)
        out[i] = float_to_bf16(half_to_float(load_unaligned<std::uint16_t>(in, i)) - minus[i]);
}

__attribute__((target("avx512f,avx512bf16"))) void float_to_bf16_avx512(const float* in, std::uint16_t* out,
                                                                        std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(in + i)));
    for (; i < n; ++i)
        out[i] = float_to_bf16(in[i]);
}

void convert_to_f32(Dtype dtype, const void* src, float* dst, std::size_t n) {
    if (n == 0) return; // an empty tensor: dst may be null (memcpy's arguments must not be)
    switch (dtype) {
    case Dtype::F32:
        std::memcpy(dst, src, n * 4);
        return;
    case Dtype::F16: {
        const auto* in = static_cast<const std::uint8_t*>(src);
        if (have_f16c()) return half_to_float_f16c(in, dst, n);
        for (std::size_t i = 0; i < n; ++i)
            dst[i] = half_to_float(load_unaligned<std::uint16_t>(in, i));
        return;
    }
    case Dtype::BF16: {
        const auto* in = static_cast<const std::uint8_t*>(src);
        for (std::size_t i = 0; i < n; ++i)
            dst[i] = bf16_to_float(load_unaligned<std::uint16_t>(in, i));
        return;
    }
    case Dtype::F64: {
        const auto* in = static_cast<const std::uint8_t*>(src);
        for (std::size_t i = 0; i < n; ++i)
            dst[i] = float(load_unaligned<double>(in, i));
        return;
    }
    default:
        fail("converting ", dtype_name(dtype), " to F32: not a supported floating dtype");
    }
}

void convert_minus_f32(Dtype dtype, const void* src, const float* minus, float* dst, std::size_t n) {
    if (dtype == Dtype::F16 && have_f16c())
        return half_minus_float_f16c(static_cast<const std::uint8_t*>(src), minus, dst, n);
    convert_to_f32(dtype, src, dst, n);
    for (std::size_t i = 0; i < n; ++i)
        dst[i] -= minus[i];
}

void convert_minus_bf16(Dtype dtype, const void* src, const float* minus, std::uint16_t* dst, std::size_t n) {
    const auto* in = static_cast<const std::uint8_t*>(src);
    if (dtype == Dtype::F16 && have_avx512bf16()) return half_minus_bf16_avx512(in, minus, dst, n);
    constexpr std::size_t kPiece = 1024; // float32 differences, kept in L1 between the two steps
    float difference[kPiece];
    for (std::size_t i = 0; i < n; i += kPiece) {
        const std::size_t count = std::min(kPiece, n - i);
        convert_minus_f32(dtype, in + i * dtype_size(dtype), minus + i, difference, count);
        if (have_avx512bf16())
            float_to_bf16_avx512(difference, dst + i, count);
        else
            for (std::size_t k = 0; k < count; ++k)
                dst[i + k] = float_to_bf16(difference[k]);
    }
}

void convert_from_f32(Dtype dtype, const float* src, void* dst, std::size_t n) {
    if (n == 0) return;
    switch (dtype) {
    case Dtype::F32:
        std::memcpy(dst, src, n * 4);
        return;
    case Dtype::F16: {
        auto* out = static_cast<std::uint16_t*>(dst);
        if (have_f16c()) return float_to_half_f16c(src, out, n);
        for (std::size_t i = 0; i < n; ++i)
            out[i] = float_to_half(src[i]);
        return;
    }
    case Dtype::BF16: {
        auto* out = static_cast<std::uint16_t*>(dst);
        for (std::size_t i = 0; i < n; ++i)
            out[i] = float_to_bf16(src[i]);
        return;
    }
    case Dtype::F64: {
        auto* out = static_cast<double*>(dst);
        for (std::size_t i = 0; i < n; ++i)
            out[i] = src[i];
        return;
    }
    default:
        fail("converting F32 to ", dtype_name(dtype), ": not a supported floating dtype");
    }
}

std::string shape_string(const Shape& shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i)
        out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

std::int64_t shape_numel(const Shape& shape) {
    std::int64_t n = 1;
    for (auto d : shape)
        n *= d;
    return n;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const fs::path& path) {
    if (is_torch_bin_name(path)) return std::unique_ptr<SafetensorsFile>(new SafetensorsFile(path, TorchArchive{}));
    return std::make_unique<SafetensorsFile>(path);
}

SafetensorsFile::SafetensorsFile(const fs::path& path, TorchArchive) : file_(path) {
    buffer_ = file_.data(); // offsets are from the start of the archive
    for (auto& t : read_torch_bin(file_.data(), file_.size(), path.string()))
        tensors_.push_back({t.name, t.dtype, t.shape, t.offset, t.offset + t.nbytes});
    std::sort(tensors_.begin(), tensors_.end(),
              [](const TensorInfo& a, const TensorInfo& b) { return a.begin < b.begin; });
    for (std::size_t i = 0; i < tensors_.size(); ++i)
        index_[tensors_[i].name] = i;
    metadata_["format"] = "pt-zip";
}

SafetensorsFile::SafetensorsFile(const fs::path& path) : file_(path) {
    const std::string where = path.string();
    const std::uint64_t size = file_.size();
    BASIN_CHECK(size >= 8, where, ": truncated safetensors file (", size,
                " bytes; the 8-byte header length is missing)");
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i)
        header_len = (header_len << 8) | file_.data()[i];
    BASIN_CHECK(header_len <= kMaxSafetensorsHeaderBytes, where, ": header length ", header_len,
                " exceeds the limit of ", kMaxSafetensorsHeaderBytes, " bytes");
    BASIN_CHECK(header_len <= size - 8, where, ": header length ", header_len, " is larger than the file (", size,
                " bytes)");
    buffer_ = file_.data() + 8 + header_len;
    const std::uint64_t buffer_size = size - 8 - header_len;

    nlohmann::json header;
    try {
        header = nlohmann::json::parse(file_.data() + 8, file_.data() + 8 + header_len);
    } catch (const nlohmann::json::parse_error& e) {
        fail(where, ": malformed header JSON (", e.what(), ")");
    }
    BASIN_CHECK(header.is_object(), where, ": header must be a JSON object");

    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const auto& entry = it.value();
        if (name == "__metadata__") {
            BASIN_CHECK(entry.is_object(), where, ": __metadata__ must be an object");
            for (auto m = entry.begin(); m != entry.end(); ++m) {
                BASIN_CHECK(m.value().is_string(), where, ": __metadata__ value for '", m.key(), "' must be a string");
                metadata_[m.key()] = m.value().get<std::string>();
            }
            continue;
        }
        const std::string at = where + ": tensor '" + name + "'";
        BASIN_CHECK(entry.is_object(), at, ": entry must be an object");
        BASIN_CHECK(entry.contains("dtype") && entry["dtype"].is_string(), at, ": missing string field 'dtype'");
        TensorInfo info;
        info.name = name;
        const auto dtype = entry["dtype"].get<std::string>();
        BASIN_CHECK(parse_dtype(dtype, &info.dtype), at, ": unknown dtype '", dtype, "'");
        BASIN_CHECK(entry.contains("shape") && entry["shape"].is_array(), at, ": missing array field 'shape'");
        std::uint64_t numel = 1;
        for (const auto& dim : entry["shape"]) {
            BASIN_CHECK(dim.is_number_unsigned() || (dim.is_number_integer() && dim.get<std::int64_t>() >= 0), at,
                        ": shape entries must be non-negative integers");
            auto d = dim.get<std::uint64_t>();
            BASIN_CHECK(d == 0 || numel <= (std::uint64_t(1) << 62) / d, at, ": shape is too large");
            numel *= d;
            info.shape.push_back(static_cast<std::int64_t>(d));
        }
        const auto& offsets = entry.value("data_offsets", nlohmann::json());
        BASIN_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                        offsets[1].is_number_unsigned(),
                    at, ": 'data_offsets' must be two non-negative integers");
        info.begin = offsets[0].get<std::uint64_t>();
        info.end = offsets[1].get<std::uint64_t>();
        BASIN_CHECK(info.begin <= info.end, at, ": data_offsets [", info.begin, ", ", info.end, ") are reversed");
        BASIN_CHECK(info.end <= buffer_size, at, ": data_offsets [", info.begin, ", ", info.end,
                    ") lie outside the data buffer (", buffer_size, " bytes)");
        const std::uint64_t expected = numel * dtype_size(info.dtype);
        BASIN_CHECK(info.nbytes() == expected, at, ": holds ", info.nbytes(), " bytes but shape ",
                    shape_string(info.shape), " x ", dtype, " needs ", expected);
        tensors_.push_back(std::move(info));
    }
    std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    for (std::size_t i = 1; i < tensors_.size(); ++i) {
        const auto& prev = tensors_[i - 1];
        const auto& cur = tensors_[i];
        BASIN_CHECK(cur.begin >= prev.end, where, ": tensors '", prev.name, "' [", prev.begin, ", ", prev.end,
                    ") and '", cur.name, "' [", cur.begin, ", ", cur.end, ") overlap");
    }
    for (std::size_t i = 0; i < tensors_.size(); ++i)
        index_[tensors_[i].name] = i;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::at(const std::string& name) const {
    const TensorInfo* info = find(name);
    BASIN_CHECK(info, path().string(), ": no tensor named '", name, "'");
    return *info;
}

void write_safetensors(const fs::path& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::uint64_t offset = 0;
    for (const auto& t : tensors) {
        BASIN_CHECK(!t.name.empty() && t.name != "__metadata__", path.string(), ": invalid tensor name '", t.name, "'");
        BASIN_CHECK(!header.contains(t.name), path.string(), ": duplicate tensor name '", t.name, "'");
        const std::uint64_t nbytes = std::uint64_t(shape_numel(t.shape)) * dtype_size(t.dtype);
        header[t.name] = {
            {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + nbytes}}};
        offset += nbytes;
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    write_file_atomically(path, [&](std::FILE* out) {
        std::uint8_t length[8];
        for (int i = 0; i < 8; ++i)
            length[i] = std::uint8_t(std::uint64_t(text.size()) >> (8 * i));
        // the first failure's errno: errno is per thread and the writer thread's would be lost
        int error = 0;
        auto wrote = [&error](bool ok) {
            if (!ok && !error) error = errno ? errno : EIO;
            return ok;
        };
        bool ok =
            wrote(std::fwrite(length, 1, 8, out) == 8 && std::fwrite(text.data(), 1, text.size(), out) == text.size());
        auto merge_result = [&](std::future<int>& w) {
            const int e = w.get();
            if (e && !error) error = e;
            return e == 0;
        };
        // Tensors produced on demand are double-buffered: the next one is computed while a
        // second thread writes the previous one.
        std::vector<std::uint8_t> staging[2];
        std::future<int> writing; // 0 or the errno of the failed write
        int next = 0;
        for (const auto& t : tensors) {
            const std::size_t nbytes = std::size_t(shape_numel(t.shape)) * dtype_size(t.dtype);
            const void* bytes = t.data;
            if (!bytes && nbytes > 0) {
                BASIN_CHECK(t.fill, path.string(), ": tensor ", t.name, " has neither data nor a producer");
                auto& buffer = staging[next];
                next ^= 1;
                if (buffer.size() < nbytes) buffer.resize(nbytes);
                t.fill(buffer.data());
                if (writing.valid()) ok = merge_result(writing) && ok;
                if (!ok) break; // the disk is full or gone: stop producing tensors
                writing = std::async(std::launch::async, [out, &buffer, nbytes] {
                    return std::fwrite(buffer.data(), 1, nbytes, out) == nbytes ? 0 : (errno ? errno : EIO);
                });
                continue;
            }
            if (writing.valid()) ok = merge_result(writing) && ok;
            ok = ok && wrote(nbytes == 0 || std::fwrite(bytes, 1, nbytes, out) == nbytes);
        }
        if (writing.valid()) ok = merge_result(writing) && ok;
        BASIN_CHECK(ok, path.string(), ": write failed (", std::strerror(error ? error : EIO), ")");
    });
}

} // namespace basin
