// SHA-256 per FIPS 180-4.
#include "basin/core/hash.h"

#include "basin/core/cpu.h"
#include "basin/core/error.h"
#include "basin/core/fs.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <immintrin.h>
#include <sys/stat.h>
#include <vector>

namespace basin {
namespace {
constexpr std::uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline std::uint32_t rotr(std::uint32_t x, int n) {
    return (x >> n) | (x << (32 - n));
}

// The SHA extensions (SHA-NI) do two rounds per instruction and the message schedule in two more:
// about 5x the portable code. State registers hold (A, B, E, F) and (C, D, G, H), as the
// instructions expect.
__attribute__((target("sha,sse4.1,ssse3"))) void compress_sha_ni(std::uint32_t state[8], const std::uint8_t* data,
                                                                 std::size_t blocks) {
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0xB1);
    __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4)), 0x1B);
    __m128i abef = _mm_alignr_epi8(dcba, hgfe, 8);
    __m128i cdgh = _mm_blend_epi16(hgfe, dcba, 0xF0);
    for (; blocks > 0; --blocks, data += 64) {
        const __m128i abef_start = abef, cdgh_start = cdgh;
        __m128i w[4];
        for (int g = 0; g < 16; ++g) { // 16 groups of 4 rounds
            __m128i& words = w[g % 4];
            if (g < 4) {
                words = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * g)), byte_swap);
            } else {                          // W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], four at a time
                const __m128i& w4 = w[g % 4]; // W[t-16..t-13], overwritten below
                const __m128i &w3 = w[(g + 1) % 4], w2 = w[(g + 2) % 4], w1 = w[(g + 3) % 4];
                __m128i partial = _mm_sha256msg1_epu32(w4, w3);
                partial = _mm_add_epi32(partial, _mm_alignr_epi8(w1, w2, 4));
                words = _mm_sha256msg2_epu32(partial, w1);
            }
            __m128i message = _mm_add_epi32(words, _mm_loadu_si128(reinterpret_cast<const __m128i*>(kRound + 4 * g)));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, message); // (A, B, E, F) two rounds on
            message = _mm_shuffle_epi32(message, 0x0E);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, message); // the old (A, B, E, F) is (C, D, G, H) now
        }
        abef = _mm_add_epi32(abef, abef_start);
        cdgh = _mm_add_epi32(cdgh, cdgh_start);
    }
    const __m128i a_b_e_f = _mm_shuffle_epi32(abef, 0x1B); // lanes in memory order
    const __m128i g_h_c_d = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(a_b_e_f, g_h_c_d, 0xF0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(g_h_c_d, a_b_e_f, 8));
}

bool sha_ni_allowed = true;

bool has_sha_ni() {
    static const bool present = cpu_has_sha();
    return present && sha_ni_allowed;
}
} // namespace

bool use_sha_extensions(bool allowed) {
    sha_ni_allowed = allowed;
    return has_sha_ni();
}

Sha256::Sha256()
    : state_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19} {}

void Sha256::compress(const std::uint8_t* block) {
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i)
        w[i] = (std::uint32_t(block[4 * i]) << 24) | (std::uint32_t(block[4 * i + 1]) << 16) |
               (std::uint32_t(block[4 * i + 2]) << 8) | std::uint32_t(block[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
        std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3], e = state_[4], f = state_[5],
                  g = state_[6], h = state_[7];
    for (int i = 0; i < 64; ++i) {
        std::uint32_t s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        std::uint32_t ch = (e & f) ^ (~e & g);
        std::uint32_t t1 = h + s1 + ch + kRound[i] + w[i];
        std::uint32_t s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        std::uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        std::uint32_t t2 = s0 + maj;
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state_[0] += a;
    state_[1] += b;
    state_[2] += c;
    state_[3] += d;
    state_[4] += e;
    state_[5] += f;
    state_[6] += g;
    state_[7] += h;
}

void Sha256::update(const void* data, std::size_t size) {
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    total_bytes_ += size;
    if (buffered_ > 0) {
        std::size_t take = std::min(size, sizeof(buffer_) - buffered_);
        std::memcpy(buffer_ + buffered_, bytes, take);
        buffered_ += take;
        bytes += take;
        size -= take;
        if (buffered_ < sizeof(buffer_)) return;
        if (has_sha_ni())
            compress_sha_ni(state_, buffer_, 1);
        else
            compress(buffer_);
        buffered_ = 0;
    }
    if (has_sha_ni() && size >= 64) {
        compress_sha_ni(state_, bytes, size / 64);
        bytes += size / 64 * 64;
        size %= 64;
    }
    for (; size >= 64; size -= 64, bytes += 64)
        compress(bytes);
    std::memcpy(buffer_, bytes, size);
    buffered_ = size;
}

std::string Sha256::hex_digest() {
    std::uint64_t bit_length = total_bytes_ * 8;
    std::uint8_t pad = 0x80;
    update(&pad, 1);
    std::uint8_t zero = 0;
    while (buffered_ != 56)
        update(&zero, 1);
    std::uint8_t length[8];
    for (int i = 0; i < 8; ++i)
        length[i] = std::uint8_t(bit_length >> (56 - 8 * i));
    update(length, 8);
    static const char* digits = "0123456789abcdef";
    std::string hex;
    for (std::uint32_t word : state_)
        for (int shift = 28; shift >= 0; shift -= 4)
            hex += digits[(word >> shift) & 0xf];
    return hex;
}

std::string sha256_hex(const void* data, std::size_t size) {
    Sha256 hasher;
    hasher.update(data, size);
    return hasher.hex_digest();
}

std::string sha256_file(const std::filesystem::path& path) {
    // read in pieces rather than mapped: memory stays at one buffer whatever the file's size
    std::FILE* in = std::fopen(path.c_str(), "rb");
    BASIN_CHECK(in, path.string(), ": cannot open (", std::strerror(errno), ")");
    Sha256 hasher;
    std::vector<std::uint8_t> buffer(1 << 20);
    std::size_t got = 0;
    while ((got = std::fread(buffer.data(), 1, buffer.size(), in)) > 0)
        hasher.update(buffer.data(), got);
    const bool failed = std::ferror(in);
    std::fclose(in);
    BASIN_CHECK(!failed, path.string(), ": read failed");
    return hasher.hex_digest();
}

std::string sha256_file_cached(const std::filesystem::path& path) {
    struct stat st {};
    const auto absolute = std::filesystem::absolute(path).lexically_normal();
    if (::stat(absolute.c_str(), &st) != 0) return sha256_file(path); // reports the error
    const std::string identity = absolute.string() + "|" + std::to_string(st.st_size) + "|" +
                                 std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "|" +
                                 std::to_string(st.st_ino) + "|" + std::to_string(st.st_dev);
    const auto entry =
        cache_root() / "file-hashes" / (sha256_hex(absolute.string().data(), absolute.string().size()) + ".txt");
    std::error_code ec;
    if (std::filesystem::exists(entry, ec)) {
        try {
            const std::string text = read_text_file(entry);
            const auto cut = text.rfind('\n', text.size() - 2);
            if (cut != std::string::npos && text.substr(0, cut) == identity && text.size() == cut + 1 + 64 + 1)
                return text.substr(cut + 1, 64);
        } catch (const std::exception&) {
            // an unreadable entry is replaced below
        }
    }
    const std::string digest = sha256_file(path);
    try {
        std::filesystem::create_directories(entry.parent_path());
        write_text_atomically(entry, identity + "\n" + digest + "\n");
    } catch (const std::exception&) {
        // a read-only or full cache only costs the next run a rehash
    }
    return digest;
}

} // namespace basin
