// The sketched map for Hub-scale zoos (`basin map --sketch K`): each task vector tau (model - base
// over the map's body) is kept as a CountSketch of K buckets, made in one read of the model, and
// stored per model (sketches/NNNNN.safetensors) so that models added later cost only their own
// read. Time is linear in N for the sketches; the Gram matrix of the sketches is N^2 K / 2.
//
// The sketch: coordinate p of the body (the base's tensors in order, p counted over all of them)
// goes to bucket h(p) with sign s(p), both from one 64-bit hash of (seed, p) (splitmix64; K a power
// of two), S[h(p)] += s(p) tau_p, summed in double and stored as float32. It depends on the seed,
// K and the body only, not on threads or chunking: a sketch made now equals, bit for bit, the one
// made for the same model in any later run.
//
// The estimate: <S_a, S_b> is unbiased for <tau_a, tau_b>, with variance
//   (|a|^2 |b|^2 + <a,b>^2 - 2 sum_p a_p^2 b_p^2) / K  <=  (|a|^2 |b|^2 + <a,b>^2) / K.
// The norms are computed exactly in the same read, so the cosine estimate c^ = <S_a,S_b> / (|a||b|)
// has standard deviation at most sqrt((1 + c^2) / K) <= sqrt(2 / K), and by Chebyshev's inequality
// |c^ - c| <= sqrt((1 + c^2) / (delta K)) with probability at least 1 - delta. The bound reported
// next to each value (sketch_bound.csv) is that one at delta = 0.05, with c taken as min(1, |c^| +
// the standard-deviation bound), so that it holds whatever the true c: with K = 65,536 about 0.025
// at most (0.0055 standard deviation). The diagonal is exact (|tau|^2).
#pragma once

#include "basin/io/checkpoint.h"
#include "basin/space/gram.h"

#include <cstdint>
#include <string>
#include <vector>

namespace basin {

struct ModelSketch {
    std::string model;         // its path, as given
    std::vector<float> values; // K buckets
    double norm2 = 0;          // |tau|^2, exact
    std::uint64_t seed = 0;
    std::string body_digest; // of the body's names and shapes: a sketch of another base is refused
};

// Adds tau[0..n) (coordinates offset.. offset + n of the body) into a sketch of k buckets (k a power of two).
void sketch_add(double* sketch, std::size_t k, std::uint64_t seed, std::uint64_t offset, const float* tau,
                std::size_t n);

// The body a sketch is made over: body_candidates of the base (heads, non-float, --include/--exclude
// left out), and its digest.
struct SketchBody {
    std::vector<std::string> tensors;
    std::int64_t parameters = 0;
    std::string digest;
};
SketchBody sketch_body(const CheckpointTensors& base, const GramOptions& options);

// One model's sketch, in one read of it (and of the base's body).
ModelSketch sketch_model(const CheckpointTensors& base, const SketchBody& body, const fs::path& model, std::size_t k,
                         std::uint64_t seed);

void write_sketch(const fs::path& file, const ModelSketch& sketch);
// Refuses, naming the file, a sketch made with another seed, K or body.
ModelSketch read_sketch(const fs::path& file, std::size_t k, std::uint64_t seed, const std::string& body_digest);

// The estimated Gram matrix (exact diagonal), in double.
SquareMatrix sketched_gram(const std::vector<ModelSketch>& sketches, int threads = 1);

// The bound on |c^ - c| stated above for an estimated cosine, at probability 1 - delta.
double sketch_cosine_bound(double estimate, std::size_t k, double delta = 0.05);

} // namespace basin
