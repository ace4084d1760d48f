#include "basin/core/hash.h"
#include "basin/io/checkpoint.h"
#include "basin/io/safetensors.h"
#include "test_util.h"

#include <cmath>
#include <cstring>
#include <random>

using namespace basin;
using basin::testing::TempDir;
using basin::testing::write_bytes;

namespace {

std::string header_file(const std::string& header, std::size_t data_bytes) {
    std::string out(8, '\0');
    std::uint64_t n = header.size();
    for (int i = 0; i < 8; ++i)
        out[std::size_t(i)] = char((n >> (8 * i)) & 0xff);
    return out + header + std::string(data_bytes, '\0');
}

} // namespace

TEST(Safetensors, RoundTripKeepsTensorsAndMetadata) {
    TempDir dir;
    std::vector<float> a = {1.5f, -2.25f, 3.0f, 0.0f, 1e-3f, -7.0f};
    std::vector<std::int64_t> b = {1, 2, 3};
    write_safetensors(dir / "x.safetensors",
                      {{"layer.a", Dtype::F32, {2, 3}, a.data()}, {"b", Dtype::I64, {3}, b.data()}},
                      {{"format", "pt"}, {"note", "hello"}});
    SafetensorsFile file(dir / "x.safetensors");
    ASSERT_EQ(file.tensors().size(), 2u);
    const auto& info = file.at("layer.a");
    EXPECT_EQ(info.shape, (Shape{2, 3}));
    EXPECT_EQ(info.dtype, Dtype::F32);
    EXPECT_EQ(std::memcmp(file.data(info), a.data(), a.size() * 4), 0);
    EXPECT_EQ(std::memcmp(file.data(file.at("b")), b.data(), 24), 0);
    EXPECT_EQ(file.metadata().at("note"), "hello");
    // header padded to a multiple of 8
    std::uint64_t n = 0;
    std::string bytes = read_text_file(dir / "x.safetensors");
    for (int i = 7; i >= 0; --i)
        n = (n << 8) | std::uint8_t(bytes[std::size_t(i)]);
    EXPECT_EQ(n % 8, 0u);
    EXPECT_FALSE(std::filesystem::exists(dir / ("x.safetensors.tmp-" + std::to_string(::getpid()))));
}

TEST(Safetensors, HalfAndBfloatConversionRoundsToNearestEven) {
    std::vector<float> values = {0.0f, 1.0f, -2.0f, 65504.0f, 1e-7f, 3.14159f, 1.0009765625f, 70000.0f, 6e-8f};
    std::vector<std::uint16_t> half(values.size()), bf(values.size());
    convert_from_f32(Dtype::F16, values.data(), half.data(), values.size());
    convert_from_f32(Dtype::BF16, values.data(), bf.data(), values.size());
    EXPECT_EQ(half[1], 0x3c00);
    EXPECT_EQ(half[2], 0xc000);
    EXPECT_EQ(half[3], 0x7bff); // largest half
    EXPECT_EQ(half[7], 0x7c00); // overflow -> inf
    EXPECT_EQ(half[8], 0x0001); // 6e-8 rounds to the smallest subnormal (5.96e-8)
    EXPECT_EQ(bf[1], 0x3f80);
    std::vector<float> back(values.size());
    convert_to_f32(Dtype::F16, half.data(), back.data(), values.size());
    EXPECT_NEAR(back[5], 3.14159f, 1e-3);
    EXPECT_FLOAT_EQ(back[6], 1.0009765625f); // exactly representable
    convert_to_f32(Dtype::BF16, bf.data(), back.data(), values.size());
    EXPECT_NEAR(back[5], 3.14159f, 2e-2);
    std::uint16_t inf_bits = 0x7c00, subnormal_bits = 0x0001;
    float inf = 0, subnormal = 0;
    convert_to_f32(Dtype::F16, &inf_bits, &inf, 1);
    convert_to_f32(Dtype::F16, &subnormal_bits, &subnormal, 1);
    EXPECT_TRUE(std::isinf(inf));
    EXPECT_FLOAT_EQ(subnormal, 5.9604645e-8f);
}

