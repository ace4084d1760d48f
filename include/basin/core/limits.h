// Size limits on what basin reads, so that a damaged or hostile file costs bounded memory and
// gives a clear error instead (docs/RELIABILITY.md lists them). Each is far above what real files
// of the kind need.
#pragma once

#include <cstdint>

namespace basin::limits {

constexpr std::uint64_t kMiB = std::uint64_t(1) << 20;

constexpr std::uint64_t config_json = 16 * kMiB;     // config.json: real ones are a few KB
constexpr std::uint64_t index_json = 64 * kMiB;      // model.safetensors.index.json: ~100 KB for 70B models
constexpr std::uint64_t tokenizer_json = 128 * kMiB; // tokenizer.json: 2-35 MB for 30k-260k vocabularies
constexpr std::uint64_t experiment_spec = 16 * kMiB; // a TOML spec
constexpr std::uint64_t dataset_line = 16 * kMiB;    // one JSONL / CSV / TSV record

} // namespace basin::limits
