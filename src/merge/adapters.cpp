#include "basin/merge/adapters.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/core/interrupt.h"
#include "basin/core/json_value.h"
#include "basin/core/limits.h"
#include "basin/io/adapter.h"
#include "basin/io/checkpoint.h"
#include "basin/space/gram.h" // is_task_head_tensor

#include <Eigen/Dense>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace basin {

namespace {

using nlohmann::json;
using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using FloatMap = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

// The coefficient of each input's task vector in the merge.
std::vector<double> coefficients(const MergeOptions& o) {
    const std::size_t n = o.models.size();
    switch (o.method) {
    case MergeMethod::Mean:
        return std::vector<double>(n, 1.0 / double(n));
    case MergeMethod::Weighted: {
        BASIN_CHECK(o.weights.size() == n, "merge --method weighted: ", o.weights.size(), " weights for ", n,
                    " models");
        double sum = 0;
        for (double w : o.weights)
            sum += w;
        BASIN_CHECK(std::isfinite(sum) && sum != 0, "merge --method weighted: the weights sum to ", sum);
        std::vector<double> c;
        for (double w : o.weights)
            c.push_back(o.normalize.value_or(true) ? w / sum : w);
        return c;
    }
    case MergeMethod::TaskArithmetic:
        return std::vector<double>(n, o.lambda);
    default:
        fail("merge --method ", merge_method_name(o.method),
             ": adapters are merged by mean, weighted or task-arithmetic (their merged task vector stays a sum of "
             "low-rank products)");
    }
}

// One weight's merged factors: B [out, K], A [K, in], the coefficient and scale folded into B.
struct Stack {
    std::string module; // PEFT's spelling, from the first adapter of the weight
    const LoraWeight* first = nullptr;
    Matrix b, a;
};

std::map<std::string, Stack> stack_by_target(const std::vector<std::unique_ptr<LoraAdapter>>& adapters,
                                             const std::vector<double>& c) {
    std::map<std::string, Stack> out;
    for (const auto& [target, members] : weights_by_target(adapters)) {
        Stack s;
        s.first = members.front().second;
        s.module = s.first->module;
        std::int64_t k = 0;
        for (const auto& [i, w] : members)
            k += w->rank;
        s.b = Matrix(s.first->out, k), s.a = Matrix(k, s.first->in);
        std::int64_t at = 0;
        for (const auto& [i, w] : members) {
            const std::vector<float> a = adapters[i]->a(*w), b = adapters[i]->b(*w);
            s.b.middleCols(at, w->rank) = FloatMap(b.data(), w->out, w->rank).cast<double>() * (c[i] * w->scale);
            s.a.middleRows(at, w->rank) = FloatMap(a.data(), w->rank, w->in).cast<double>();
            at += w->rank;
        }
        out.emplace(target, std::move(s));
    }
    return out;
}

// The best rank-r factors of B A (Eckart-Young) without forming B A; returns the energy
// (squared singular values) kept and dropped.
std::pair<double, double> truncate(Stack& s, std::int64_t r) {
    const Eigen::HouseholderQR<Matrix> qb(s.b), qa(s.a.transpose());
    const std::int64_t k = s.b.cols(), kb = std::min<std::int64_t>(k, s.b.rows()),
                       ka = std::min<std::int64_t>(k, s.a.cols());
    const Matrix q_b = qb.householderQ() * Matrix::Identity(s.b.rows(), kb);
    const Matrix q_a = qa.householderQ() * Matrix::Identity(s.a.cols(), ka);
    const Matrix r_b = qb.matrixQR().topRows(kb).triangularView<Eigen::Upper>();
    const Matrix r_a = qa.matrixQR().topRows(ka).triangularView<Eigen::Upper>();
    const Eigen::JacobiSVD<Matrix> svd(r_b * r_a.transpose(), Eigen::ComputeThinU | Eigen::ComputeThinV);
    const auto& sigma = svd.singularValues();
    const std::int64_t keep = std::min<std::int64_t>(r, sigma.size());
    double kept = 0, dropped = 0;
    for (std::int64_t i = 0; i < sigma.size(); ++i)
        (i < keep ? kept : dropped) += sigma(i) * sigma(i);
    Matrix b = Matrix::Zero(s.b.rows(), r), a = Matrix::Zero(r, s.a.cols());
    const Eigen::VectorXd root = sigma.head(keep).cwiseSqrt();
    b.leftCols(keep) = q_b * svd.matrixU().leftCols(keep) * root.asDiagonal();
    a.topRows(keep) = root.asDiagonal() * svd.matrixV().leftCols(keep).transpose() * q_a.transpose();
    s.b = std::move(b), s.a = std::move(a);
    return {kept, dropped};
}

std::vector<float> to_float(const Matrix& m) {
    std::vector<float> out(std::size_t(m.size()));
    for (Eigen::Index i = 0; i < m.size(); ++i)
        out[std::size_t(i)] = float(m.data()[i]);
    return out;
}

json inputs_json(const MergeOptions& o) {
    json models = json::array();
    for (const auto& m : o.models)
        models.push_back(
            {{"path", fs::absolute(m).lexically_normal().string()},
             {"sha256", is_adapter_folder(m) ? sha256_file_cached(fs::exists(m / "adapter_model.safetensors")
                                                                      ? m / "adapter_model.safetensors"
                                                                      : m / "adapter_model.bin")
                                             : checkpoint_weights_sha256(m)}});
    return models;
}

// The merged adapter's folder: PEFT's files, scale 1 on every module (lora_alpha = r).
void write_adapter(const fs::path& dir, const std::map<std::string, Stack>& stacks, const LoraAdapter& first,
                   const json& provenance) {
    std::vector<std::vector<float>> storage;
    std::vector<TensorView> views;
    std::int64_t r = 0;
    for (const auto& [target, s] : stacks)
        r = std::max<std::int64_t>(r, s.a.rows());
    json rank_pattern = json::object(), alpha_pattern = json::object();
    std::set<std::string> targets;
    storage.reserve(2 * stacks.size());
    for (const auto& [target, s] : stacks) {
        const bool embedding = s.first->transposed && !first.config().fan_in_fan_out;
        const std::string kind = embedding ? "lora_embedding_" : "lora_";
        storage.push_back(to_float(s.a));
        views.push_back({"base_model.model." + s.module + "." + kind + "A.weight",
                         Dtype::F32,
                         {s.a.rows(), s.a.cols()},
                         storage.back().data(),
                         {}});
        storage.push_back(to_float(s.b));
        views.push_back({"base_model.model." + s.module + "." + kind + "B.weight",
                         Dtype::F32,
                         {s.b.rows(), s.b.cols()},
                         storage.back().data(),
                         {}});
        if (s.a.rows() != r) rank_pattern[s.module] = s.a.rows(), alpha_pattern[s.module] = s.a.rows();
        targets.insert(s.module.substr(s.module.rfind('.') + 1));
    }
    const json raw = read_json_file(first.folder() / "adapter_config.json", limits::config_json);
    json config = {{"peft_type", "LORA"},
                   {"r", r},
                   {"lora_alpha", r},
                   {"use_rslora", false},
                   {"use_dora", false},
                   {"fan_in_fan_out", first.config().fan_in_fan_out},
                   {"bias", "none"},
                   {"lora_dropout", 0.0},
                   {"target_modules", std::vector<std::string>(targets.begin(), targets.end())},
                   {"rank_pattern", rank_pattern},
                   {"alpha_pattern", alpha_pattern},
                   {"base_model_name_or_path", first.config().base_model},
                   {"inference_mode", true}};
    for (const char* key : {"task_type", "modules_to_save"})
        if (raw.contains(key)) config[key] = raw[key];
    write_safetensors(dir / "adapter_model.safetensors", views, {{"format", "pt"}});
    write_text_atomically(dir / "adapter_config.json", config.dump(2) + "\n");
    write_text_atomically(dir / "basin_merge.json", provenance.dump(2) + "\n");
}

} // namespace

