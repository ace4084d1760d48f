// Hugging Face checkpoint folders: config.json, model.safetensors or sharded
// model-XXXXX-of-YYYYY.safetensors with model.safetensors.index.json, and tokenizer.json.
#pragma once

#include "basin/io/safetensors.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace basin {

// All tensors of a checkpoint, whether stored in one file or in shards.
class CheckpointTensors {
  public:
    // path: a checkpoint folder, a .safetensors file, or a model.safetensors.index.json file.
    explicit CheckpointTensors(const fs::path& path);

    struct Ref {
        const SafetensorsFile* file = nullptr;
        const TensorInfo* info = nullptr;
        const std::uint8_t* data() const { return file->data(*info); }
    };

    const std::vector<std::string>& names() const { return names_; } // file order, then offset
    // The tensor of that name; a BERT/RoBERTa body saved without its `bert.`/`roberta.` prefix
    // (BertModel, sentence-transformers) and one saved with it (a classifier) answer each other's
    // names (`embeddings.`, `encoder.`, `pooler.` with or without the prefix), as loading does.
    const Ref* find(const std::string& name) const;
    const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
    const fs::path& source() const { return source_; }
    std::uint64_t total_bytes() const;

  private:
    fs::path source_;
    std::string body_prefix_; // "bert." or "roberta." when the body's names carry it
    std::vector<std::unique_ptr<SafetensorsFile>> files_;
    std::vector<std::string> names_;
    std::unordered_map<std::string, Ref> refs_;
};

// True for body tensor names without a model prefix (`embeddings.`, `encoder.`, `pooler.`): how
// BertModel/RobertaModel bodies are saved, where classifiers write `bert.`/`roberta.` before them.
bool is_bare_body_name(const std::string& name);

// The Hugging Face folder (config.json, weights, tokenizer) of a checkpoint folder: the folder
// itself when it has a config.json; for a sentence-transformers folder without one at the top, the
// folder of its Transformer module as modules.json names it (e.g. 0_Transformer/); otherwise the
// folder itself (callers then report what is missing). A malformed modules.json, one without a
// Transformer module, or a module path outside the folder is an error naming modules.json.
fs::path model_folder(const fs::path& folder);

// Finds the weights file of a checkpoint folder: model.safetensors.index.json, then
// model.safetensors, then the single *.safetensors file. Errors name what was looked for.
fs::path find_weights(const fs::path& folder);

// The one identity of a checkpoint's weights, recorded by fine-tuning (basin_run.json), merging
// (basin_merge.json), the experiment store and the feature cache: a single file's SHA-256 (what
// `sha256sum model.safetensors` prints); for shards, the SHA-256 of their hex digests joined in
// file-name order. Each file is hashed once per process (sha256_file_cached).
std::string checkpoint_weights_sha256(const CheckpointTensors& tensors);
std::string checkpoint_weights_sha256(const fs::path& folder);

// Copies a model folder's tokenizer files (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json, vocab.txt, vocab.json, merges.txt), those it has, into `to`: what a
// written checkpoint carries besides its weights and config.
void copy_tokenizer_files(const fs::path& from, const fs::path& to);

// Writes tensors as one model.safetensors, or as shards with an index when the total exceeds
// max_shard_bytes (0 = never shard). Each file is written atomically.
void write_checkpoint_weights(const fs::path& folder, const std::vector<TensorView>& tensors,
                              const std::map<std::string, std::string>& metadata, std::uint64_t max_shard_bytes = 0);

} // namespace basin