TEST(Safetensors, RejectsTruncatedFile) {
    TempDir dir;
    write_bytes(dir / "t.safetensors", "abc");
    EXPECT_ERROR_CONTAINS(SafetensorsFile(dir / "t.safetensors"), "t.safetensors", "truncated");
}

TEST(Safetensors, RejectsHeaderLongerThanFile) {
    TempDir dir;
    std::string bytes = header_file("{}", 0);
    bytes[0] = char(200);
    write_bytes(dir / "h.safetensors", bytes);
    EXPECT_ERROR_CONTAINS(SafetensorsFile(dir / "h.safetensors"), "h.safetensors", "header length 200",
                          "larger than the file");
}

TEST(Safetensors, RejectsAbsurdHeaderLength) {
    TempDir dir;
    std::string bytes(16, '\0');
    bytes[7] = char(0x7f);
    write_bytes(dir / "big.safetensors", bytes);
    EXPECT_ERROR_CONTAINS(SafetensorsFile(dir / "big.safetensors"), "exceeds the limit");
}

TEST(Safetensors, RejectsMalformedHeaderJson) {
    TempDir dir;
    write_bytes(dir / "m.safetensors", header_file("{\"a\": [", 0));
    EXPECT_ERROR_CONTAINS(SafetensorsFile(dir / "m.safetensors"), "m.safetensors", "malformed header JSON");
}

TEST(Safetensors, RejectsUnknownDtype) {
    TempDir dir;
    write_bytes(dir / "d.safetensors", header_file(R"({"w":{"dtype":"F12","shape":[2],"data_offsets":[0,4]}})", 4));
    EXPECT_ERROR_CONTAINS(SafetensorsFile(dir / "d.safetensors"), "tensor 'w'", "unknown dtype 'F12'");
}

TEST(Safetensors, RejectsOverlappingOffsets) {
    TempDir dir;
    write_bytes(dir / "o.safetensors", header_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                                   R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                                   12));
    EXPECT_ERROR_CONTAINS(SafetensorsFile(dir / "o.safetensors"), "'a'", "'b'", "overlap");
}

TEST(Safetensors, RejectsOffsetsOutsideTheBuffer) {
    TempDir dir;
    write_bytes(dir / "r.safetensors", header_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8));
    EXPECT_ERROR_CONTAINS(SafetensorsFile(dir / "r.safetensors"), "tensor 'a'", "outside the data buffer");
}

TEST(Safetensors, RejectsSizeThatDisagreesWithShape) {
    TempDir dir;
    write_bytes(dir / "s.safetensors", header_file(R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})", 8));
    EXPECT_ERROR_CONTAINS(SafetensorsFile(dir / "s.safetensors"), "holds 8 bytes", "needs 6");
}

TEST(Checkpoint, ShardedWriteAndReadGiveTheSameTensors) {
    TempDir dir;
    std::vector<std::vector<float>> data;
    std::vector<TensorView> views;
    for (int i = 0; i < 5; ++i) {
        data.emplace_back(100, float(i));
        views.push_back({"t" + std::to_string(i), Dtype::F32, {10, 10}, data.back().data()});
    }
    write_checkpoint_weights(dir.path(), views, {{"format", "pt"}}, /*max_shard_bytes=*/500);
    ASSERT_TRUE(std::filesystem::exists(dir / "model.safetensors.index.json"));
    ASSERT_TRUE(std::filesystem::exists(dir / "model-00005-of-00005.safetensors"));
    CheckpointTensors tensors(dir.path());
    EXPECT_EQ(tensors.files().size(), 5u);
    ASSERT_EQ(tensors.names().size(), 5u);
    for (int i = 0; i < 5; ++i) {
        const auto* ref = tensors.find("t" + std::to_string(i));
        ASSERT_NE(ref, nullptr);
        EXPECT_EQ(reinterpret_cast<const float*>(ref->data())[42], float(i));
    }
}

