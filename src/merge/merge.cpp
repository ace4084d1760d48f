#include "basin/merge/merge.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <omp.h>

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/io/checkpoint.h"
#include "basin/space/gram.h"

namespace basin {

namespace {

using nlohmann::json;

constexpr std::size_t kChunk = 1 << 16; // elements per work item: all inputs' chunks fit in L2

struct Input {
    fs::path dir;
    std::unique_ptr<CheckpointTensors> tensors;
};

std::string weights_hash(const CheckpointTensors& t) {
    std::string joined;
    for (const auto& file : t.files()) joined += sha256_file(file->path());
    return t.files().size() == 1 ? joined : sha256_hex(joined.data(), joined.size());
}

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

std::uint64_t splitmix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// The tensor's per-method constants, computed in a first pass over the whole tensor where needed.
struct TensorPlan {
    std::vector<double> coefficients; // mean, weighted, slerp: out = sum_i c_i x_i
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

std::uint64_t fnv1a(const std::string& text) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
    return h;
}

bool dare_keeps(std::uint64_t seed, std::size_t model, std::uint64_t name_hash, std::uint64_t index, double drop) {
    const std::uint64_t stream = splitmix(splitmix(seed ^ splitmix(model)) ^ name_hash);
    const double u = double(splitmix(stream + index) >> 11) * 0x1.0p-53; // uniform in [0, 1)
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
    std::vector<std::string> merged, copied, dropped;
    for (const auto& name : first.names()) {
        const auto& info = *first.find(name)->info;
        const bool head = is_head_tensor(name);
        if (head && !o.keep_head) {
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
            BASIN_CHECK(first.find(name) || (is_head_tensor(name) && !o.keep_head), inputs[i].dir.string(),
                        ": has tensor ", name, " that ", inputs[0].dir.string(), " lacks");
    BASIN_CHECK(!merged.empty(), "merge: no floating-point tensors to merge");

    // ---- output buffers: one model
    struct Output {
        std::string name;
        Dtype dtype;
        Shape shape;
        std::vector<std::uint8_t> bytes;
    };
    std::vector<Output> outputs;
    for (const auto& name : first.names()) {
        if (std::find(dropped.begin(), dropped.end(), name) != dropped.end()) continue;
        const auto& info = *first.find(name)->info;
        const bool floating = is_floating(info.dtype);
        const Dtype dtype = floating && o.dtype ? *o.dtype : info.dtype;
        outputs.push_back({name, dtype, info.shape, std::vector<std::uint8_t>(std::size_t(info.numel()) * dtype_size(dtype))});
        if (!floating) std::memcpy(outputs.back().bytes.data(), first.find(name)->data(), info.nbytes());
    }

    const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
    const std::size_t sources = n + (with_base ? 1 : 0);
    MergeResult result;
    for (auto& out_tensor : outputs) {
        if (!is_floating(first.find(out_tensor.name)->info->dtype)) continue;
        const std::string& name = out_tensor.name;
        std::vector<const CheckpointTensors::Ref*> refs(sources);
        for (std::size_t i = 0; i < sources; ++i) refs[i] = inputs[i].tensors->find(name);
        const std::size_t numel = std::size_t(refs[0]->info->numel());
        const std::size_t chunks = (numel + kChunk - 1) / kChunk;
        for (auto* r : refs) r->file->prefetch(*r->info, 0, r->info->nbytes());

        // loads chunk c of every source as float32 into scratch (row i = source i)
        auto load = [&](std::size_t c, std::vector<float>& scratch) {
            const std::size_t from = c * kChunk, count = std::min(kChunk, numel - from);
            for (std::size_t i = 0; i < sources; ++i) {
                const auto* info = refs[i]->info;
                convert_to_f32(info->dtype, refs[i]->data() + from * dtype_size(info->dtype), scratch.data() + i * kChunk,
                               count);
            }
            return std::make_pair(from, count);
        };

        TensorPlan plan;
        plan.name_hash = fnv1a(name);
        // ---- first pass: statistics over the whole tensor
        if (o.method == MergeMethod::Slerp || o.method == MergeMethod::ModelStock) {
            // inner products of the vectors the method needs (slerp: the weights; stock: task vectors)
            const std::size_t k = o.method == MergeMethod::Slerp ? 2 : n;
            std::vector<double> gram(k * k, 0.0);
#pragma omp parallel num_threads(threads)
            {
                std::vector<float> scratch(sources * kChunk);
                std::vector<double> local(k * k, 0.0);
#pragma omp for schedule(static)
                for (std::size_t c = 0; c < chunks; ++c) {
                    const auto [from, count] = load(c, scratch);
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
#pragma omp for schedule(static)
                    for (std::size_t c = 0; c < chunks; ++c) {
                        const auto [from, count] = load(c, scratch);
                        for (std::size_t e = 0; e < count; ++e)
                            magnitudes[from + e] = std::abs(scratch[i * kChunk + e] - scratch[n * kChunk + e]);
                    }
                }
                std::nth_element(magnitudes.begin(), magnitudes.begin() + std::ptrdiff_t(keep - 1), magnitudes.end(),
                                 std::greater<float>());
                plan.thresholds[i] = magnitudes[keep - 1];
            }
        } else if (o.method == MergeMethod::Mean) {
            plan.coefficients.assign(n, 1.0 / double(n));
        } else if (o.method == MergeMethod::Weighted) {
            double sum = 0;
            for (double w : o.weights) sum += w;
            for (double w : o.weights) plan.coefficients.push_back(w / sum);
        }

        // ---- second pass: combine chunk by chunk into the output tensor
#pragma omp parallel num_threads(threads)
        {
            std::vector<float> scratch(sources * kChunk), merged_chunk(kChunk);
#pragma omp for schedule(static)
            for (std::size_t c = 0; c < chunks; ++c) {
                const auto [from, count] = load(c, scratch);
                const float* b = with_base ? scratch.data() + n * kChunk : nullptr;
                auto x = [&](std::size_t i) { return scratch.data() + i * kChunk; };
                float* y = merged_chunk.data();
                switch (o.method) {
                case MergeMethod::Mean:
                case MergeMethod::Weighted:
                case MergeMethod::Slerp: {
                    // sum_i c_i x_i in double; exact-zero coefficients skipped so that slerp at t = 0
                    // or 1 returns the endpoint bit for bit
                    for (std::size_t e = 0; e < count; ++e) {
                        double s = 0; // starts from the first term, not 0, so that -0.0 survives
                        bool any = false;
                        for (std::size_t i = 0; i < plan.coefficients.size(); ++i) {
                            if (plan.coefficients[i] == 0) continue;
                            const double term = plan.coefficients[i] * double(x(i)[e]);
                            s = any ? s + term : term;
                            any = true;
                        }
                        y[e] = float(s);
                    }
                    break;
                }
                case MergeMethod::TaskArithmetic:
                    for (std::size_t e = 0; e < count; ++e) {
                        double s = 0;
                        for (std::size_t i = 0; i < n; ++i) s += double(x(i)[e]) - double(b[e]);
                        y[e] = o.lambda == 0 ? b[e] : float(double(b[e]) + o.lambda * s);
                    }
                    break;
                case MergeMethod::Ties:
                    for (std::size_t e = 0; e < count; ++e) {
                        double total = 0;
                        for (std::size_t i = 0; i < n; ++i) {
                            const float tau = x(i)[e] - b[e];
                            if (std::abs(tau) >= plan.thresholds[i]) total += tau;
                        }
                        double sum = 0;
                        std::size_t agree = 0;
                        if (total != 0)
                            for (std::size_t i = 0; i < n; ++i) {
                                const float tau = x(i)[e] - b[e];
                                if (std::abs(tau) >= plan.thresholds[i] && tau != 0 && (tau > 0) == (total > 0))
                                    sum += tau, ++agree;
                            }
                        y[e] = agree ? float(double(b[e]) + o.lambda * sum / double(agree)) : b[e];
                    }
                    break;
                case MergeMethod::Dare: {
                    const double rescale = 1.0 / (1.0 - o.drop);
                    for (std::size_t e = 0; e < count; ++e) {
                        double s = 0;
                        for (std::size_t i = 0; i < n; ++i)
                            if (dare_keeps(o.seed, i, plan.name_hash, from + e, o.drop))
                                s += (double(x(i)[e]) - double(b[e])) * rescale;
                        y[e] = float(double(b[e]) + o.lambda * s);
                    }
                    break;
                }
                case MergeMethod::ModelStock:
                    for (std::size_t e = 0; e < count; ++e) {
                        double mean = 0;
                        for (std::size_t i = 0; i < n; ++i) mean += x(i)[e];
                        mean /= double(n);
                        y[e] = float(plan.stock_t * mean + (1 - plan.stock_t) * double(b[e]));
                    }
                    break;
                }
                convert_from_f32(out_tensor.dtype, y, out_tensor.bytes.data() + from * dtype_size(out_tensor.dtype), count);
            }
        }
        for (auto* r : refs) {
            result.bytes_read += r->info->nbytes();
            r->file->release(*r->info, 0, r->info->nbytes()); // the page cache keeps them; our RSS does not
        }
        result.tensors += 1;
    }
    result.dropped_heads = dropped.size();

    // ---- provenance and the output folder
    json inputs_json = json::array();
    for (std::size_t i = 0; i < n; ++i)
        inputs_json.push_back({{"path", fs::absolute(inputs[i].dir).lexically_normal().string()},
                               {"sha256", weights_hash(*inputs[i].tensors)}});
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
        provenance["base"] = {{"path", fs::absolute(o.base).lexically_normal().string()},
                              {"sha256", weights_hash(*base)}};
    if (!o.extra_provenance.is_null()) provenance["selection"] = o.extra_provenance;
    const fs::path config_source = with_base ? o.base : o.models[0];
    json config = json::parse(read_text_file(config_source / "config.json"), nullptr, false);
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
    for (const auto& t : outputs) views.push_back({t.name, t.dtype, t.shape, t.bytes.data()});
    write_folder_atomically(out, [&](const fs::path& dir) {
        write_checkpoint_weights(dir, views, {{"format", "pt"}, {"basin_merge", method}}, o.shard_bytes);
        write_text_atomically(dir / "config.json", config.dump(2) + "\n");
        for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                                 "vocab.json", "merges.txt"})
            if (fs::exists(config_source / file)) fs::copy_file(config_source / file, dir / file);
        write_text_atomically(dir / "basin_merge.json", provenance.dump(2) + "\n");
    });
    for (const auto& t : outputs) result.bytes_written += t.bytes.size();
    result.provenance = provenance;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

} // namespace basin
