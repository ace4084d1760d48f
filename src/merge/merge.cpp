#include "basin/merge/merge.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/core/interrupt.h"
#include "basin/core/limits.h"
#include "basin/io/adapter.h"
#include "basin/io/checkpoint.h"
#include "basin/io/tensor_reader.h"
#include "basin/merge/adapters.h"
#include "basin/merge/methods.h"
#include "basin/space/gram.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <omp.h>
#include <regex>

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
        for (std::size_t e = 0; e < n; ++e)
            sum[e] = w * double(x[e]);
    else
        for (std::size_t e = 0; e < n; ++e)
            sum[e] += w * double(x[e]);
}

} // namespace

bool dare_keeps(std::uint64_t seed, std::size_t model, std::uint64_t name_hash, std::uint64_t index, double drop) {
    const std::uint64_t stream = splitmix64(splitmix64(seed ^ splitmix64(model)) ^ name_hash);
    const double u = double(splitmix64(stream + index) >> 11) * 0x1.0p-53; // uniform in [0, 1)
    return u >= drop;
}

namespace {

std::string models_text(std::size_t n) {
    static const char* words[] = {"no", "one model", "two models", "three models"};
    return n < 4 ? words[n] : std::to_string(n) + " models";
}

void check_merge_options(const MergeOptions& o, const MergeMethodEntry& m) {
    const std::size_t n = o.models.size();
    BASIN_CHECK(n >= 1, "merge: no models given");
    if (m.max_models == m.min_models)
        BASIN_CHECK(n == m.min_models, "merge --method ", m.name, " takes exactly ", models_text(m.min_models),
                    ", got ", n);
    BASIN_CHECK(n >= m.min_models, "merge --method ", m.name, " needs at least ", models_text(m.min_models), ", got ",
                n);
    BASIN_CHECK(m.max_models == 0 || n <= m.max_models, "merge --method ", m.name, " takes at most ",
                models_text(m.max_models), ", got ", n);
    m.check(o);
    BASIN_CHECK(!m.needs_base || !o.base.empty(), "merge --method ", m.name,
                " works on task vectors: give the pretrained model with --base");
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < i; ++j)
            BASIN_CHECK(fs::weakly_canonical(o.models[i]) != fs::weakly_canonical(o.models[j]), "merge: model ",
                        o.models[i].string(), " is given twice");
}

// Which tensors are merged, copied (integer buffers) or dropped, checked across every input
// before any work. Task heads are dropped (a new task replaces them) unless keep_head. BERT's
// pooler is body: it is merged like any body tensor where every input (and the base) has it with
// one shape, and dropped otherwise (RoBERTa classifiers have none), never an error.
struct TensorSelection {
    std::vector<std::string> merged, copied, dropped;
};

TensorSelection select_tensors(const std::vector<Input>& inputs, std::size_t n, const MergeOptions& o) {
    const CheckpointTensors& first = *inputs[0].tensors;
    const CheckpointTensors* base = o.base.empty() ? nullptr : inputs.back().tensors.get();
    auto pooler_everywhere = [&](const std::string& name) {
        const Shape& shape = first.find(name)->info->shape;
        for (const auto& in : inputs) {
            const auto* ref = in.tensors->find(name);
            if (!ref || ref->info->shape != shape) return false;
        }
        return true;
    };
    TensorSelection t;
    for (const auto& name : first.names()) {
        const auto& info = *first.find(name)->info;
        const bool head = is_task_head_tensor(name);
        if ((head && !o.keep_head) || (is_pooler_tensor(name) && !pooler_everywhere(name))) {
            t.dropped.push_back(name);
            continue;
        }
        for (std::size_t i = 1; i < n; ++i) {
            const auto* ref = inputs[i].tensors->find(name);
            BASIN_CHECK(ref, inputs[i].dir.string(), ": has no tensor ", name, " (", inputs[0].dir.string(), " has it",
                        head ? "; heads are kept only with --keep-head when every input has the same head)" : ")");
            BASIN_CHECK(ref->info->shape == info.shape, "merge: tensor ", name, " has shape ",
                        shape_string(ref->info->shape), " in ", inputs[i].dir.string(), " but ",
                        shape_string(info.shape), " in ", inputs[0].dir.string(),
                        head ? " (heads differ: leave out --keep-head to drop them)" : "");
        }
        if (!is_floating(info.dtype)) {
            t.copied.push_back(name); // integer buffers (position ids): taken from the first model
            continue;
        }
        for (std::size_t i = 1; i < n; ++i)
            BASIN_CHECK(is_floating(inputs[i].tensors->find(name)->info->dtype), inputs[i].dir.string(), ": tensor ",
                        name, " is ", dtype_name(inputs[i].tensors->find(name)->info->dtype),
                        ", expected floating point");
        if (base) {
            const auto* ref = base->find(name);
            BASIN_CHECK(ref, o.base.string(), ": the base has no tensor ", name, " (the models have it)");
            BASIN_CHECK(ref->info->shape == info.shape, "merge: tensor ", name, " has shape ",
                        shape_string(ref->info->shape), " in the base ", o.base.string(), " but ",
                        shape_string(info.shape), " in ", inputs[0].dir.string());
        }
        t.merged.push_back(name);
    }
    for (std::size_t i = 1; i < n; ++i)
        for (const auto& name : inputs[i].tensors->names())
            BASIN_CHECK(first.find(name) || (is_task_head_tensor(name) && !o.keep_head) || is_pooler_tensor(name),
                        inputs[i].dir.string(), ": has tensor ", name, " that ", inputs[0].dir.string(), " lacks");
    BASIN_CHECK(!t.merged.empty(), "merge: no floating-point tensors to merge");
    return t;
}

