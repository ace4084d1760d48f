#include "basin/io/checkpoint.h"

#include "basin/core/error.h"
#include "basin/core/hash.h"
#include "basin/core/json_value.h"
#include "basin/core/limits.h"
#include "basin/io/torch_bin.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

namespace basin {

fs::path model_folder(const fs::path& folder) {
    if (!fs::is_directory(folder) || fs::exists(folder / "config.json")) return folder;
    const fs::path modules_file = folder / "modules.json";
    if (!fs::exists(modules_file)) return folder;
    const nlohmann::json modules = read_json_file(modules_file, limits::config_json);
    BASIN_CHECK(modules.is_array(), modules_file.string(), ": expected a list of modules");
    for (std::size_t i = 0; i < modules.size(); ++i) {
        const auto& m = modules[i];
        BASIN_CHECK(m.is_object() && m.contains("type") && m["type"].is_string() && m.contains("path") &&
                        m["path"].is_string(),
                    modules_file.string(), ": module ", i, ": expected an object with string 'type' and 'path'");
        const std::string type = m["type"].get<std::string>();
        if (type.rfind("sentence_transformers.models.Transformer", 0) != 0) continue;
        const fs::path sub = fs::path(m["path"].get<std::string>()).lexically_normal();
        BASIN_CHECK(!sub.is_absolute() && (sub.empty() || *sub.begin() != ".."), modules_file.string(), ": module ", i,
                    ": path '", m["path"].get<std::string>(), "' leaves the folder");
        const fs::path found = sub.empty() || sub == "." ? folder : folder / sub;
        BASIN_CHECK(fs::exists(found / "config.json"), modules_file.string(), ": module ", i, " (", type,
                    "): ", (found / "config.json").string(), " not found");
        return found;
    }
    fail(modules_file.string(), ": no sentence_transformers.models.Transformer module (the body) is listed");
}

void copy_tokenizer_files(const fs::path& from, const fs::path& to) {
    for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                             "vocab.json", "merges.txt"})
        if (fs::exists(from / file)) fs::copy_file(from / file, to / file);
}

fs::path find_weights(const fs::path& folder) {
    if (fs::exists(folder / "model.safetensors.index.json")) return folder / "model.safetensors.index.json";
    if (fs::exists(folder / "model.safetensors")) return folder / "model.safetensors";
    std::vector<fs::path> found;
    if (fs::is_directory(folder))
        for (const auto& entry : fs::directory_iterator(folder))
            if (entry.path().extension() == ".safetensors") found.push_back(entry.path());
    if (found.size() == 1) return found.front();
    if (found.empty()) { // torch.save archives, read without running their pickle (io/torch_bin.h)
        if (fs::exists(folder / "pytorch_model.bin.index.json")) return folder / "pytorch_model.bin.index.json";
        if (fs::exists(folder / "pytorch_model.bin")) return folder / "pytorch_model.bin";
    }
    fail(folder.string(), ": no model.safetensors, model.safetensors.index.json or pytorch_model.bin found",
         found.size() > 1 ? " (several *.safetensors files but no index)" : "");
}

namespace {
// A folder with both model.safetensors and pytorch_model.bin is read from the safetensors file;
// the two must hold the same tensor names and shapes, or which one a tool reads would matter.
void check_bin_agrees(const fs::path& folder, const SafetensorsFile& st) {
    const fs::path bin = folder / "pytorch_model.bin";
    if (!fs::exists(bin)) return;
    const auto other = SafetensorsFile::open(bin);
    std::vector<std::string> problems;
    for (const auto& t : st.tensors()) {
        const TensorInfo* b = other->find(t.name);
        if (!b)
            problems.push_back(t.name + " only in " + st.path().filename().string());
        else if (b->shape != t.shape)
            problems.push_back(t.name + " is " + shape_string(t.shape) + " there but " + shape_string(b->shape) +
                               " here");
    }
    for (const auto& b : other->tensors())
        if (!st.find(b.name)) problems.push_back(b.name + " only here");
    BASIN_CHECK(problems.empty(), bin.string(), ": disagrees with ", st.path().string(), " in the same folder (",
                problems.size(), " tensors: ", problems.front(), problems.size() > 1 ? ", ..." : "",
                "); remove the stale one");
}

// A shard index's weight_map as (tensor, shard file) pairs in its order, every shard a plain file
// name in the index's folder.
std::vector<std::pair<std::string, std::string>> read_weight_map(const fs::path& index_file) {
    nlohmann::json index = read_json_file(index_file, limits::index_json);
    BASIN_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
                index_file.string(), ": expected an object with a 'weight_map' object");
    std::vector<std::pair<std::string, std::string>> map;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
        BASIN_CHECK(it.value().is_string(), index_file.string(), ": weight_map['", it.key(), "'] must be a file name");
        const std::string shard = it.value().get<std::string>();
        BASIN_CHECK(!shard.empty() && shard.find('/') == std::string::npos && shard.find('\\') == std::string::npos &&
                        shard != "." && shard != "..",
                    index_file.string(), ": weight_map['", it.key(), "'] = '", shard,
                    "' must be a plain file name in the same folder");
        map.emplace_back(it.key(), shard);
    }
    return map;
}

