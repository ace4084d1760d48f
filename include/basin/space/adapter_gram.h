// The exact Gram matrix of a zoo that mixes PEFT LoRA adapters (io/adapter.h) with full fine-tunes
// of one base, without materialising any adapter's task vector.
//
// Algorithm. An adapter's task vector is s B A on each adapted weight and zero elsewhere, so:
// - two adapters meet only on the weights both adapt, where
//     <s1 B1 A1, s2 B2 A2>_F = s1 s2 trace((B1^T B2)(A2 A1^T)),
//   r x r work per pair after two r x m and r x n products; for the k adapters of one weight the
//   products come from two matrix products of the stacked factors (B_all^T B_all, A_all A_all^T),
//   cut into tiles of kLoraTileAdapters adapters so that memory stays O((tile r)^2) per thread;
// - an adapter and a full task vector T meet on the adapter's weights, where
//     <s B A, T>_F = s trace(B^T T A^T) = s sum((B^T T) o A),
//   one read of T's tensor (the full model's minus the base's) for every adapter of that weight;
// - full task vectors meet as task_vector_gram computes them (the streaming pass over the body).
// The result equals the Gram matrix of the materialised task vectors to rounding (all products in
// double). Cost: per weight of k adapters, (k r)^2 (m + n) multiply-adds; per full model and
// adapted weight, r m n. Memory: the factors of one weight's adapters in double plus two tiles.
// Deterministic: tiles are summed in a fixed order whatever the threads.
#pragma once

#include "basin/space/gram.h"

#include <cstdint>
#include <vector>

namespace basin {

constexpr std::size_t kLoraTileAdapters = 64;

// One adapter's factors on one weight, row-major float32: A [rank, in], B [out, rank].
struct LoraFactors {
    const float* a = nullptr;
    const float* b = nullptr;
    std::int64_t rank = 0, out = 0, in = 0;
    double scale = 1;
};

// G_ij = <s_i B_i A_i, s_j B_j A_j>_F over adapters of one weight (equal out and in; ranks may
// differ), symmetric k x k. known: the first known adapters' products among themselves are not
// formed (left 0; an update has them): tiles of old adapters only are skipped, so adding one
// adapter to k costs k products, not k^2 / 2.
SquareMatrix lora_block_gram(const std::vector<LoraFactors>& adapters, int threads = 1, std::size_t known = 0);

// <s B A, T>_F for T row-major [out, in]; transposed: T is the stored [in, out] weight whose delta
// is (s B A)^T.
double lora_dot_dense(const LoraFactors& factors, const float* t, bool transposed = false);

// The Gram matrix of the task vectors of models (checkpoint folders and adapter folders, in any
// mix) against base, as task_vector_gram reports it (models in input order; body, excluded,
// parameters; layers, with per_layer one matrix per layer group). Adapters' weights outside the
// body (heads, --include / --exclude) do not count and are listed in excluded. With known (an
// update: the first known models were mapped before), products among the first known models are
// not formed (left 0) and everything else is: a new adapter against the known full models reads
// their tensors on the weights it adapts, a new full model is one pass as task_vector_gram makes
// it. digests: a full model's stream digest; an adapter's, the first 64 bits of its file's SHA-256.
GramResult zoo_gram(const fs::path& base, const std::vector<fs::path>& models, const GramOptions& options);

// True when any of the models is an adapter folder.
bool has_adapters(const std::vector<fs::path>& models);

} // namespace basin