// basin_merge.json: the method, its parameters, every input with its weights' SHA-256.
json merge_provenance(const MergeOptions& o, const MergeMethodEntry& m, const std::vector<Input>& inputs,
                      const TensorSelection& t, int threads) {
    const std::size_t n = o.models.size();
    std::vector<std::string> hashes(inputs.size());
#pragma omp parallel for num_threads(threads) schedule(dynamic)
    for (std::size_t i = 0; i < inputs.size(); ++i)
        hashes[i] = checkpoint_weights_sha256(*inputs[i].tensors);
    json inputs_json = json::array();
    for (std::size_t i = 0; i < n; ++i)
        inputs_json.push_back(
            {{"path", fs::absolute(inputs[i].dir).lexically_normal().string()}, {"sha256", hashes[i]}});
    json parameters = {{"dtype", o.dtype ? dtype_name(*o.dtype) : "as the first model"}, {"keep_head", o.keep_head}};
    const json own = m.parameters(o); // named: a range-for over a temporary's items() dangles
    for (const auto& [key, value] : own.items())
        parameters[key] = value;
    json provenance = {{"format", "basin-merge-v1"}, {"method", m.name},           {"parameters", parameters},
                       {"models", inputs_json},      {"dropped_heads", t.dropped}, {"tensors_merged", t.merged.size()}};
    if (!o.base.empty())
        provenance["base"] = {{"path", fs::absolute(o.base).lexically_normal().string()}, {"sha256", hashes.back()}};
    if (!o.extra_provenance.is_null()) provenance["selection"] = o.extra_provenance;
    if (!o.config.is_null()) provenance["config"] = o.config;
    return provenance;
}

// The output's config.json: the base's (or the first model's); without keep_head a body, with no
// head class and no label names.
json merged_config(const MergeOptions& o, const fs::path& config_source) {
    json config = json::parse(read_text_file(config_source / "config.json", limits::config_json), nullptr, false);
    BASIN_CHECK(!config.is_discarded() && config.is_object(), (config_source / "config.json").string(),
                ": not a JSON object");
    if (!o.keep_head) {
        if (config.contains("architectures") && config["architectures"].is_array())
            for (auto& a : config["architectures"])
                if (a.is_string()) a = body_architecture(a.get<std::string>());
        for (const char* key : {"id2label", "label2id", "num_labels", "problem_type"})
            config.erase(key);
    }
    if (o.dtype)
        config["torch_dtype"] = *o.dtype == Dtype::F16 ? "float16" : *o.dtype == Dtype::BF16 ? "bfloat16" : "float32";
    return config;
}

