#include "basin/merge/merge.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <map>
#include <omp.h>

#include "basin/core/limits.h"
#include "basin/core/interrupt.h"
#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/io/checkpoint.h"
#include "basin/io/tensor_reader.h"
#include "basin/space/gram.h"

namespace basin {

namespace {

using nlohmann::json;

constexpr std::size_t kChunk = 1 << 16; // elements per work item

struct Input {
    fs::path dir;
    std::unique_ptr<CheckpointTensors> tensors;
};

// Names a head-less architecture for the merged config: XForY -> XModel, GPT2LMHeadModel -> GPT2Model.
std::string body_architecture(const std::string& name) {
    const auto at = name.find("For");
    if (at != std::string::npos && at > 0) return name.substr(0, at) + "Model";
    if (name == "GPT2LMHeadModel") return "GPT2Model";
    return name;
}

bool inside(const fs::path& path, const fs::path& folder) {
    const auto p = fs::weakly_canonical(path), f = fs::weakly_canonical(folder);
    auto pi = p.begin();
    for (auto fi = f.begin(); fi != f.end(); ++fi, ++pi)
        if (pi == p.end() || *pi != *fi) return false;
    return true;
}

// sum = w * x (first term) or sum += w * x, in double. Compiled for AVX-512 and AVX2 besides the
// baseline and picked at load time: this loop is most of a merge's arithmetic.
__attribute__((target_clones("avx512f", "avx2", "default"))) void accumulate(double* sum, const float* x, double w,
                                                                                std::size_t n, bool first) {
    if (first)
        for (std::size_t e = 0; e < n; ++e) sum[e] = w * double(x[e]);
    else
        for (std::size_t e = 0; e < n; ++e) sum[e] += w * double(x[e]);
}

// The tensor's per-method constants, computed in a first pass over the whole tensor where needed.
struct TensorPlan {
    std::vector<double> coefficients; // linear methods: out = sum_i c_i x_i over models, then base
    std::vector<float> thresholds;    // ties: |tau_i| kept when >= threshold_i
    double stock_t = 1;               // model stock: t * mean + (1 - t) * base
    std::uint64_t name_hash = 0;
};

} // namespace

MergeMethod parse_merge_method(const std::string& name) {
    if (name == "mean") return MergeMethod::Mean;
    if (name == "weighted") return MergeMethod::Weighted;
    if (name == "task-arithmetic") return MergeMethod::TaskArithmetic;
    if (name == "ties") return MergeMethod::Ties;
    if (name == "dare") return MergeMethod::Dare;
    if (name == "slerp") return MergeMethod::Slerp;
    if (name == "model-stock") return MergeMethod::ModelStock;
    fail("--method: unknown merge method '", name, "' (mean, weighted, task-arithmetic, ties, dare, slerp, model-stock)");
}

const char* merge_method_name(MergeMethod m) {
    switch (m) {
    case MergeMethod::Mean: return "mean";
    case MergeMethod::Weighted: return "weighted";
    case MergeMethod::TaskArithmetic: return "task-arithmetic";
    case MergeMethod::Ties: return "ties";
    case MergeMethod::Dare: return "dare";
    case MergeMethod::Slerp: return "slerp";
    case MergeMethod::ModelStock: return "model-stock";
    }
    return "?";
}

bool needs_base(MergeMethod m) {
    return m == MergeMethod::TaskArithmetic || m == MergeMethod::Ties || m == MergeMethod::Dare ||
           m == MergeMethod::ModelStock;
}

bool dare_keeps(std::uint64_t seed, std::size_t model, std::uint64_t name_hash, std::uint64_t index, double drop) {
    const std::uint64_t stream = splitmix64(splitmix64(seed ^ splitmix64(model)) ^ name_hash);
    const double u = double(splitmix64(stream + index) >> 11) * 0x1.0p-53; // uniform in [0, 1)
    return u >= drop;
}

MergeResult merge_checkpoints(const MergeOptions& o) {
    const auto start = std::chrono::steady_clock::now();
    const char* method = merge_method_name(o.method);
    const std::size_t n = o.models.size();
    BASIN_CHECK(n >= 1, "merge: no models given");
    if (o.method == MergeMethod::Slerp)
        BASIN_CHECK(n == 2, "merge --method slerp interpolates two models, got ", n);
    if (o.method == MergeMethod::ModelStock)
        BASIN_CHECK(n >= 2, "merge --method model-stock needs at least two models, got ", n);
    if (o.method == MergeMethod::Weighted) {
        BASIN_CHECK(o.weights.size() == n, "merge --method weighted: ", o.weights.size(), " weights for ", n, " models");
        double sum = 0;
        for (double w : o.weights) {
            BASIN_CHECK(std::isfinite(w), "merge: weight ", w, " is not a finite number");
            sum += w;
        }
        BASIN_CHECK(sum != 0, "merge --method weighted: the weights sum to 0");
    }
    BASIN_CHECK(!needs_base(o.method) || !o.base.empty(), "merge --method ", method,
                " works on task vectors: give the pretrained model with --base");
    BASIN_CHECK(o.density >= 0 && o.density <= 1, "--density must be in [0, 1], got ", o.density);
    BASIN_CHECK(o.drop >= 0 && o.drop < 1, "--drop must be in [0, 1), got ", o.drop);
    BASIN_CHECK(std::isfinite(o.lambda) && std::isfinite(o.t), "--lambda and --t must be finite");
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < i; ++j)
            BASIN_CHECK(fs::weakly_canonical(o.models[i]) != fs::weakly_canonical(o.models[j]), "merge: model ",
                        o.models[i].string(), " is given twice");
    std::vector<fs::path> all_inputs = o.models;
    if (!o.base.empty()) all_inputs.push_back(o.base);
    for (const auto& in : all_inputs) {
        BASIN_CHECK(fs::is_directory(in), in.string(), ": model folder not found");
        BASIN_CHECK(!inside(o.out, in), "--out ", o.out.string(), " is inside the input model folder ", in.string());
    }
    const fs::path out = check_output_folder(o.out, o.overwrite);

