#include "basin/region/weight_space.h"

#include "basin/core/error.h"
#include "basin/core/hash.h"
#include "basin/io/checkpoint.h"
#include "basin/models/load.h"

#include <ATen/CPUGeneratorImpl.h>
#include <cmath>
#include <cstdio>
#include <mutex>

namespace basin {

namespace {

std::mutex hash_mutex; // guards Source::hash (points are built from several threads)

std::string hex_double(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%a", v);
    return buf;
}

} // namespace

WeightSpace::WeightSpace(const std::vector<fs::path>& sources, const fs::path& adapter_base) {
    BASIN_CHECK(!sources.empty(), "weight space: no checkpoints given");
    BASIN_CHECK(fs::is_directory(sources.front()), sources.front().string(), ": model folder not found");
    // each adapter's base: the one given, else its base_model_name_or_path where that is a folder here
    auto base_of = [&](const fs::path& dir) { return adapter_base_folder(dir, adapter_base); };
    // a sentence-transformers folder's body; an adapter's base
    const fs::path first =
        model_folder(is_adapter_folder(sources.front()) ? base_of(sources.front()) : sources.front());
    config_ = EncoderConfig::resolve(HfConfig::load(first / "config.json"), (first / "config.json").string());
    config_.head = HeadKind::None;
    config_.labels.clear();
    config_.pooler = false;                   // features are read before any pooler
    if (fs::exists(first / "tokenizer.json")) // needed for scoring, not for building weights
        tokenizer_ = std::make_unique<text::Tokenizer>(text::Tokenizer::from_file(first / "tokenizer.json"));
    EncoderModel model(config_);
    for (const auto& item : model->named_parameters()) {
        if (model->is_head_parameter(item.key())) continue;
        names_.push_back(item.key());
        shapes_.emplace_back(item.value().sizes().begin(), item.value().sizes().end());
    }
    for (const auto& dir : sources) {
        BASIN_CHECK(fs::is_directory(dir), dir.string(), ": model folder not found");
        Source s;
        s.dir = dir;
        s.tensors = std::make_unique<CheckpointTensors>(is_adapter_folder(dir) ? base_of(dir) : dir);
        if (is_adapter_folder(dir)) s.adapter = std::make_unique<LoraAdapter>(dir, *s.tensors);
        const auto names = match_checkpoint_names(model, *s.tensors);
        for (std::size_t i = 0; i < names_.size(); ++i) {
            auto it = names.find(names_[i]);
            BASIN_CHECK(it != names.end(), dir.string(), ": body does not match ", first.string(), ": tensor ",
                        names_[i], " is missing");
            const auto* ref = s.tensors->find(it->second);
            BASIN_CHECK(ref->info->shape == shapes_[i], dir.string(), ": body does not match ", first.string(),
                        ": tensor ", it->second, " has shape ", shape_string(ref->info->shape), ", expected ",
                        shape_string(shapes_[i]));
            BASIN_CHECK(is_floating(ref->info->dtype), dir.string(), ": tensor ", it->second, " is ",
                        dtype_name(ref->info->dtype), ", expected a floating-point dtype");
            s.body.push_back(ref);
            s.delta.push_back(nullptr);
            if (s.adapter)
                for (const auto& w : s.adapter->weights())
                    if (w.target == ref->info->name) s.delta.back() = &w;
        }
        sources_.push_back(std::move(s));
    }
}

WeightSpace::~WeightSpace() = default;

const text::Tokenizer& WeightSpace::tokenizer() const {
    BASIN_CHECK(tokenizer_ != nullptr, (source(0) / "tokenizer.json").string(), ": not found (needed to score points)");
    return *tokenizer_;
}

const std::string& WeightSpace::source_hash(std::size_t i) const {
    const Source& s = sources_.at(i);
    std::lock_guard<std::mutex> lock(hash_mutex);
    if (s.hash.empty()) {
        s.hash = checkpoint_weights_sha256(*s.tensors);
        if (s.adapter) { // the base's weights and the adapter's file
            const std::string both = s.hash + sha256_file_cached(s.adapter->file().path());
            s.hash = sha256_hex(both.data(), both.size());
        }
    }
    return s.hash;
}

std::int64_t WeightSpace::body_numel() const {
    std::int64_t n = 0;
    for (const auto& shape : shapes_)
        n += shape_numel(shape);
    return n;
}

EncoderModel WeightSpace::new_model(torch::Device device) const {
    EncoderModel model(config_);
    model->to(device);
    model->eval();
    return model;
}

torch::Tensor WeightSpace::source_tensor(std::size_t source, std::size_t index) const {
    const Source& s = sources_.at(source);
    const auto* ref = s.body.at(index);
    auto out = torch::empty(shapes_[index], torch::kFloat32);
    convert_to_f32(ref->info->dtype, ref->data(), out.data_ptr<float>(), std::size_t(out.numel()));
    if (const LoraWeight* w = s.delta.at(index)) { // base + s B A, in the stored layout
        const std::vector<float> delta = s.adapter->delta(*w);
        float* values = out.data_ptr<float>();
        for (std::size_t e = 0; e < delta.size(); ++e)
            values[e] += delta[e];
    }
    return out;
}

torch::Tensor WeightSpace::direction_tensor(const RandomDirection& direction, std::size_t index) const {
    const auto& shape = shapes_.at(index);
    if (shape.size() < 2) return torch::zeros(shape, torch::kFloat32);
    auto generator = at::detail::createCPUGenerator(splitmix64(direction.seed ^ splitmix64(fnv1a64(names_[index]))));
    auto values = torch::randn(shape, generator, torch::kFloat32);
    if (direction.kind == DirectionKind::Xavier) {
        std::int64_t receptive = 1;
        for (std::size_t d = 2; d < shape.size(); ++d)
            receptive *= shape[d];
        const double fan_in = double(shape[1] * receptive), fan_out = double(shape[0] * receptive);
        return values.mul_(std::sqrt(2.0 / (fan_in + fan_out)));
    }
    auto filters = values.view({shape[0], -1});
    auto reference = source_tensor(direction.relative_to, index).view({shape[0], -1});
    filters.mul_(reference.norm(2, 1, true) / filters.norm(2, 1, true).clamp_min(1e-12));
    return values;
}

torch::Tensor WeightSpace::tensor(const Combination& point, std::size_t index) const {
    BASIN_CHECK(point.weights.size() <= sources_.size(), "a combination has ", point.weights.size(), " weights for ",
                sources_.size(), " checkpoints");
    // double accumulation; exact zeros are skipped so that a one-hot weight reproduces the source
    // bit for bit (0 * x + y can turn -0.0 into +0.0)
    torch::Tensor sum;
    auto add = [&](torch::Tensor x, double w) {
        auto term = x.to(torch::kFloat64);
        if (!sum.defined())
            sum = term.mul_(w);
        else
            sum.add_(term, w);
    };
    for (std::size_t s = 0; s < point.weights.size(); ++s)
        if (point.weights[s] != 0) add(source_tensor(s, index), point.weights[s]);
    for (const auto& d : point.random)
        if (d.coefficient != 0 && shapes_[index].size() >= 2) add(direction_tensor(d, index), d.coefficient);
    if (!sum.defined()) return torch::zeros(shapes_[index], torch::kFloat32);
    return sum.to(torch::kFloat32);
}

void WeightSpace::build(const Combination& point, EncoderModel& model) const {
    torch::NoGradGuard no_grad;
    auto params = model->named_parameters();
    for (std::size_t i = 0; i < names_.size(); ++i) {
        auto* param = params.find(names_[i]);
        BASIN_CHECK(param != nullptr, "model has no parameter ", names_[i]);
        param->copy_(tensor(point, i).to(param->device(), param->scalar_type()));
    }
}

double WeightSpace::direction_norm(const RandomDirection& direction) const {
    double squares = 0;
    for (std::size_t i = 0; i < names_.size(); ++i)
        squares += direction_tensor(direction, i).to(torch::kFloat64).pow(2).sum().item<double>();
    return std::sqrt(squares);
}

std::vector<std::vector<double>> WeightSpace::gram(std::size_t origin) const {
    const std::size_t n = sources_.size();
    std::vector<std::vector<double>> g(n, std::vector<double>(n, 0.0));
    for (std::size_t t = 0; t < names_.size(); ++t) {
        auto o = source_tensor(origin, t).to(torch::kFloat64).flatten();
        std::vector<torch::Tensor> d(n);
        for (std::size_t s = 0; s < n; ++s)
            d[s] = source_tensor(s, t).to(torch::kFloat64).flatten() - o;
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = i; j < n; ++j) {
                const double v = d[i].dot(d[j]).item<double>();
                g[i][j] += v;
                if (j != i) g[j][i] += v;
            }
    }
    return g;
}