// One tensor merged by streaming its chunks: a statistics pass where the method needs one, then
// the combination (linear methods: the coefficient sum; the others: the method's combine).
class TensorMerger {
  public:
    TensorMerger(const MergeOptions& o, const MergeMethodEntry& m, const std::vector<Input>& inputs, int threads)
        : o_(o), m_(m), inputs_(inputs), n_(o.models.size()), sources_(inputs.size()), threads_(threads) {
        std::vector<const SafetensorsFile*> files;
        for (const auto& in : inputs)
            for (const auto& f : in.tensors->files())
                files.push_back(f.get());
        reader_ = std::make_unique<TensorReader>(files); // pread into per-thread buffers, not the mapping
        // per-thread buffers, allocated once: every source's chunk as stored (at most 8 bytes a value)
        raw_buffers_.resize(std::size_t(std::max(1, threads)));
    }

    // Writes the merged tensor `name` into dst (as dtype); returns the bytes read.
    std::uint64_t merge(const std::string& name, std::size_t layers, Dtype dtype, std::uint8_t* dst) {
        std::vector<const CheckpointTensors::Ref*> refs(sources_);
        for (std::size_t i = 0; i < sources_; ++i)
            refs[i] = inputs_[i].tensors->find(name);
        const std::size_t numel = std::size_t(refs[0]->info->numel());
        // a configuration's values for this tensor (gradients, filters), else the options as given
        MergeOptions tensor_options;
        if (o_.per_tensor) {
            tensor_options = o_;
            o_.per_tensor(name, layers, tensor_options);
        }
        const MergeOptions& o = o_.per_tensor ? tensor_options : o_;
        TensorPlan plan;
        plan.name_hash = fnv1a64(name);
        try {
            m_.plan(o, n_, statistics(o, refs, numel, plan.name_hash), plan);
        } catch (const Error& e) {
            fail("tensor ", name, ": ", e.what());
        }
        if (!plan.coefficients.empty())
            linear(refs, numel, plan.coefficients, dtype, dst);
        else
            combined(o, refs, numel, plan, dtype, dst);
        std::uint64_t bytes = 0;
        for (auto* r : refs)
            bytes += r->info->nbytes();
        return bytes;
    }

  private:
    using Refs = std::vector<const CheckpointTensors::Ref*>;

    std::vector<std::uint8_t>& thread_raw() {
        auto& raw = raw_buffers_.at(std::size_t(omp_get_thread_num()));
        if (raw.empty()) raw.resize(sources_ * kChunk * 8);
        return raw;
    }

    // reads chunk c of every source and converts it to float32 into scratch (row s = source s);
    // raw holds one source's chunk as stored
    std::pair<std::size_t, std::size_t> load(const Refs& refs, std::size_t numel, std::size_t c,
                                             std::vector<float>& scratch, std::vector<std::uint8_t>& raw) const {
        const std::size_t from = c * kChunk, count = std::min(kChunk, numel - from);
        for (std::size_t i = 0; i < sources_; ++i) {
            const std::size_t size = dtype_size(refs[i]->info->dtype);
            reader_->read(*refs[i]->file, *refs[i]->info, from * size, count * size, raw.data());
            convert_to_f32(refs[i]->info->dtype, raw.data(), scratch.data() + i * kChunk, count);
        }
        return {from, count};
    }

