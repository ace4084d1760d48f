#include "state.h"

#include "adamw.h"
#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/hash.h"
#include "basin/core/strings.h"
#include "basin/io/checkpoint.h"
#include "basin/models/load.h"

#include <random>
#include <unistd.h>

namespace basin::train_detail {

std::vector<std::size_t> permutation(std::size_t n, std::uint64_t seed) {
    std::vector<std::size_t> p(n);
    for (std::size_t i = 0; i < n; ++i)
        p[i] = i;
    std::mt19937_64 rng(seed);
    for (std::size_t i = n; i > 1; --i)
        std::swap(p[i - 1], p[rng() % i]);
    return p;
}

std::uint64_t mix_seed(std::uint64_t seed, std::int64_t salt) {
    return seed * 0x9E3779B97F4A7C15ull + std::uint64_t(salt) + 1;
}

double lr_factor(std::int64_t step, std::int64_t warmup, std::int64_t total) {
    if (step < warmup) return double(step) / double(std::max<std::int64_t>(1, warmup));
    return std::max(0.0, double(total - step) / double(std::max<std::int64_t>(1, total - warmup)));
}

namespace {
std::string hex_bytes(const torch::Tensor& bytes) {
    static const char* digits = "0123456789abcdef";
    auto t = bytes.contiguous();
    const auto* p = t.data_ptr<std::uint8_t>();
    std::string out;
    for (std::int64_t i = 0; i < t.numel(); ++i) {
        out += digits[p[i] >> 4];
        out += digits[p[i] & 15];
    }
    return out;
}

torch::Tensor bytes_from_hex(const std::string& hex) {
    auto t = torch::empty({std::int64_t(hex.size() / 2)}, torch::kUInt8);
    auto* p = t.data_ptr<std::uint8_t>();
    auto value = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        p[i / 2] = std::uint8_t(value(hex[i]) * 16 + value(hex[i + 1]));
    return t;
}

void save_parameters(EncoderModel& model, const fs::path& path) {
    std::vector<torch::Tensor> keep;
    std::vector<TensorView> views;
    for (const auto& item : model->named_parameters()) {
        auto t = item.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
        keep.push_back(t);
        views.push_back({item.key(), Dtype::F32, Shape(t.sizes().begin(), t.sizes().end()), t.data_ptr(), {}});
    }
    write_safetensors(path, views);
}
} // namespace

std::unique_ptr<torch::optim::AdamW> make_adamw(EncoderModel& model, double lr, double weight_decay,
                                                const std::set<std::string>& skip) {
    std::vector<torch::Tensor> decay, no_decay;
    for (auto& item : model->named_parameters()) {
        if (!item.value().requires_grad() || skip.count(item.key())) continue;
        const std::string& name = item.key();
        (ends_with(name, "bias") || is_layer_norm_parameter(name) ? no_decay : decay).push_back(item.value());
    }
    auto options = [&](double wd) {
        auto o = std::make_unique<torch::optim::AdamWOptions>(lr);
        o->betas({0.9, 0.999}).eps(1e-8).weight_decay(wd);
        return o;
    };
    std::vector<torch::optim::OptimizerParamGroup> groups;
    if (!decay.empty()) groups.emplace_back(decay, options(weight_decay));
    if (!no_decay.empty()) groups.emplace_back(no_decay, options(0.0));
    return std::make_unique<FusedAdamW>(groups, torch::optim::AdamWOptions(lr));
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
    for (auto& g : optimizer.param_groups())
        static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

void clip_gradients(torch::optim::Optimizer& optimizer, double max_norm) {
    if (max_norm <= 0) return;
    std::vector<torch::Tensor> params;
    for (auto& g : optimizer.param_groups())
        for (auto& p : g.params())
            params.push_back(p);
    torch::nn::utils::clip_grad_norm_(params, max_norm);
}

RunIdentity identify_run(nlohmann::json options, nlohmann::json inputs) {
    RunIdentity id{std::move(options), std::move(inputs), {}};
    const std::string signed_text = id.options.dump() + id.inputs.dump();
    id.signature = sha256_hex(signed_text.data(), signed_text.size());
    return id;
}

StateStore::StateStore(fs::path partial, std::string signature)
    : dir_(std::move(partial)), signature_(std::move(signature)) {}

bool StateStore::exists() const {
    return fs::exists(current() / "state.json") || fs::exists(previous() / "state.json");
}

bool StateStore::foreign() const {
    if (!exists()) return false;
    const fs::path from = fs::exists(current() / "state.json") ? current() : previous();
    try {
        return nlohmann::json::parse(read_text_file(from / "state.json")).value("signature", "") != signature_;
    } catch (...) {
        return true;
    }
}

void StateStore::save(EncoderModel& model, torch::optim::Optimizer& optimizer, const nlohmann::json& counters) {
    fs::create_directories(dir_);
    const fs::path tmp = dir_ / "state.tmp";
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    save_parameters(model, tmp / "weights.safetensors");
    torch::save(optimizer, (tmp / "optimizer.pt").string());
    auto generator = at::detail::getDefaultCPUGenerator();
    torch::Tensor rng;
    {
        std::lock_guard<std::mutex> lock(generator.mutex());
        rng = generator.get_state();
    }
    nlohmann::json j = {{"signature", signature_}, {"rng", hex_bytes(rng)}, {"counters", counters}};
    write_text_atomically(tmp / "state.json", j.dump(1) + "\n");
    fs::remove_all(previous());
    if (fs::exists(current())) fs::rename(current(), previous());
    fs::rename(tmp, current());
    fs::remove_all(previous());
}

nlohmann::json StateStore::load(EncoderModel& model, torch::optim::Optimizer& optimizer) {
    const fs::path from = fs::exists(current() / "state.json") ? current() : previous();
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(read_text_file(from / "state.json"));
    } catch (const nlohmann::json::parse_error& e) {
        fail((from / "state.json").string(), ": malformed resumable state (", e.what(), "); remove ", dir_.string(),
             " to start over");
    }
    BASIN_CHECK(j.value("signature", "") == signature_, dir_.string(),
                ": a partial run with different arguments or inputs is there; remove it or pass --overwrite");
    load_weights(model, CheckpointTensors(from / "weights.safetensors"), LoadOptions{});
    torch::load(optimizer, (from / "optimizer.pt").string());
    auto generator = at::detail::getDefaultCPUGenerator();
    {
        std::lock_guard<std::mutex> lock(generator.mutex());
        generator.set_state(bytes_from_hex(j.at("rng").get<std::string>()));
    }
    return j.at("counters");
}

void StateStore::remove() {
    fs::remove_all(dir_);
}

} // namespace basin::train_detail