    std::vector<Input> inputs;
    for (const auto& dir : all_inputs) inputs.push_back({dir, std::make_unique<CheckpointTensors>(dir)});
    const bool with_base = !o.base.empty();
    const CheckpointTensors& first = *inputs[0].tensors;
    const CheckpointTensors* base = with_base ? inputs.back().tensors.get() : nullptr;

    // ---- which tensors are merged, checked across every input before any work
    // Task heads are dropped (a new task replaces them) unless keep_head. BERT's pooler is body: it
    // is merged like any body tensor where every input (and the base) has it with one shape, and
    // dropped otherwise (RoBERTa classifiers have none), never an error.
    auto pooler_everywhere = [&](const std::string& name) {
        const Shape& shape = first.find(name)->info->shape;
        for (const auto& in : inputs) {
            const auto* ref = in.tensors->find(name);
            if (!ref || ref->info->shape != shape) return false;
        }
        return true;
    };
    std::vector<std::string> merged, copied, dropped;
    for (const auto& name : first.names()) {
        const auto& info = *first.find(name)->info;
        const bool head = is_task_head_tensor(name);
        if ((head && !o.keep_head) || (is_pooler_tensor(name) && !pooler_everywhere(name))) {
            dropped.push_back(name);
            continue;
        }
        for (std::size_t i = 1; i < n; ++i) {
            const auto* ref = inputs[i].tensors->find(name);
            BASIN_CHECK(ref, inputs[i].dir.string(), ": has no tensor ", name, " (", inputs[0].dir.string(), " has it",
                        head ? "; heads are kept only with --keep-head when every input has the same head)" : ")");
            BASIN_CHECK(ref->info->shape == info.shape, "merge: tensor ", name, " has shape ", shape_string(ref->info->shape),
                        " in ", inputs[i].dir.string(), " but ", shape_string(info.shape), " in ", inputs[0].dir.string(),
                        head ? " (heads differ: leave out --keep-head to drop them)" : "");
        }
        if (!is_floating(info.dtype)) {
            copied.push_back(name); // integer buffers (position ids): taken from the first model
            continue;
        }
        for (std::size_t i = 1; i < n; ++i)
            BASIN_CHECK(is_floating(inputs[i].tensors->find(name)->info->dtype), inputs[i].dir.string(), ": tensor ", name,
                        " is ", dtype_name(inputs[i].tensors->find(name)->info->dtype), ", expected floating point");
        if (base) {
            const auto* ref = base->find(name);
            BASIN_CHECK(ref, o.base.string(), ": the base has no tensor ", name, " (the models have it)");
            BASIN_CHECK(ref->info->shape == info.shape, "merge: tensor ", name, " has shape ", shape_string(ref->info->shape),
                        " in the base ", o.base.string(), " but ", shape_string(info.shape), " in ",
                        inputs[0].dir.string());
        }
        merged.push_back(name);
    }
    for (std::size_t i = 1; i < n; ++i)
        for (const auto& name : inputs[i].tensors->names())
            BASIN_CHECK(first.find(name) || (is_task_head_tensor(name) && !o.keep_head) || is_pooler_tensor(name),
                        inputs[i].dir.string(),
                        ": has tensor ", name, " that ", inputs[0].dir.string(), " lacks");
    BASIN_CHECK(!merged.empty(), "merge: no floating-point tensors to merge");