    TensorStatistics statistics(const MergeOptions& o, const Refs& refs, std::size_t numel, std::uint64_t name_hash) {
        TensorStatistics s;
        s.models = n_;
        const std::size_t chunks = (numel + kChunk - 1) / kChunk;
        using S = MergeStatistic;
        const bool whole_nuslerp = m_.statistic == S::vector_inner_products && o.vectors == "tensor";
        if (m_.statistic == S::vector_inner_products && !whole_nuslerp) {
            vector_statistics(o, refs, numel, s);
        } else if (m_.statistic == S::weight_inner_products || m_.statistic == S::task_vector_inner_products ||
                   m_.statistic == S::inner_products || m_.statistic == S::source_inner_products || whole_nuslerp) {
            const bool tau = m_.statistic == S::task_vector_inner_products ||
                             ((m_.statistic == S::inner_products || whole_nuslerp) && sources_ > n_);
            const std::size_t k = m_.statistic == S::source_inner_products ? sources_ : n_;
            s.gram.assign(k * k, 0.0);
#pragma omp parallel num_threads(threads_)
            {
                std::vector<float> scratch(sources_ * kChunk);
                auto& raw = thread_raw();
                std::vector<double> local(k * k, 0.0);
#pragma omp for schedule(static)
                for (std::size_t c = 0; c < chunks; ++c) {
                    const auto [from, count] = load(refs, numel, c, scratch, raw);
                    if (tau) // tau_i = x_i - base
                        for (std::size_t i = 0; i < n_; ++i)
                            for (std::size_t e = 0; e < count; ++e)
                                scratch[i * kChunk + e] -= scratch[n_ * kChunk + e];
                    for (std::size_t i = 0; i < k; ++i)
                        for (std::size_t j = i; j < k; ++j) {
                            double sum = 0;
                            const float *a = scratch.data() + i * kChunk, *b = scratch.data() + j * kChunk;
                            for (std::size_t e = 0; e < count; ++e)
                                sum += double(a[e]) * double(b[e]);
                            local[i * k + j] += sum;
                        }
                }
#pragma omp critical
                for (std::size_t i = 0; i < k * k; ++i)
                    s.gram[i] += local[i];
            }
            for (std::size_t i = 0; i < k; ++i) // the upper triangle was summed: mirror it
                for (std::size_t j = 0; j < i; ++j)
                    s.gram[i * k + j] = s.gram[j * k + i];
        } else if (m_.statistic == MergeStatistic::top_magnitudes) {
            // each task vector keeps its ceil(density * numel) entries of largest magnitude
            const std::size_t keep = std::size_t(std::ceil(o_.density * double(numel)));
            std::vector<float> magnitudes(numel);
            s.threshold.assign(n_, std::numeric_limits<float>::infinity());
            for (std::size_t i = 0; i < n_ && keep > 0; ++i) {
                task_vector_magnitudes(refs, numel, i, magnitudes);
                std::nth_element(magnitudes.begin(), magnitudes.begin() + std::ptrdiff_t(keep - 1), magnitudes.end(),
                                 std::greater<float>());
                s.threshold[i] = magnitudes[keep - 1];
            }
        } else if (m_.statistic == MergeStatistic::gta) {
            gta_statistics(o, refs, numel, name_hash, s);
        } else if (m_.statistic == MergeStatistic::sce) {
            sce_statistics(o, refs, numel, s);
        }
        return s;
    }

