"""basin's data order for fine-tuning, replayed in Python: each epoch is a Fisher-Yates shuffle
over std::mt19937_64 seeded with mix_seed(seed, epoch) (src/train/state.cpp). The generator is
written from the published definition of the 64-bit Mersenne Twister (Matsumoto and Nishimura);
bench/real_base_sst2.py checks it against the order head basin records in basin_run.json."""
M64 = (1 << 64) - 1


class MT19937_64:
    """The 64-bit Mersenne Twister (Matsumoto and Nishimura), as std::mt19937_64 defines it."""

    def __init__(self, seed):
        self.mt = [seed & M64]
        for i in range(1, 312):
            prev = self.mt[-1]
            self.mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & M64)
        self.index = 312

    def twist(self):
        upper, lower = 0xFFFFFFFF80000000, 0x7FFFFFFF
        for i in range(312):
            x = (self.mt[i] & upper) | (self.mt[(i + 1) % 312] & lower)
            xa = x >> 1
            if x & 1:
                xa ^= 0xB5026F5AA96619E9
            self.mt[i] = self.mt[(i + 156) % 312] ^ xa
        self.index = 0

    def __call__(self):
        if self.index >= 312:
            self.twist()
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & M64


def mix_seed(seed, salt):
    return (seed * 0x9E3779B97F4A7C15 + (salt & M64) + 1) & M64


def permutation(n, seed):
    p = list(range(n))
    rng = MT19937_64(seed)
    for i in range(n, 1, -1):
        j = rng() % i
        p[i - 1], p[j] = p[j], p[i - 1]
    return p
