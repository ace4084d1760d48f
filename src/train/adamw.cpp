#include "adamw.h"

#include <ATen/Parallel.h>
#include <cmath>
#include <sstream>
#include <type_traits>

namespace basin::train_detail {

namespace {
// The optimizer's state key for a parameter, as libtorch's own AdamW forms it: the TensorImpl's
// address printed as a string in libtorch 1.x, the address itself in 2.x.
template <typename Map = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>>
typename Map::key_type state_key(void* impl) {
    if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
        std::ostringstream out;
        out << impl;
        return out.str();
    } else {
        return impl;
    }
}
} // namespace

namespace {

bool fusable(const torch::Tensor& p) {
    return p.device().is_cpu() && p.scalar_type() == torch::kFloat32 && p.is_contiguous() && p.grad().is_contiguous() &&
           p.grad().scalar_type() == torch::kFloat32;
}

// AdamW (Loshchilov & Hutter) as torch.optim.AdamW computes it:
//   p <- p * (1 - lr * wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//   p <- p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)
void fused_update(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                  std::int64_t n, float decay, float b1, float b2, float one_minus_b1, float one_minus_b2,
                  float inv_sqrt_bc2, float eps, float step_size) {
    at::parallel_for(0, n, 1 << 15, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) {
            const float gi = g[i];
            const float mi = b1 * m[i] + one_minus_b1 * gi;
            const float vi = b2 * v[i] + one_minus_b2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
        }
    });
}

} // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
    torch::NoGradGuard no_grad;
    torch::Tensor loss;
    if (closure) {
        at::AutoGradMode enable_grad(true);
        loss = closure();
    }
    for (auto& group : param_groups()) {
        for (auto& p : group.params()) {
            if (!p.grad().defined()) continue;
            if (!fusable(p)) {
                torch::optim::AdamW::step(nullptr); // the closure has run already
                return loss;
            }
        }
    }
    for (auto& group : param_groups()) {
        const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
        TORCH_CHECK(!o.amsgrad(), "FusedAdamW: amsgrad is not supported");
        const auto [beta1, beta2] = o.betas();
        for (auto& p : group.params()) {
            if (!p.grad().defined()) continue;
            const auto key = state_key(p.unsafeGetTensorImpl());
            auto it = state().find(key);
            if (it == state().end()) {
                auto s = std::make_unique<torch::optim::AdamWParamState>();
                s->step(0);
                s->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
                s->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Contiguous));
                it = state().emplace(key, std::move(s)).first;
            }
            auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
            s.step(s.step() + 1);
            const double bc1 = 1 - std::pow(beta1, static_cast<double>(s.step()));
            const double bc2 = 1 - std::pow(beta2, static_cast<double>(s.step()));
            fused_update(p.data_ptr<float>(), p.grad().data_ptr<float>(), s.exp_avg().data_ptr<float>(),
                         s.exp_avg_sq().data_ptr<float>(), p.numel(), static_cast<float>(1 - o.lr() * o.weight_decay()),
                         static_cast<float>(beta1), static_cast<float>(beta2), static_cast<float>(1 - beta1),
                         static_cast<float>(1 - beta2), static_cast<float>(1 / std::sqrt(bc2)),
                         static_cast<float>(o.eps()), static_cast<float>(o.lr() / bc1));
            // written through a raw pointer: bump the version counter as an in-place op would, so
            // caches keyed by it (the encoder's fused Q/K/V weights) see the change
            torch::autograd::impl::bump_version(p);
        }
    }
    return loss;
}

} // namespace basin::train_detail