    // DELLA's MagPrune (Deep et al., 2024), as mergekit: per row (a 1-D tensor is one row), entries
    // ranked by magnitude (ascending, ties by position) are kept with probability
    // (density - epsilon) + 2 epsilon (rank - 1) / (columns - 1), drawn as DARE's masks are
    static void della_mask(const MergeOptions& o, const Shape& shape, const std::vector<float>& magnitudes,
                           std::size_t model, double density, std::uint64_t name_hash,
                           std::vector<std::uint64_t>& bits) {
        const std::size_t numel = magnitudes.size();
        bits.assign((numel + 63) / 64, 0);
        if (density <= 0) return;
        const double epsilon = gta_epsilon(o, model);
        BASIN_CHECK(density + epsilon < 1 && density - epsilon > 0, "merge: della: density ", density, " +- epsilon ",
                    epsilon, " must stay in (0, 1)");
        BASIN_CHECK(shape.size() <= 2, "merge: della ranks rows of 1-D and 2-D tensors; a tensor has shape ",
                    shape_string(shape));
        const std::size_t columns = shape.size() == 2 ? std::size_t(shape[1]) : numel;
        std::vector<std::size_t> order(columns);
        for (std::size_t row = 0; row * columns < numel; ++row) {
            const float* m = magnitudes.data() + row * columns;
            for (std::size_t c = 0; c < columns; ++c)
                order[c] = c;
            std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return m[a] < m[b]; });
            for (std::size_t rank = 0; rank < columns; ++rank) {
                const double spread = columns > 1 ? double(rank) / double(columns - 1) : 0.0;
                const double p = (density - epsilon) + spread * 2 * epsilon;
                const std::size_t e = row * columns + order[rank];
                if (dare_keeps(o.seed, model, name_hash, e, 1 - p)) bits[e / 64] |= std::uint64_t(1) << (e % 64);
            }
        }
    }

    // |tau_i| for every element of model i's task vector (reading model i and the base only)
    void task_vector_magnitudes(const Refs& refs, std::size_t numel, std::size_t i, std::vector<float>& out) {
        const std::size_t chunks = (numel + kChunk - 1) / kChunk;
        out.resize(numel);
#pragma omp parallel num_threads(threads_)
        {
            std::vector<float> model(kChunk), base(kChunk);
            auto& raw = thread_raw();
#pragma omp for schedule(static)
            for (std::size_t c = 0; c < chunks; ++c) {
                const std::size_t from = c * kChunk, count = std::min(kChunk, numel - from);
                for (auto [source, to] : {std::pair{i, model.data()}, std::pair{n_, base.data()}}) {
                    const std::size_t size = dtype_size(refs[source]->info->dtype);
                    reader_->read(*refs[source]->file, *refs[source]->info, from * size, count * size, raw.data());
                    convert_to_f32(refs[source]->info->dtype, raw.data(), to, count);
                }
                for (std::size_t e = 0; e < count; ++e)
                    out[from + e] = std::abs(model[e] - base[e]);
            }
        }
    }

    // gta: magnitude sparsification keeps each task vector's max(1, floor(density * numel)) entries
    // of largest magnitude (all for density >= 1, none for <= 0), as mergekit; with rescale, each
    // sparsified task vector is scaled by ||tau_i||_1 / ||kept tau_i||_1 (1 when either is below 1e-7)
    void gta_statistics(const MergeOptions& o, const Refs& refs, std::size_t numel, std::uint64_t name_hash,
                        TensorStatistics& s) {
        s.threshold.assign(n_, 0.0f);
        s.upper.assign(n_, std::numeric_limits<float>::infinity());
        s.scale.assign(n_, 1.0);
        const bool magnitude = o.sparsify == "magnitude", random = o.sparsify == "random";
        const bool outliers = o.sparsify == "outliers", della = o.sparsify == "della";
        if (!magnitude && !random && !outliers && !della) return;
        if (della) s.keep.assign(n_, {});
        std::vector<float> magnitudes;
        for (std::size_t i = 0; i < n_; ++i) {
            const double density = gta_density(o, i);
            if (density >= 1) continue; // everything kept, nothing rescaled
            task_vector_magnitudes(refs, numel, i, magnitudes);
            if (outliers) {
                // breadcrumbs: of the entries sorted by magnitude, the floor(gamma * numel) largest
                // and the smallest are dropped, floor(density * numel) kept
                const std::size_t target = std::size_t(density * double(numel)),
                                  top = std::size_t(gta_gamma(o, i) * double(numel));
                const std::size_t bottom = numel > target + top ? numel - target - top : 0;
                if (target == 0) {
                    s.threshold[i] = std::numeric_limits<float>::infinity();
                } else {
                    std::vector<float> sorted = magnitudes;
                    std::nth_element(sorted.begin(), sorted.begin() + std::ptrdiff_t(bottom), sorted.end());
                    s.threshold[i] = sorted[bottom];
                    const std::size_t last = std::min(numel - 1, bottom + target - 1);
                    std::nth_element(sorted.begin(), sorted.begin() + std::ptrdiff_t(last), sorted.end());
                    s.upper[i] = sorted[last];
                }
            }
            if (della) della_mask(o, refs[0]->info->shape, magnitudes, i, density, name_hash, s.keep[i]);
            if (magnitude) {
                if (density <= 0 || numel == 0) {
                    s.threshold[i] = std::numeric_limits<float>::infinity();
                } else {
                    const std::size_t keep = std::max<std::size_t>(1, std::size_t(density * double(numel)));
                    std::vector<float> sorted = magnitudes;
                    std::nth_element(sorted.begin(), sorted.begin() + std::ptrdiff_t(keep - 1), sorted.end(),
                                     std::greater<float>());
                    s.threshold[i] = sorted[keep - 1];
                }
            }
            if (!o.rescale) continue;
            double before = 0, after = 0;
            for (std::size_t e = 0; e < numel; ++e) {
                before += magnitudes[e];
                const bool kept = magnitude  ? magnitudes[e] >= s.threshold[i]
                                  : outliers ? magnitudes[e] >= s.threshold[i] && magnitudes[e] <= s.upper[i]
                                  : della    ? (s.keep[i][e / 64] >> (e % 64)) & 1
                                             : dare_keeps(o.seed, i, name_hash, e, 1 - density);
                if (kept) after += magnitudes[e];
            }
            s.scale[i] = before < 1e-7 || after < 1e-7 ? 1.0 : before / after;
        }
    }

    // nuslerp per vector: <a, a>, <a, b>, <b, b> of each row (vectors along the last dimension) or
    // column (along the first) of the two models' values (task vectors where a base is given);
    // s.columns is what an element's flat index is divided by (rows) or taken modulo (columns)
    void vector_statistics(const MergeOptions& o, const Refs& refs, std::size_t numel, TensorStatistics& s) {
        const Shape& shape = refs[0]->info->shape;
        const bool rows = o.vectors == "rows";
        const std::size_t first = shape.empty() ? 1 : std::size_t(shape.front());
        s.columns = shape.empty() ? 1 : rows ? std::size_t(shape.back()) : numel / std::max<std::size_t>(first, 1);
        s.columns = std::max<std::size_t>(s.columns, 1);
        const std::size_t vectors = rows ? numel / s.columns : s.columns;
        s.vectors.assign(3 * vectors, 0.0);
        const bool tau = sources_ > n_;
        const std::size_t chunks = (numel + kChunk - 1) / kChunk;
#pragma omp parallel num_threads(threads_)
        {
            std::vector<float> scratch(sources_ * kChunk);
            std::vector<double> local(3 * vectors, 0.0);
            auto& raw = thread_raw();
#pragma omp for schedule(static)
            for (std::size_t c = 0; c < chunks; ++c) {
                const auto [from, count] = load(refs, numel, c, scratch, raw);
                const float *a = scratch.data(), *b = scratch.data() + kChunk, *base = scratch.data() + 2 * kChunk;
                for (std::size_t e = 0; e < count; ++e) {
                    const double x = tau ? double(a[e] - base[e]) : double(a[e]);
                    const double y = tau ? double(b[e] - base[e]) : double(b[e]);
                    const std::size_t v = rows ? (from + e) / s.columns : (from + e) % s.columns;
                    local[3 * v] += x * x, local[3 * v + 1] += x * y, local[3 * v + 2] += y * y;
                }
            }
#pragma omp critical
            for (std::size_t i = 0; i < local.size(); ++i)
                s.vectors[i] += local[i];
        }
    }

    // sce: the variance an entry needs (keeping the floor(select_topk * nonzero) entries of largest
    // variance, mergekit's count, in float32 as it multiplies), then each model's mean square over
    // the kept entries, normalised
    void sce_statistics(const MergeOptions& o, const Refs& refs, std::size_t numel, TensorStatistics& s) {
        const std::size_t chunks = (numel + kChunk - 1) / kChunk;
        s.threshold.assign(1, -std::numeric_limits<float>::infinity()); // select_topk >= 1: every entry
        if (o.select_topk <= 0) s.threshold[0] = std::numeric_limits<float>::infinity();
        if (o.select_topk > 0 && o.select_topk < 1) {
            std::vector<float> variance(numel);
#pragma omp parallel num_threads(threads_)
            {
                std::vector<float> scratch(sources_ * kChunk);
                auto& raw = thread_raw();
#pragma omp for schedule(static)
                for (std::size_t c = 0; c < chunks; ++c) {
                    const auto [from, count] = load(refs, numel, c, scratch, raw);
                    const MergeChunk chunk{scratch.data(), kChunk, count, from};
                    for (std::size_t e = 0; e < count; ++e)
                        variance[from + e] = sce_variance(chunk, n_, e);
                }
            }
            const std::size_t nonzero =
                std::size_t(std::count_if(variance.begin(), variance.end(), [](float v) { return v != 0; }));
            const std::size_t keep = std::size_t(float(nonzero) * float(o.select_topk));
            if (keep == 0) {
                s.threshold[0] = std::numeric_limits<float>::infinity();
            } else {
                std::nth_element(variance.begin(), variance.begin() + std::ptrdiff_t(keep - 1), variance.end(),
                                 std::greater<float>());
                s.threshold[0] = variance[keep - 1];
            }
        }
        std::vector<double> squares(n_, 0.0);
#pragma omp parallel num_threads(threads_)
        {
            std::vector<float> scratch(sources_ * kChunk);
            std::vector<double> local(n_, 0.0);
            auto& raw = thread_raw();
#pragma omp for schedule(static)
            for (std::size_t c = 0; c < chunks; ++c) {
                const auto [from, count] = load(refs, numel, c, scratch, raw);
                const MergeChunk chunk{scratch.data(), kChunk, count, from};
                for (std::size_t e = 0; e < count; ++e) {
                    if (!(sce_variance(chunk, n_, e) >= s.threshold[0])) continue;
                    for (std::size_t i = 0; i < n_; ++i) {
                        const double tau = double(chunk.source(i)[e] - chunk.source(n_)[e]);
                        local[i] += tau * tau;
                    }
                }
            }
#pragma omp critical
            for (std::size_t i = 0; i < n_; ++i)
                squares[i] += local[i];
        }
        double sum = 0;
        for (auto& v : squares)
            sum += (v /= double(std::max<std::size_t>(numel, 1)));
        s.scale.resize(n_);
        for (std::size_t i = 0; i < n_; ++i)
            s.scale[i] = std::abs(sum) < 1e-6 ? 1.0 / double(n_) : squares[i] / sum;
    }

    // sum_s c_s x_s, converting and accumulating a block at a time (in L1), in double; the sum
    // starts from the first non-zero term, so a one-hot combination (slerp at t = 0 or 1, task
    // arithmetic with lambda = 0) returns its source bit for bit, -0.0 included
    void linear(const Refs& refs, std::size_t numel, const std::vector<double>& c, Dtype dtype, std::uint8_t* dst) {
        constexpr std::size_t kBlock = 2048;
        const std::size_t chunks = (numel + kChunk - 1) / kChunk;
#pragma omp parallel num_threads(threads_)
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
                        reader_->read(*refs[i]->file, *refs[i]->info, begin * size, (end - begin) * size,
                                      raw.data() + i * kChunk * 8);
                    }
                for (std::size_t from = begin; from < end; from += kBlock) {
                    const std::size_t count = std::min(kBlock, end - from);
                    bool first = true;
                    for (std::size_t i = 0; i < c.size(); ++i) {
                        if (c[i] == 0) continue;
                        const Dtype source = refs[i]->info->dtype;
                        convert_to_f32(source, raw.data() + i * kChunk * 8 + (from - begin) * dtype_size(source),
                                       values.data(), count);
                        accumulate(sum.data(), values.data(), c[i], count, first);
                        first = false;
                    }
                    for (std::size_t e = 0; e < count; ++e)
                        merged_block[e] = first ? 0.0f : float(sum[e]);
                    convert_from_f32(dtype, merged_block.data(), dst + from * dtype_size(dtype), count);
                }
            }
        }
    }

    void combined(const MergeOptions& o, const Refs& refs, std::size_t numel, const TensorPlan& plan, Dtype dtype,
                  std::uint8_t* dst) {
        BASIN_CHECK(m_.combine, "merge --method ", m_.name,
                    ": its plan set no coefficients and it has no combine step");
        const std::size_t chunks = (numel + kChunk - 1) / kChunk;
#pragma omp parallel num_threads(threads_)
        {
            std::vector<float> scratch(sources_ * kChunk), merged_chunk(kChunk);
            auto& raw = thread_raw();
#pragma omp for schedule(static)
            for (std::size_t ch = 0; ch < chunks; ++ch) {
                const auto [from, count] = load(refs, numel, ch, scratch, raw);
                m_.combine(o, n_, plan, {scratch.data(), kChunk, count, from}, merged_chunk.data());
                convert_from_f32(dtype, merged_chunk.data(), dst + from * dtype_size(dtype), count);
            }
        }
    }

    const MergeOptions& o_;
    const MergeMethodEntry& m_;
    const std::vector<Input>& inputs_;
    const std::size_t n_, sources_;
    const int threads_;
    std::unique_ptr<TensorReader> reader_;
    std::vector<std::vector<std::uint8_t>> raw_buffers_;
};

} // namespace

