#include "../../src/train/adamw.h"
#include "basin/models/load.h"
#include "basin/train/finetune.h"
#include "basin/train/pretrain.h"
#include "basin/train/probe.h"
#include "test_util.h"

#include <torch/torch.h>

using namespace basin;

namespace {

EncoderModel tiny(const std::string& arch, std::uint64_t seed) {
    HfConfig hf;
    hf.architectures = {arch};
    hf.model_type = arch.rfind("Bert", 0) == 0 ? "bert" : "roberta";
    hf.vocab_size = 20;
    hf.hidden_size = 8;
    hf.num_hidden_layers = 2;
    hf.num_attention_heads = 2;
    hf.intermediate_size = 12;
    hf.max_position_embeddings = 16;
    hf.type_vocab_size = 2;
    hf.pad_token_id = 1;
    hf.id2label = {{0, "a"}, {1, "b"}, {2, "c"}};
    EncoderModel model(EncoderConfig::resolve(hf, "test"));
    init_weights(model, 0.5, seed);
    return model;
}

} // namespace

// Gradients from libtorch's autograd through basin's modules agree with central finite
// differences, in float64: |autograd - fd| <= 1e-7 + 1e-5 |fd| for every sampled entry.
TEST(Training, GradientsMatchFiniteDifferences) {
    for (const char* arch : {"RobertaForSequenceClassification", "BertForSequenceClassification"}) {
        auto model = tiny(arch, 3);
        model->to(torch::kDouble);
        model->eval(); // no dropout
        auto ids = torch::tensor({{0, 5, 6, 7, 2, 1}, {0, 9, 3, 2, 1, 1}}, torch::kLong);
        auto mask = ids.ne(1).to(torch::kLong);
        auto types = torch::tensor({{0, 0, 0, 1, 1, 0}, {0, 0, 1, 1, 0, 0}}, torch::kLong);
        auto target = torch::tensor({2, 0}, torch::kLong);
        auto loss_of = [&] { return torch::nn::functional::cross_entropy(model->classify(ids, mask, types), target); };
        model->zero_grad();
        loss_of().backward();
        torch::manual_seed(0);
        int checked = 0;
        for (auto& item : model->named_parameters()) {
            auto& p = item.value();
            auto grad = p.grad().clone();
            auto flat = p.view(-1);
            for (int k = 0; k < 3; ++k) {
                const auto i = torch::randint(flat.numel(), {1}).item<std::int64_t>();
                const double eps = 1e-6;
                double plus, minus;
                {
                    torch::NoGradGuard no_grad;
                    const double original = flat[i].item<double>();
                    flat[i] = original + eps;
                    plus = loss_of().item<double>();
                    flat[i] = original - eps;
                    minus = loss_of().item<double>();
                    flat[i] = original;
                }
                const double fd = (plus - minus) / (2 * eps);
                const double ad = grad.view(-1)[i].item<double>();
                EXPECT_LE(std::abs(ad - fd), 1e-7 + 1e-5 * std::abs(fd))
                    << arch << " " << item.key() << "[" << i << "]";
                ++checked;
            }
        }
        EXPECT_GT(checked, 60);
    }
}

TEST(Probe, SeparableFeaturesAreFittedPerfectlyAndConverge) {
    torch::manual_seed(1);
    const int per_class = 60, classes = 3, dim = 5;
    auto centers = torch::randn({classes, dim}) * 6;
    std::vector<torch::Tensor> xs;
    std::vector<std::int64_t> ys;
    for (int c = 0; c < classes; ++c) {
        xs.push_back(centers[c] + torch::randn({per_class, dim}) * 0.5);
        ys.insert(ys.end(), per_class, c);
    }
    auto x = torch::cat(xs);
    auto y = torch::tensor(ys, torch::kLong);
    auto fit = fit_probe(x, y, classes);
    EXPECT_TRUE(fit.converged);
    EXPECT_LT(fit.gradient_norm, 1e-6);
    EXPECT_EQ(fit.train_accuracy, 1.0);
    // fresh points from the same blobs are classified perfectly too
    auto test_x = torch::cat({centers[0] + torch::randn({20, dim}) * 0.5, centers[2] + torch::randn({20, dim}) * 0.5});
    std::vector<std::int64_t> test_y(20, 0);
    test_y.insert(test_y.end(), 20, 2);
    auto [loss, accuracy] = probe_loss_accuracy(fit, test_x, torch::tensor(test_y, torch::kLong));
    EXPECT_EQ(accuracy, 1.0);
    EXPECT_LT(loss, 0.1);
    // at the optimum the gradient of the L2-regularised objective (in standardised features,
    // where the fit is made) vanishes: dCE/dV + l2 V = 0 with V = W * scale
    auto xd = x.to(torch::kDouble);
    auto mean = xd.mean(0), scale = xd.std(0, false);
    auto v = (fit.weight * scale).clone().set_requires_grad(true);
    auto c = (fit.bias + fit.weight.mv(mean)).clone();
    auto ce = torch::nn::functional::cross_entropy(torch::addmm(c, (xd - mean) / scale, v.t()), y);
    auto g = torch::autograd::grad({ce}, {v})[0];
    EXPECT_LT((g + 1e-3 * v).abs().max().item<double>(), 1e-6);
}

