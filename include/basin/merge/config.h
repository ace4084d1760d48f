// mergekit's YAML merge configurations (`basin merge --config FILE.yaml`), read into basin's merge
// options. The methods basin has under mergekit's names: linear (weighted), task_arithmetic, ties,
// dare_ties, dare_linear, breadcrumbs, breadcrumbs_ties, della and della_linear (gta, with mergekit's defaults of
// normalize and rescale), slerp and model_stock. Keys: merge_method, base_model, models (each `model` with its
// `parameters`), parameters (shared values, and defaults of the per-model ones), dtype, out_dtype, tokenizer_source
// (base only). A value is a number or boolean, a gradient (a list of numbers interpolated linearly over the layers:
// layer l of L at l / (L - 1); tensors outside the layers at 0, as mergekit), or a list of {filter, value} whose first
// entry with a filter contained in the tensor's name (or with none) applies. Anything else, a key basin does not
// support included, is refused with one line naming the file and the key; nothing is ever ignored. Model paths are
// relative to the file's folder; a Hugging Face hub id is refused (basin reads local folders).
// Uses yaml-cpp; torch-free.
#pragma once

#include "basin/merge/merge.h"

#include <filesystem>

namespace basin {

// The configuration in `file` over `options` (out, threads, overwrite, shards: what the command
// line gives); method, models, base, parameters, dtype, per-tensor values and their checks set.
MergeOptions read_merge_config(const std::filesystem::path& file, MergeOptions options);

} // namespace basin