// The body prefix ("bert." or "roberta.") that name starts with, or nullptr.
const char* body_prefix_of(const std::string& name) {
    for (const char* prefix : {"bert.", "roberta."})
        if (name.rfind(prefix, 0) == 0 && is_bare_body_name(name.substr(std::strlen(prefix)))) return prefix;
    return nullptr;
}
} // namespace

bool is_bare_body_name(const std::string& name) {
    return name.rfind("embeddings.", 0) == 0 || name.rfind("encoder.", 0) == 0 || name.rfind("pooler.", 0) == 0;
}

CheckpointTensors::CheckpointTensors(const fs::path& path) {
    source_ = fs::is_directory(path) ? find_weights(model_folder(path)) : path;
    BASIN_CHECK(fs::exists(source_), source_.string(), ": file not found");
    if (source_.extension() == ".json") {
        std::map<std::string, std::size_t> file_index;
        const auto wanted = read_weight_map(source_); // tensor -> shard file
        for (const auto& [name, shard] : wanted)
            if (!file_index.count(shard)) {
                file_index[shard] = files_.size();
                files_.push_back(SafetensorsFile::open(source_.parent_path() / shard));
            }
        for (const auto& [name, shard] : wanted) {
            const auto* file = files_[file_index[shard]].get();
            const TensorInfo* info = file->find(name);
            BASIN_CHECK(info, source_.string(), ": tensor '", name, "' is mapped to ", shard,
                        " but that file does not contain it");
            refs_[name] = Ref{file, info};
        }
        for (const auto& file : files_)
            for (const auto& info : file->tensors())
                if (refs_.count(info.name)) names_.push_back(info.name);
    } else {
        files_.push_back(SafetensorsFile::open(source_));
        if (fs::is_directory(path) && !is_torch_bin_name(source_))
            check_bin_agrees(source_.parent_path(), *files_.front());
        for (const auto& info : files_.front()->tensors()) {
            refs_[info.name] = Ref{files_.front().get(), &info};
            names_.push_back(info.name);
        }
    }
    for (const auto& name : names_)
        if (const char* prefix = body_prefix_of(name)) {
            body_prefix_ = prefix;
            break;
        }
}

const CheckpointTensors::Ref* CheckpointTensors::find(const std::string& name) const {
    auto it = refs_.find(name);
    if (it != refs_.end()) return &it->second;
    std::string alias;
    if (!body_prefix_.empty()) {
        if (is_bare_body_name(name)) alias = body_prefix_ + name; // bare -> our prefixed names
    } else if (const char* prefix = body_prefix_of(name)) {
        alias = name.substr(std::strlen(prefix)); // prefixed -> our bare names
    }
    it = alias.empty() ? refs_.end() : refs_.find(alias);
    return it == refs_.end() ? nullptr : &it->second;
}

std::uint64_t CheckpointTensors::total_bytes() const {
    std::uint64_t total = 0;
    for (const auto& [_, ref] : refs_)
        total += ref.info->nbytes();
    return total;
}

namespace {

std::string weights_sha256_of(std::vector<fs::path> files) {
    std::sort(files.begin(), files.end()); // by name: the order an index lists shards in does not matter
    files.erase(std::unique(files.begin(), files.end()), files.end());
    std::string joined;
    for (const auto& file : files)
        joined += sha256_file_cached(file);
    return files.size() == 1 ? joined : sha256_hex(joined.data(), joined.size());
}

} // namespace

std::string checkpoint_weights_sha256(const CheckpointTensors& tensors) {
    std::vector<fs::path> files;
    for (const auto& file : tensors.files())
        files.push_back(file->path());
    return weights_sha256_of(files);
}

// The files only, not their contents: a damaged weights file still has a hash (which then differs
// from the one recorded) instead of failing to open.
std::string checkpoint_weights_sha256(const fs::path& folder) {
    const fs::path weights = find_weights(model_folder(folder));
    if (weights.extension() != ".json") return weights_sha256_of({weights});
    std::vector<fs::path> files;
    for (const auto& [tensor, shard] : read_weight_map(weights))
        files.push_back(weights.parent_path() / shard);
    return weights_sha256_of(files);
}

void write_checkpoint_weights(const fs::path& folder, const std::vector<TensorView>& tensors,
                              const std::map<std::string, std::string>& metadata, std::uint64_t max_shard_bytes) {
    std::uint64_t total = 0;
    std::vector<std::uint64_t> sizes;
    for (const auto& t : tensors) {
        sizes.push_back(std::uint64_t(shape_numel(t.shape)) * dtype_size(t.dtype));
        total += sizes.back();
    }
    if (max_shard_bytes == 0 || total <= max_shard_bytes) {
        write_safetensors(folder / "model.safetensors", tensors, metadata);
        return;
    }
    std::vector<std::vector<TensorView>> shards(1);
    std::uint64_t current = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        if (current > 0 && current + sizes[i] > max_shard_bytes) {
            shards.emplace_back();
            current = 0;
        }
        shards.back().push_back(tensors[i]);
        current += sizes[i];
    }
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", total}};
    index["weight_map"] = nlohmann::ordered_json::object();
    for (std::size_t s = 0; s < shards.size(); ++s) {
        char name[64];
        std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
        write_safetensors(folder / name, shards[s], metadata);
        for (const auto& t : shards[s])
            index["weight_map"][t.name] = name;
    }
    // The index goes last: a folder with an index is complete.
    write_text_atomically(folder / "model.safetensors.index.json", index.dump(2) + "\n");
}

} // namespace basin