    // ---- the output tensors, each computed just before it is written (one tensor in memory)
    struct Output {
        std::string name;
        Dtype dtype;
        Shape shape;
        bool floating;
    };
    std::vector<Output> outputs;
    for (const auto& name : first.names()) {
        if (std::find(dropped.begin(), dropped.end(), name) != dropped.end()) continue;
        const auto& info = *first.find(name)->info;
        const bool floating = is_floating(info.dtype);
        outputs.push_back({name, floating && o.dtype ? *o.dtype : info.dtype, info.shape, floating});
    }

    const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
    const std::size_t sources = n + (with_base ? 1 : 0);
    std::vector<const SafetensorsFile*> files;
    for (const auto& in : inputs)
        for (const auto& f : in.tensors->files()) files.push_back(f.get());
    const TensorReader reader(files); // pread into per-thread buffers, not the mapping
    // per-thread buffers, allocated once: every source's chunk as stored (at most 8 bytes a value)
    std::vector<std::vector<std::uint8_t>> raw_buffers(std::size_t(std::max(1, threads)));
    auto thread_raw = [&]() -> std::vector<std::uint8_t>& {
        auto& raw = raw_buffers.at(std::size_t(omp_get_thread_num()));
        if (raw.empty()) raw.resize(sources * kChunk * 8);
        return raw;
    };
    MergeResult result;
    auto merge_tensor = [&](const Output& out_tensor, std::uint8_t* dst) {
        check_interrupted("merging");
        const std::string& name = out_tensor.name;
        if (!out_tensor.floating) { // integer buffers (position ids): the first model's
            std::memcpy(dst, first.find(name)->data(), first.find(name)->info->nbytes());
            return;
        }
        std::vector<const CheckpointTensors::Ref*> refs(sources);
        for (std::size_t i = 0; i < sources; ++i) refs[i] = inputs[i].tensors->find(name);
        const std::size_t numel = std::size_t(refs[0]->info->numel());
        const std::size_t chunks = (numel + kChunk - 1) / kChunk;
        // reads chunk c of every source and converts it to float32 into scratch (row i = source i);
        // raw holds one source's chunk as stored
        auto load = [&](std::size_t c, std::vector<float>& scratch, std::vector<std::uint8_t>& raw) {
            const std::size_t from = c * kChunk, count = std::min(kChunk, numel - from);
            for (std::size_t i = 0; i < sources; ++i) {
                const std::size_t size = dtype_size(refs[i]->info->dtype);
                reader.read(*refs[i]->file, *refs[i]->info, from * size, count * size, raw.data());
                convert_to_f32(refs[i]->info->dtype, raw.data(), scratch.data() + i * kChunk, count);
            }
            return std::make_pair(from, count);
        };

        TensorPlan plan;
        plan.name_hash = fnv1a64(name);
        // ---- first pass: statistics over the whole tensor
        if (o.method == MergeMethod::Slerp || o.method == MergeMethod::ModelStock) {
            // inner products of the vectors the method needs (slerp: the weights; stock: task vectors)
            const std::size_t k = o.method == MergeMethod::Slerp ? 2 : n;
            std::vector<double> gram(k * k, 0.0);
#pragma omp parallel num_threads(threads)
            {
                std::vector<float> scratch(sources * kChunk);
                auto& raw = thread_raw();
                std::vector<double> local(k * k, 0.0);
#pragma omp for schedule(static)
                for (std::size_t c = 0; c < chunks; ++c) {
                    const auto [from, count] = load(c, scratch, raw);
                    if (o.method == MergeMethod::ModelStock) // tau_i = x_i - base
                        for (std::size_t i = 0; i < n; ++i)
                            for (std::size_t e = 0; e < count; ++e) scratch[i * kChunk + e] -= scratch[n * kChunk + e];
                    for (std::size_t i = 0; i < k; ++i)
                        for (std::size_t j = i; j < k; ++j) {
                            double s = 0;
                            const float *a = scratch.data() + i * kChunk, *b = scratch.data() + j * kChunk;
                            for (std::size_t e = 0; e < count; ++e) s += double(a[e]) * double(b[e]);
                            local[i * k + j] += s;
                        }
                }
#pragma omp critical
                for (std::size_t i = 0; i < k * k; ++i) gram[i] += local[i];
            }
            if (o.method == MergeMethod::Slerp) {
                const double na = std::sqrt(gram[0]), nb = std::sqrt(gram[3]);
                const double cosine = na > 0 && nb > 0 ? std::clamp(gram[1] / (na * nb), -1.0, 1.0) : 1.0;
                if (std::abs(cosine) > 0.9995) { // nearly parallel: the arc is a line
                    plan.coefficients = {1 - o.t, o.t};
                } else {
                    const double theta = std::acos(cosine), s = std::sin(theta);
                    plan.coefficients = {std::sin((1 - o.t) * theta) / s, std::sin(o.t * theta) / s};
                }
            } else {
                double sum = 0;
                std::size_t pairs = 0;
                for (std::size_t i = 0; i < n; ++i)
                    for (std::size_t j = i + 1; j < n; ++j) {
                        const double d = std::sqrt(gram[i * n + i] * gram[j * n + j]);
                        if (d > 0) sum += gram[i * n + j] / d, ++pairs;
                    }
                // Model Stock (Jang et al., 2024): t = N cos / (1 + (N - 1) cos), clamped to [0, 1]
                const double cosine = pairs ? sum / double(pairs) : 1.0;
                plan.stock_t = std::clamp(double(n) * cosine / (1 + double(n - 1) * cosine), 0.0, 1.0);
            }
        } else if (o.method == MergeMethod::Ties) {
            // trim: each task vector keeps its ceil(density * numel) entries of largest magnitude
            const std::size_t keep = std::size_t(std::ceil(o.density * double(numel)));
            std::vector<float> magnitudes(numel);
            plan.thresholds.assign(n, std::numeric_limits<float>::infinity());
            for (std::size_t i = 0; i < n && keep > 0; ++i) {
#pragma omp parallel num_threads(threads)
                {
                    std::vector<float> scratch(sources * kChunk);
                    auto& raw = thread_raw();
#pragma omp for schedule(static)
                    for (std::size_t c = 0; c < chunks; ++c) {
                        const auto [from, count] = load(c, scratch, raw);
                        for (std::size_t e = 0; e < count; ++e)
                            magnitudes[from + e] = std::abs(scratch[i * kChunk + e] - scratch[n * kChunk + e]);
                    }
                }
                std::nth_element(magnitudes.begin(), magnitudes.begin() + std::ptrdiff_t(keep - 1), magnitudes.end(),
                                 std::greater<float>());
                plan.thresholds[i] = magnitudes[keep - 1];
            }
        }
        // the linear methods as coefficients over the sources (models, then the base)
        std::vector<double>& c = plan.coefficients;
        switch (o.method) {
        case MergeMethod::Mean: c.assign(n, 1.0 / double(n)); break;
        case MergeMethod::Weighted: {
            double sum = 0;
            for (double w : o.weights) sum += w;
            for (double w : o.weights) c.push_back(w / sum);
            break;
        }
        case MergeMethod::TaskArithmetic: // base + lambda sum (x_i - base); lambda = 0 is the base bit for bit
            c.assign(n, o.lambda);
            c.push_back(1 - double(n) * o.lambda);
            break;
        case MergeMethod::ModelStock: // t mean + (1 - t) base
            c.assign(n, plan.stock_t / double(n));
            c.push_back(1 - plan.stock_t);
            break;
        default: break; // slerp: set above; ties, dare: not linear
        }
        const bool linear = !c.empty();

        // ---- second pass: combine chunk by chunk into the output tensor
        if (linear) {
            // sum_i c_i x_i, converting and accumulating a block at a time (in L1), in double; the
            // sum starts from the first non-zero term, so a one-hot combination (slerp at t = 0 or 1,
            // task arithmetic with lambda = 0) returns its source bit for bit, -0.0 included
            constexpr std::size_t kBlock = 2048;
#pragma omp parallel num_threads(threads)
            {
                std::vector<float> values(kBlock), merged_block(kBlock);
                std::vector<double> sum(kBlock);
                auto& raw = thread_raw();
#pragma omp for schedule(static)
                for (std::size_t ch = 0; ch < chunks; ++ch) {
                    const std::size_t begin = ch * kChunk, end = std::min(numel, begin + kChunk);
                    for (std::size_t i = 0; i < c.size(); ++i)
                        if (c[i] != 0) {
                            const std::size_t size = dtype_size(refs[i]->info->dtype);
                            reader.read(*refs[i]->file, *refs[i]->info, begin * size, (end - begin) * size, raw.data() + i * kChunk * 8);
                        }
                    for (std::size_t from = begin; from < end; from += kBlock) {
                        const std::size_t count = std::min(kBlock, end - from);
                        bool first = true;
                        for (std::size_t i = 0; i < c.size(); ++i) {
                            if (c[i] == 0) continue;
                            const Dtype dtype = refs[i]->info->dtype;
                            convert_to_f32(dtype, raw.data() + i * kChunk * 8 + (from - begin) * dtype_size(dtype),
                                           values.data(), count);
                            accumulate(sum.data(), values.data(), c[i], count, first);
                            first = false;
                        }
                        for (std::size_t e = 0; e < count; ++e) merged_block[e] = first ? 0.0f : float(sum[e]);
                        convert_from_f32(out_tensor.dtype, merged_block.data(), dst + from * dtype_size(out_tensor.dtype),
                                         count);
                    }
                }
            }
        } else {
#pragma omp parallel num_threads(threads)
            {
                std::vector<float> scratch(sources * kChunk), merged_chunk(kChunk);
                auto& raw = thread_raw();
#pragma omp for schedule(static)
                for (std::size_t ch = 0; ch < chunks; ++ch) {
                    const auto [from, count] = load(ch, scratch, raw);
                    const float* b = scratch.data() + n * kChunk;
                    auto x = [&](std::size_t i) { return scratch.data() + i * kChunk; };
                    float* y = merged_chunk.data();
                    if (o.method == MergeMethod::Ties) {
                        for (std::size_t e = 0; e < count; ++e) {
                            // elect the sign of the trimmed task vectors' sum, then average those that agree
                            double total = 0;
                            for (std::size_t i = 0; i < n; ++i) {
                                const float tau = x(i)[e] - b[e];
                                if (std::abs(tau) >= plan.thresholds[i]) total += tau;
                            }
                            double agreeing = 0;
                            std::size_t agree = 0;
                            if (total != 0)
                                for (std::size_t i = 0; i < n; ++i) {
                                    const float tau = x(i)[e] - b[e];
                                    if (std::abs(tau) >= plan.thresholds[i] && tau != 0 && (tau > 0) == (total > 0))
                                        agreeing += tau, ++agree;
                                }
                            y[e] = agree ? float(double(b[e]) + o.lambda * agreeing / double(agree)) : b[e];
                        }
                    } else { // dare: drop entries of each task vector, rescale the survivors, add
                        const double rescale = 1.0 / (1.0 - o.drop);
                        for (std::size_t e = 0; e < count; ++e) {
                            double total = 0;
                            for (std::size_t i = 0; i < n; ++i)
                                if (dare_keeps(o.seed, i, plan.name_hash, from + e, o.drop))
                                    total += (double(x(i)[e]) - double(b[e])) * rescale;
                            y[e] = float(double(b[e]) + o.lambda * total);
                        }
                    }
                    convert_from_f32(out_tensor.dtype, y, dst + from * dtype_size(out_tensor.dtype),
                                     count);
                }
            }
        }
        for (auto* r : refs) result.bytes_read += r->info->nbytes();
        result.tensors += 1;
    };
    result.dropped_heads = dropped.size();