MergeResult merge_adapters(const MergeOptions& o) {
    const auto start = std::chrono::steady_clock::now();
    BASIN_CHECK(!o.base.empty(), "merge: adapters need --base (their task vectors are deltas of that model)");
    BASIN_CHECK(o.adapter_out.empty() || o.adapter_out == "concat" || o.adapter_out == "svd",
                "merge --adapter-out: expected concat or svd, got '", o.adapter_out, "'");
    BASIN_CHECK(o.adapter_out != "svd" || o.adapter_rank > 0, "merge --adapter-out svd needs --rank R (R > 0)");
    const std::vector<double> c = coefficients(o);
    const fs::path out = check_output_folder(o.out, o.overwrite);
    const fs::path base_folder = model_folder(o.base);
    const CheckpointTensors base(find_weights(base_folder));
    std::vector<std::unique_ptr<LoraAdapter>> adapters;
    std::vector<double> adapter_c, full_c;
    std::vector<std::unique_ptr<CheckpointTensors>> full;
    for (std::size_t i = 0; i < o.models.size(); ++i) {
        if (is_adapter_folder(o.models[i])) {
            adapters.push_back(std::make_unique<LoraAdapter>(o.models[i], base));
            adapter_c.push_back(c[i]);
        } else {
            BASIN_CHECK(o.adapter_out.empty(), "merge --adapter-out ", o.adapter_out, ": ", o.models[i].string(),
                        " is a full checkpoint, which an adapter cannot hold; merge into a full checkpoint instead");
            full.push_back(std::make_unique<CheckpointTensors>(find_weights(model_folder(o.models[i]))));
            full_c.push_back(c[i]);
        }
    }
    std::map<std::string, Stack> stacks = stack_by_target(adapters, adapter_c);
    json provenance = {
        {"format", "basin-merge-v1"},
        {"method", merge_method_name(o.method)},
        {"coefficients", c},
        {"models", inputs_json(o)},
        {"base",
         {{"path", fs::absolute(o.base).lexically_normal().string()}, {"sha256", checkpoint_weights_sha256(o.base)}}},
        {"output", o.adapter_out.empty() ? "checkpoint" : "adapter (" + o.adapter_out + ")"}};
    MergeResult result;
    if (!o.adapter_out.empty()) {
        if (o.adapter_out == "svd") {
            double kept = 0, dropped = 0;
            json per_weight = json::object();
            for (auto& [target, s] : stacks) {
                const auto [k, d] = truncate(s, o.adapter_rank);
                kept += k, dropped += d;
                per_weight[target] = k + d > 0 ? d / (k + d) : 0.0;
            }
            provenance["rank"] = o.adapter_rank;
            provenance["discarded_energy"] = {{"overall", kept + dropped > 0 ? dropped / (kept + dropped) : 0.0},
                                              {"per_weight", per_weight},
                                              {"definition", "squared singular values of the merged task vector "
                                                             "dropped by the truncation, over all of them"}};
        }
        write_folder_atomically(
            out, [&](const fs::path& dir) { write_adapter(dir, stacks, *adapters.front(), provenance); });
        result.tensors = stacks.size();
    } else {
        // a full checkpoint: base + sum of the task vectors, one tensor at a time
        std::vector<TensorView> views;
        for (const auto& name : base.names()) {
            const TensorInfo& info = *base.find(name)->info;
            if (!o.keep_head && is_task_head_tensor(name)) {
                ++result.dropped_heads;
                continue;
            }
            const bool floating = is_floating(info.dtype);
            const Dtype dtype = floating && o.dtype ? *o.dtype : info.dtype;
            views.push_back({name, dtype, info.shape, nullptr, [&, name, dtype, floating](void* bytes) {
                                 check_interrupted("merging");
                                 const auto& ref = *base.find(name);
                                 if (!floating) {
                                     std::memcpy(bytes, ref.data(), ref.info->nbytes());
                                     return;
                                 }
                                 const std::size_t n = std::size_t(ref.info->numel());
                                 std::vector<float> w(n), other(n);
                                 std::vector<double> sum(n);
                                 convert_to_f32(ref.info->dtype, ref.data(), w.data(), n);
                                 for (std::size_t e = 0; e < n; ++e)
                                     sum[e] = w[e];
                                 for (std::size_t f = 0; f < full.size(); ++f) {
                                     const auto* m = full[f]->find(name);
                                     BASIN_CHECK(m && m->info->shape == ref.info->shape, full[f]->source().string(),
                                                 ": tensor ", name, " is missing or shaped unlike the base's");
                                     convert_to_f32(m->info->dtype, m->data(), other.data(), n);
                                     for (std::size_t e = 0; e < n; ++e)
                                         sum[e] += full_c[f] * (double(other[e]) - double(w[e]));
                                 }
                                 const auto s = stacks.find(name);
                                 if (s != stacks.end()) { // sum_i c_i s_i B_i A_i, from the stacked factors
                                     const Matrix delta = s->second.b * s->second.a;
                                     const bool t = s->second.first->transposed;
                                     const auto rows = delta.rows(), cols = delta.cols();
                                     for (Eigen::Index i = 0; i < rows; ++i)
                                         for (Eigen::Index j = 0; j < cols; ++j)
                                             sum[std::size_t(t ? j * rows + i : i * cols + j)] += delta(i, j);
                                 }
                                 for (std::size_t e = 0; e < n; ++e)
                                     w[e] = float(sum[e]);
                                 convert_from_f32(dtype, w.data(), bytes, n);
                                 result.tensors += 1;
                             }});
            result.bytes_written += std::uint64_t(info.numel()) * dtype_size(dtype);
        }
        write_merged_checkpoint(out, views, o, base_folder, provenance);
    }
    result.provenance = provenance;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

} // namespace basin
