#include <torch/torch.h>

#include "basin/models/load.h"
#include "basin/train/probe.h"
#include "test_util.h"

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
        auto loss_of = [&] {
            return torch::nn::functional::cross_entropy(model->classify(ids, mask, types), target);
        };
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
                EXPECT_LE(std::abs(ad - fd), 1e-7 + 1e-5 * std::abs(fd)) << arch << " " << item.key() << "[" << i << "]";
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