TEST(Probe, FitIsDeterministic) {
    torch::manual_seed(2);
    auto x = torch::randn({50, 4});
    auto y = (x.select(1, 0) > 0).to(torch::kLong);
    auto a = fit_probe(x, y, 2), b = fit_probe(x, y, 2);
    EXPECT_TRUE(torch::equal(a.weight, b.weight));
    EXPECT_EQ(a.iterations, b.iterations);
}

// The fused optimizer must follow libtorch's AdamW: same parameters after several steps with
// weight decay on one group and not the other, and a state that libtorch's AdamW can continue.
TEST(Training, FusedAdamWFollowsLibtorchAdamW) {
    torch::manual_seed(3);
    auto make = [](bool fused, std::vector<torch::Tensor> params) -> std::unique_ptr<torch::optim::AdamW> {
        std::vector<torch::optim::OptimizerParamGroup> groups;
        auto decay = std::make_unique<torch::optim::AdamWOptions>(1e-2);
        decay->weight_decay(0.1);
        auto none = std::make_unique<torch::optim::AdamWOptions>(1e-2);
        none->weight_decay(0.0);
        groups.emplace_back(std::vector<torch::Tensor>{params[0]}, std::move(decay));
        groups.emplace_back(std::vector<torch::Tensor>{params[1]}, std::move(none));
        if (fused) return std::make_unique<basin::train_detail::FusedAdamW>(groups);
        return std::make_unique<torch::optim::AdamW>(groups);
    };
    auto w0 = torch::randn({300, 70}), b0 = torch::randn({70});
    auto w1 = w0.clone().requires_grad_(), b1 = b0.clone().requires_grad_();
    auto w2 = w0.clone().requires_grad_(), b2 = b0.clone().requires_grad_();
    auto fused = make(true, {w1, b1});
    auto plain = make(false, {w2, b2});
    for (int step = 0; step < 12; ++step) {
        auto grad_w = torch::randn({300, 70}), grad_b = torch::randn({70}) * 1e-3;
        w1.mutable_grad() = grad_w.clone(), b1.mutable_grad() = grad_b.clone();
        w2.mutable_grad() = grad_w.clone(), b2.mutable_grad() = grad_b.clone();
        const auto version = w1._version();
        fused->step();
        plain->step();
        EXPECT_GT(w1._version(), version); // caches keyed by the version see the update
    }
    EXPECT_LT((w1 - w2).abs().max().item<double>(), 1e-5);
    EXPECT_LT((b1 - b2).abs().max().item<double>(), 1e-5);
    EXPECT_GT((w1 - w0).abs().max().item<double>(), 1e-2); // it did move
    auto s1 =
        static_cast<torch::optim::AdamWParamState&>(*fused->state().at(c10::guts::to_string(w1.unsafeGetTensorImpl())));
    auto s2 =
        static_cast<torch::optim::AdamWParamState&>(*plain->state().at(c10::guts::to_string(w2.unsafeGetTensorImpl())));
    EXPECT_EQ(s1.step(), s2.step());
    EXPECT_LT((s1.exp_avg_sq() - s2.exp_avg_sq()).abs().max().item<double>(), 1e-6);
}

TEST(Training, StepPlanFollowsBatchesAccumulationAndWarmup) {
    basin::FinetuneOptions o;
    o.batch_size = 32, o.grad_accum = 1, o.epochs = 2, o.warmup_ratio = 0.06;
    auto p = basin::plan_steps(2000, o); // the real-base study's recipe: 63 steps an epoch
    EXPECT_EQ(p.micro_batches_per_epoch, 63u);
    EXPECT_EQ(p.steps_per_epoch, 63u);
    EXPECT_EQ(p.total_steps, 126);
    EXPECT_EQ(p.epochs, 2);
    EXPECT_EQ(p.warmup_steps, 8); // ceil(126 * 0.06) = ceil(7.56)
    o.grad_accum = 4;             // 63 micro-batches in 16 steps, the last of 3
    p = basin::plan_steps(2000, o);
    EXPECT_EQ(p.steps_per_epoch, 16u);
    EXPECT_EQ(p.total_steps, 32);
    o.max_steps = 40; // more steps than two epochs hold: a third epoch
    p = basin::plan_steps(2000, o);
    EXPECT_EQ(p.total_steps, 40);
    EXPECT_EQ(p.epochs, 3);
}

TEST(Training, PretrainBlocksHoldOutEveryNthSequence) {
    basin::PretrainOptions o;
    o.max_length = 10, o.heldout_fraction = 0.25, o.heldout_max = 256;
    const auto p = basin::plan_pretrain_blocks(8 * 21 + 5, o); // 21 whole chunks of 8 tokens, 5 left over
    EXPECT_EQ(p.chunk, 8u);
    EXPECT_EQ(p.every, 4u);
    EXPECT_EQ(p.heldout, (std::vector<std::size_t>{3, 7, 11, 15, 19}));
    EXPECT_EQ(p.train.size(), 16u);
    o.heldout_max = 2;
    EXPECT_EQ(basin::plan_pretrain_blocks(8 * 21, o).heldout, (std::vector<std::size_t>{3, 7}));
    o.corpus = "tiny.txt";
    const std::string e = basin::testing::error_of([&] { basin::plan_pretrain_blocks(8 * 3, o); });
    EXPECT_NE(e.find("tiny.txt: corpus too small: 24 tokens make 3 sequences"), std::string::npos) << e;
}
