// Uniform draws from a seeded mt19937_64 that are the same on every platform (std::
// distributions are implementation-defined): the top 53 bits as a double in [0, 1).
#pragma once

#include <cstddef>
#include <random>

namespace basin {

inline double uniform01(std::mt19937_64& rng) {
    return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// An index in [0, n).
inline std::size_t uniform_index(std::mt19937_64& rng, std::size_t n) {
    return static_cast<std::size_t>(uniform01(rng) * double(n));
}

} // namespace basin