TEST(Checkpoint, IndexNamingAMissingTensorIsAnError) {
    TempDir dir;
    std::vector<float> x(4, 1.0f);
    write_safetensors(dir / "model-00001-of-00001.safetensors", {{"a", Dtype::F32, {4}, x.data()}});
    write_bytes(
        dir / "model.safetensors.index.json",
        R"({"weight_map": {"a": "model-00001-of-00001.safetensors", "b": "model-00001-of-00001.safetensors"}})");
    EXPECT_ERROR_CONTAINS(CheckpointTensors(dir.path()), "tensor 'b'", "does not contain it");
    write_bytes(dir / "model.safetensors.index.json", R"({"weight_map": {"a": "../evil.safetensors"}})");
    EXPECT_ERROR_CONTAINS(CheckpointTensors(dir.path()), "plain file name");
}

TEST(Checkpoint, FolderWithoutWeightsNamesWhatWasLookedFor) {
    TempDir dir;
    EXPECT_ERROR_CONTAINS(CheckpointTensors(dir.path()), "no model.safetensors", "pytorch_model.bin found");
    // a pytorch_model.bin is now read (io/torch_bin.h); one that is not a torch.save archive is
    // refused naming the file
    write_bytes(dir / "pytorch_model.bin", "x");
    EXPECT_ERROR_CONTAINS(CheckpointTensors(dir.path()), "pytorch_model.bin", "not a zip archive");
}

