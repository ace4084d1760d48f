// Merging PEFT LoRA adapters (io/adapter.h), called by merge_checkpoints when an input is an
// adapter folder. The linear methods only (mean, weighted, task-arithmetic), whose merged task
// vector sum_i c_i s_i B_i A_i stays a sum of low-rank products:
//
// - into a full checkpoint (default): base + sum_i c_i delta_i, tensor by tensor (each adapted
//   weight's deltas formed one at a time; full fine-tunes among the inputs add their own task
//   vectors), written as merge writes any checkpoint;
// - into one adapter, concatenated (adapter_out "concat"): per weight, B = [c_1 s_1 B_1 | ...] and
//   A = [A_1; ...], rank the sum of the inputs' ranks; exactly the same task vector;
// - into one adapter of rank r (adapter_out "svd", adapter_rank r): per weight, the merged task
//   vector's best rank-r approximation (Eckart-Young) from the factors alone: QR of the stacked B
//   (out x K) and of the stacked A^T (in x K), the SVD of the K x K core, the r largest singular
//   directions kept, sqrt(sigma) on each side. The discarded energy (the squared singular values
//   dropped over all of them, per weight and over the adapter) is reported in basin_merge.json.
//
// The adapter is written as PEFT writes one (adapter_config.json with scale 1: lora_alpha = r,
// rank_pattern / alpha_pattern where a weight's rank differs; adapter_model.safetensors under
// base_model.model.<module>.lora_A/lora_B.weight), so PEFT loads it onto the base.
#pragma once

#include "basin/merge/merge.h"

namespace basin {

MergeResult merge_adapters(const MergeOptions& options);

} // namespace basin