std::string WeightSpace::point_key(const Combination& point) const {
    std::string key = "point-v1";
    for (std::size_t s = 0; s < point.weights.size(); ++s)
        if (point.weights[s] != 0) key += "|" + source_hash(s) + "*" + hex_double(point.weights[s]);
    for (const auto& d : point.random) {
        if (d.coefficient == 0) continue;
        key += "|random:" + std::to_string(d.seed) + "*" + hex_double(d.coefficient);
        key += d.kind == DirectionKind::Xavier ? ":xavier" : ":filter:" + source_hash(d.relative_to);
    }
    return sha256_hex(key.data(), key.size());
}

double scale_to_norm(const WeightSpace& space, const RandomDirection& direction, double target_norm) {
    const double norm = space.direction_norm(direction);
    BASIN_CHECK(norm > 0, "a random direction of norm 0: the body has no tensor with two or more dimensions");
    return target_norm / norm;
}

double mean_task_vector_norm(const WeightSpace& space, std::size_t origin, const std::vector<std::size_t>& members) {
    BASIN_CHECK(!members.empty(), "mean task-vector norm of no models");
    const auto g = space.gram(origin);
    double sum = 0;
    for (std::size_t m : members)
        sum += std::sqrt(std::max(0.0, g.at(m).at(m)));
    return sum / double(members.size());
}

} // namespace basin
