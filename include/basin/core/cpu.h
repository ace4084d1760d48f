// CPU features for run-time dispatch, read with CPUID (works with GCC and clang alike).
#pragma once

#include <cpuid.h>

namespace basin {

// SSE4.1 (leaf 1 ECX bit 19) and the SHA extensions (leaf 7 EBX bit 29).
inline bool cpu_has_sha() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 19))) return false;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
}

// AVX and F16C (leaf 1 ECX bits 28 and 29), with the OS saving AVX state (OSXSAVE, XCR0 bits 1-2).
inline bool cpu_has_f16c() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const unsigned need = (1u << 27) | (1u << 28) | (1u << 29);
    if ((c & need) != need) return false;
    unsigned xcr0 = 0, high = 0;
    __asm__("xgetbv" : "=a"(xcr0), "=d"(high) : "c"(0));
    return (xcr0 & 6u) == 6u;
}

// AVX2 and FMA3 (leaf 7 EBX bit 5; leaf 1 ECX bit 12), with AVX and the OS saving its state (as
// cpu_has_f16c checks).
inline bool cpu_has_avx2_fma() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const unsigned need = (1u << 12) | (1u << 27) | (1u << 28);
    if ((c & need) != need) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 5))) return false;
    unsigned xcr0 = 0, high = 0;
    __asm__("xgetbv" : "=a"(xcr0), "=d"(high) : "c"(0));
    return (xcr0 & 6u) == 6u;
}

// AVX-512 Foundation (leaf 7 EBX bit 16), with the OS saving the opmask and ZMM state (XCR0 bits
// 1, 2, 5, 6, 7).
inline bool cpu_has_avx512f() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false; // OSXSAVE
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & (1u << 16))) return false;
    unsigned xcr0 = 0, high = 0;
    __asm__("xgetbv" : "=a"(xcr0), "=d"(high) : "c"(0));
    return (xcr0 & 0xe6u) == 0xe6u;
}

// AVX-512 Byte and Word (leaf 7 EBX bit 30), with AVX-512 itself.
inline bool cpu_has_avx512bw() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return cpu_has_avx512f() && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 30));
}

// AVX-512 BF16 (leaf 7 subleaf 1 EAX bit 5: VDPBF16PS, VCVTNEPS2BF16), with AVX-512 F and BW.
inline bool cpu_has_avx512bf16() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!cpu_has_avx512bw() || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    return (a & (1u << 5)) != 0;
}

} // namespace basin