void write_merged_checkpoint(const fs::path& out, const std::vector<TensorView>& views, const MergeOptions& o,
                             const fs::path& config_source, const json& provenance) {
    const json config = merged_config(o, config_source);
    write_folder_atomically(out, [&](const fs::path& dir) {
        write_checkpoint_weights(dir, views, {{"format", "pt"}, {"basin_merge", merge_method_name(o.method)}},
                                 o.shard_bytes);
        write_text_atomically(dir / "config.json", config.dump(2) + "\n");
        copy_tokenizer_files(config_source, dir);
        write_text_atomically(dir / "basin_merge.json", provenance.dump(2) + "\n");
    });
}

MergeResult merge_checkpoints(const MergeOptions& o) {
    for (const auto& m : o.models) // adapters: sums of low-rank products (merge/adapters.h)
        if (is_adapter_folder(m)) return merge_adapters(o);
    BASIN_CHECK(o.adapter_out.empty(), "merge --adapter-out ", o.adapter_out, ": the inputs are not adapters");
    const auto start = std::chrono::steady_clock::now();
    const MergeMethodEntry& method = merge_method_entry(o.method);
    check_merge_options(o, method);
    const std::size_t n = o.models.size();
    std::vector<fs::path> all_inputs = o.models;
    if (!o.base.empty()) all_inputs.push_back(o.base);
    for (const auto& in : all_inputs) {
        BASIN_CHECK(fs::is_directory(in), in.string(), ": model folder not found");
        BASIN_CHECK(!inside(o.out, in), "--out ", o.out.string(), " is inside the input model folder ", in.string());
    }
    const fs::path out = check_output_folder(o.out, o.overwrite);

    std::vector<Input> inputs;
    for (const auto& dir : all_inputs)
        inputs.push_back({dir, std::make_unique<CheckpointTensors>(dir)});
    const CheckpointTensors& first = *inputs[0].tensors;
    const TensorSelection selection = select_tensors(inputs, n, o);
    const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();
    TensorMerger merger(o, method, inputs, threads);

    // the layer count a configuration's gradients spread over, and its check of the tensor names
    std::size_t layers = 0;
    std::vector<std::string> merged_names;
    for (const auto& name : first.names()) {
        if (std::find(selection.dropped.begin(), selection.dropped.end(), name) != selection.dropped.end()) continue;
        if (is_floating(first.find(name)->info->dtype)) merged_names.push_back(name);
        layers = std::max<std::size_t>(layers, std::size_t(tensor_layer_index(name) + 1));
    }
    if (o.check_tensor_names) o.check_tensor_names(merged_names, layers);

    // the output tensors, each computed just before it is written (one tensor in memory)
    MergeResult result;
    result.dropped_heads = selection.dropped.size();
    std::vector<TensorView> views;
    for (const auto& name : first.names()) {
        if (std::find(selection.dropped.begin(), selection.dropped.end(), name) != selection.dropped.end()) continue;
        const auto& info = *first.find(name)->info;
        const bool floating = is_floating(info.dtype);
        const Dtype dtype = floating && o.dtype ? *o.dtype : info.dtype;
        views.push_back({name, dtype, info.shape, nullptr, [&, name, dtype, floating](void* bytes) {
                             check_interrupted("merging");
                             auto* dst = static_cast<std::uint8_t*>(bytes);
                             if (!floating) { // integer buffers (position ids): the first model's
                                 std::memcpy(dst, first.find(name)->data(), first.find(name)->info->nbytes());
                                 return;
                             }
                             result.bytes_read += merger.merge(name, layers, dtype, dst);
                             result.tensors += 1;
                             if (o.progress) o.progress(result.tensors, selection.merged.size());
                         }});
        result.bytes_written += std::uint64_t(shape_numel(info.shape)) * dtype_size(dtype);
    }

    const json provenance = merge_provenance(o, method, inputs, selection, threads);
    const fs::path config_source =
        model_folder(o.base.empty() ? o.models[0] : o.base); // sentence-transformers: the body
    write_merged_checkpoint(out, views, o, config_source, provenance);
    result.provenance = provenance;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

int tensor_layer_index(const std::string& name) {
    static const std::regex layer(R"((^|\.)(layer|layers|h|block|blocks)\.(\d+)\.)");
    std::smatch m;
    return std::regex_search(name, m, layer) ? std::stoi(m[3].str()) : -1;
}

} // namespace basin