TEST(Hash, ShaExtensionsAndPortableCodeAgree) {
    std::string data(100'003, '\0');
    std::uint32_t x = 12345;
    for (auto& c : data)
        c = char((x = x * 1664525u + 1013904223u) >> 24);
    const bool accelerated = use_sha_extensions(true);
    std::vector<std::string> fast, portable;
    for (std::size_t n : {0, 1, 55, 56, 63, 64, 65, 127, 128, 1000, 100'003})
        fast.push_back(sha256_hex(data.data(), n));
    use_sha_extensions(false);
    for (std::size_t n : {0, 1, 55, 56, 63, 64, 65, 127, 128, 1000, 100'003})
        portable.push_back(sha256_hex(data.data(), n));
    use_sha_extensions(true);
    EXPECT_EQ(fast, portable);
    if (!accelerated) GTEST_SKIP() << "this CPU has no SHA extensions: only the portable code ran";
}

TEST(Hash, Sha256MatchesKnownVectors) {
    EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    std::string million(1000000, 'a');
    EXPECT_EQ(sha256_hex(million.data(), million.size()),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Found by fuzzing: the format does not require an aligned data buffer; an odd header length puts
// 16-bit data at an odd address, which must still read correctly (no misaligned typed loads).
TEST(Safetensors, ReadsTensorDataAtAnOddAddress) {
    TempDir dir;
    const std::string header = R"({"h":{"dtype":"F16","shape":[9],"data_offsets":[0,18]},)"
                               R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[18,24]},)"
                               R"("d":{"dtype":"F64","shape":[2],"data_offsets":[24,40]}})";
    std::string file = header_file(header.size() % 2 ? header : header + " ", 0);
    ASSERT_EQ(file.size() % 2, 1u) << "the data must start at an odd offset for this test";
    const float halves[9] = {1.0f, -2.0f, 0.5f, 65504.0f, 0.25f, 3.0f, -0.125f, 1024.0f, 7.0f};
    std::uint16_t h[9], b[3];
    const float bfloats[3] = {1.5f, -4.0f, 0.0f};
    convert_from_f32(Dtype::F16, halves, h, 9);
    convert_from_f32(Dtype::BF16, bfloats, b, 3);
    file.append(reinterpret_cast<const char*>(h), sizeof h);
    file.append(reinterpret_cast<const char*>(b), sizeof b);
    for (double v : {2.25, -8.5})
        file.append(reinterpret_cast<const char*>(&v), 8);
    write_bytes(dir / "odd.safetensors", file);
    SafetensorsFile st(dir / "odd.safetensors");
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(st.data(*st.find("h"))) % 2, 1u);
    std::vector<float> out(9);
    convert_to_f32(Dtype::F16, st.data(*st.find("h")), out.data(), 9); // 8 vectorised, 1 scalar
    for (int i = 0; i < 9; ++i)
        EXPECT_EQ(out[std::size_t(i)], halves[i]);
    convert_to_f32(Dtype::BF16, st.data(*st.find("b")), out.data(), 3);
    EXPECT_EQ(out[0], 1.5f);
    EXPECT_EQ(out[1], -4.0f);
    convert_to_f32(Dtype::F64, st.data(*st.find("d")), out.data(), 2);
    EXPECT_EQ(out[0], 2.25f);
    EXPECT_EQ(out[1], -8.5f);
}

// map forms task vectors with one fused pass (F16C for F16); it must equal converting, then
// subtracting, for every dtype and for lengths that leave a scalar tail.
// map --precision bf16: the fused path (AVX-512 BF16 where the CPU has it) rounds as
// convert_from_f32 to BF16 does (round to nearest even) for every stored dtype and length.
TEST(Safetensors, ConvertMinusBf16EqualsSubtractThenRound) {
    std::mt19937 rng(11);
    std::normal_distribution<float> normal(0.0f, 0.05f);
    const std::size_t count = 1000;
    std::vector<float> values(count), minus(count);
    for (std::size_t i = 0; i < count; ++i)
        values[i] = normal(rng), minus[i] = normal(rng);
    for (Dtype dtype : {Dtype::F16, Dtype::BF16, Dtype::F32, Dtype::F64}) {
        std::vector<double> aligned(count);
        convert_from_f32(dtype, values.data(), aligned.data(), count);
        std::vector<std::uint8_t> stored(count * dtype_size(dtype) + 1);
        void* at = stored.data() + 1; // odd address
        std::memcpy(at, aligned.data(), count * dtype_size(dtype));
        for (std::size_t n : {count, std::size_t(16), std::size_t(37), std::size_t(3)}) {
            std::vector<float> difference(n);
            convert_minus_f32(dtype, at, minus.data(), difference.data(), n);
            std::vector<std::uint16_t> want(n), fused(n);
            convert_from_f32(Dtype::BF16, difference.data(), want.data(), n);
            convert_minus_bf16(dtype, at, minus.data(), fused.data(), n);
            for (std::size_t i = 0; i < n; ++i)
                ASSERT_EQ(fused[i], want[i])
                    << dtype_name(dtype) << " element " << i << " of " << n << ": " << difference[i];
        }
    }
}

TEST(Safetensors, ConvertMinusEqualsConvertThenSubtract) {
    std::vector<float> values(37), minus(37);
    for (std::size_t i = 0; i < values.size(); ++i) {
        values[i] = std::ldexp(float(int(i * 7919 % 97) - 48), -int(i % 9)); // exact in F16 and BF16
        minus[i] = 0.001f * float(i) - 0.02f;
    }
    for (Dtype dtype : {Dtype::F16, Dtype::BF16, Dtype::F32, Dtype::F64}) {
        std::vector<double> aligned(values.size()); // room for any dtype
        convert_from_f32(dtype, values.data(), aligned.data(), values.size());
        std::vector<std::uint8_t> stored(values.size() * dtype_size(dtype) + 1);
        void* at = stored.data() + 1; // odd address, as in a file whose header has odd length
        std::memcpy(at, aligned.data(), values.size() * dtype_size(dtype));
        for (std::size_t n : {std::size_t(37), std::size_t(16), std::size_t(5)}) {
            std::vector<float> fused(n), want(n);
            convert_minus_f32(dtype, at, minus.data(), fused.data(), n);
            convert_to_f32(dtype, at, want.data(), n);
            for (std::size_t i = 0; i < n; ++i) {
                EXPECT_EQ(want[i], values[i]) << dtype_name(dtype);
                EXPECT_EQ(fused[i], want[i] - minus[i]) << dtype_name(dtype) << " element " << i << " of " << n;
            }
        }
    }
}

TEST(Safetensors, EmptyTensorsConvertWithoutTouchingTheBuffers) {
    // a zero-element tensor gives a null destination (an empty vector's data()): found by the
    // torch_bin fuzzer, where memcpy(nullptr, src, 0) is undefined behaviour (UBSan in sanitize.sh)
    const float one = 1.0f;
    for (Dtype d : {Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::F64}) {
        basin::convert_to_f32(d, &one, nullptr, 0);
        basin::convert_from_f32(d, &one, nullptr, 0);
    }
    SUCCEED();
}
