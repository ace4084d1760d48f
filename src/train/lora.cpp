#include "lora.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/strings.h"
#include "basin/io/safetensors.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace basin::train_detail {

namespace {

// PEFT's rule for a list of target names: the module's name equals the target or ends with
// "." + target.
bool names_target(const std::string& module, const std::string& target) {
    return module == target || (module.size() > target.size() && ends_with(module, target) &&
                                module[module.size() - target.size() - 1] == '.');
}

} // namespace

LoraTrainer::LoraTrainer(EncoderModel& model, const LoraOptions& options, std::uint64_t seed) : options_(options) {
    scale_ = options.alpha / double(options.rank);
    const std::string body = model->config.body_prefix() + ".";
    std::set<std::string> suffixes; // what a target may name, for the error below
    std::vector<std::string> unmatched = options.targets;
    for (const auto& item : model->named_modules("", /*include_self=*/false)) {
        auto* layer = item.value()->as<torch::nn::Linear>();
        if (!layer || item.key().rfind(body, 0) != 0) continue;
        const std::string& name = item.key();
        suffixes.insert(name.substr(name.rfind('.') + 1));
        bool wanted = false;
        for (const auto& t : options.targets)
            if (names_target(name, t)) {
                wanted = true;
                unmatched.erase(std::remove(unmatched.begin(), unmatched.end(), t), unmatched.end());
            }
        if (wanted) targets_.push_back({name, layer, {}, {}, {}});
    }
    BASIN_CHECK(unmatched.empty(), "--lora-targets: '", join(unmatched, "', '"),
                "' names none of the body's linear layers (",
                join(std::vector<std::string>(suffixes.begin(), suffixes.end()), ", "),
                ", or a longer name such as attention.output.dense)");
    auto generator = at::detail::createCPUGenerator(seed * 0x9E3779B97F4A7C15ull + 0x4C6F5241ull);
    for (auto& t : targets_) {
        torch::NoGradGuard no_grad;
        const auto& w = t.layer->weight; // [out, in]
        const std::int64_t out = w.size(0), in = w.size(1);
        BASIN_CHECK(options.rank <= std::min(out, in), "--lora-rank ", options.rank, " exceeds ", t.module,
                    "'s smaller side (", out, " x ", in, ")");
        t.w0 = w.detach().clone();
        const double bound = 1.0 / std::sqrt(double(in)); // kaiming_uniform(a = sqrt(5)), as PEFT initialises A
        t.a = t.layer->register_parameter(
            "lora_A",
            torch::empty({options.rank, in}, torch::kFloat32).uniform_(-bound, bound, generator).to(w.device()));
        t.b = t.layer->register_parameter("lora_B", torch::zeros({out, options.rank}, w.options()));
        w.set_requires_grad(true); // its gradient G gives the factors' (see lora.h)
    }
}

void LoraTrainer::factor_gradients() {
    torch::NoGradGuard no_grad;
    for (auto& t : targets_) {
        auto& w = t.layer->weight;
        const auto& g = w.grad();
        if (!g.defined()) continue;
        t.a.mutable_grad() = scale_ * t.b.t().mm(g); // [rank, in]
        t.b.mutable_grad() = scale_ * g.mm(t.a.t()); // [out, rank]
        w.mutable_grad() = torch::Tensor();
    }
}

void LoraTrainer::merge() {
    torch::NoGradGuard no_grad;
    for (auto& t : targets_)
        t.layer->weight.copy_(torch::addmm(t.w0, t.b, t.a, /*beta=*/1, /*alpha=*/scale_));
}

std::set<std::string> LoraTrainer::target_weights() const {
    std::set<std::string> names;
    for (const auto& t : targets_)
        names.insert(t.module + ".weight");
    return names;
}

std::int64_t LoraTrainer::factor_parameters() const {
    std::int64_t n = 0;
    for (const auto& t : targets_)
        n += t.a.numel() + t.b.numel();
    return n;
}

void LoraTrainer::write_adapter(const fs::path& folder, const EncoderModel& model, const fs::path& base) const {
    std::vector<torch::Tensor> keep;
    std::vector<TensorView> views;
    auto add = [&](const std::string& name, const torch::Tensor& t) {
        keep.push_back(t.detach().to(torch::kCPU, torch::kFloat32).contiguous());
        views.push_back({"base_model.model." + name,
                         Dtype::F32,
                         Shape(keep.back().sizes().begin(), keep.back().sizes().end()),
                         keep.back().data_ptr(),
                         {}});
    };
    for (const auto& t : targets_) {
        add(t.module + ".lora_A.weight", t.a);
        add(t.module + ".lora_B.weight", t.b);
    }
    std::set<std::string> head_modules; // PEFT's modules_to_save: the head's top-level modules
    for (const auto& item : model->named_parameters())
        if (model->is_head_parameter(item.key())) {
            add(item.key(), item.value());
            head_modules.insert(item.key().substr(0, item.key().find('.')));
        }
    write_safetensors(folder / "adapter_model.safetensors", views, {{"format", "pt"}});
    const nlohmann::json config = {{"peft_type", "LORA"},
                                   {"task_type", "SEQ_CLS"},
                                   {"base_model_name_or_path", base.string()},
                                   {"revision", nullptr},
                                   {"inference_mode", true},
                                   {"r", options_.rank},
                                   {"lora_alpha", options_.alpha},
                                   {"lora_dropout", 0.0},
                                   {"target_modules", options_.targets},
                                   {"fan_in_fan_out", false},
                                   {"bias", "none"},
                                   {"use_rslora", false},
                                   {"use_dora", false},
                                   {"init_lora_weights", true},
                                   {"modules_to_save", head_modules},
                                   {"layers_to_transform", nullptr},
                                   {"rank_pattern", nlohmann::json::object()},
                                   {"alpha_pattern", nlohmann::json::object()}};
    write_text_atomically(folder / "adapter_config.json", config.dump(2) + "\n");
}

} // namespace basin::train_detail