    // ---- provenance and the output folder
    std::vector<std::string> hashes(inputs.size());
#pragma omp parallel for num_threads(threads) schedule(dynamic)
    for (std::size_t i = 0; i < inputs.size(); ++i) hashes[i] = checkpoint_weights_sha256(*inputs[i].tensors);
    json inputs_json = json::array();
    for (std::size_t i = 0; i < n; ++i)
        inputs_json.push_back({{"path", fs::absolute(inputs[i].dir).lexically_normal().string()}, {"sha256", hashes[i]}});
    json parameters = {{"dtype", o.dtype ? dtype_name(*o.dtype) : "as the first model"}, {"keep_head", o.keep_head}};
    switch (o.method) {
    case MergeMethod::Weighted: parameters["weights"] = o.weights; break;
    case MergeMethod::TaskArithmetic: parameters["lambda"] = o.lambda; break;
    case MergeMethod::Ties: parameters["lambda"] = o.lambda, parameters["density"] = o.density; break;
    case MergeMethod::Dare: parameters["lambda"] = o.lambda, parameters["drop"] = o.drop, parameters["seed"] = o.seed; break;
    case MergeMethod::Slerp: parameters["t"] = o.t; break;
    default: break;
    }
    json provenance = {{"format", "basin-merge-v1"},
                       {"method", method},
                       {"parameters", parameters},
                       {"models", inputs_json},
                       {"dropped_heads", dropped},
                       {"tensors_merged", merged.size()}};
    if (with_base)
        provenance["base"] = {{"path", fs::absolute(o.base).lexically_normal().string()}, {"sha256", hashes.back()}};
    if (!o.extra_provenance.is_null()) provenance["selection"] = o.extra_provenance;
    const fs::path config_source = model_folder(with_base ? o.base : o.models[0]); // sentence-transformers: the body
    json config = json::parse(read_text_file(config_source / "config.json", limits::config_json), nullptr, false);
    BASIN_CHECK(!config.is_discarded() && config.is_object(), (config_source / "config.json").string(),
                ": not a JSON object");
    if (!o.keep_head) { // the merged checkpoint is a body: no head class, no label names
        if (config.contains("architectures") && config["architectures"].is_array())
            for (auto& a : config["architectures"])
                if (a.is_string()) a = body_architecture(a.get<std::string>());
        for (const char* key : {"id2label", "label2id", "num_labels", "problem_type"}) config.erase(key);
    }
    if (o.dtype) config["torch_dtype"] = *o.dtype == Dtype::F16 ? "float16" : *o.dtype == Dtype::BF16 ? "bfloat16" : "float32";
    std::vector<TensorView> views;
    for (const auto& t : outputs) {
        views.push_back({t.name, t.dtype, t.shape, nullptr, [&merge_tensor, &t](void* bytes) {
                             merge_tensor(t, static_cast<std::uint8_t*>(bytes));
                         }});
        result.bytes_written += std::uint64_t(shape_numel(t.shape)) * dtype_size(t.dtype);
    }
    write_folder_atomically(out, [&](const fs::path& dir) {
        write_checkpoint_weights(dir, views, {{"format", "pt"}, {"basin_merge", method}}, o.shard_bytes);
        write_text_atomically(dir / "config.json", config.dump(2) + "\n");
        for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                                 "vocab.json", "merges.txt"})
            if (fs::exists(config_source / file)) fs::copy_file(config_source / file, dir / file);
        write_text_atomically(dir / "basin_merge.json", provenance.dump(2) + "\n");
    });
    result.provenance = provenance;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

} // namespace basin
