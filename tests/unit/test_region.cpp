// Weight-space points (region/weight_space.h) and the coefficient arithmetic of region/points.h.
#include "basin/core/stats.h"
#include "basin/models/load.h"
#include "basin/region/points.h"
#include "basin/region/weight_space.h"
#include "test_util.h"

#include <cmath>
#include <random>
#include <torch/torch.h>

using namespace basin;
using basin::testing::TempDir;

namespace {

HfConfig tiny_roberta(int labels) {
    HfConfig hf;
    hf.architectures = {labels ? "RobertaForSequenceClassification" : "RobertaModel"};
    hf.model_type = "roberta";
    hf.vocab_size = 60;
    hf.hidden_size = 32;
    hf.num_hidden_layers = 2;
    hf.num_attention_heads = 2;
    hf.intermediate_size = 64;
    hf.max_position_embeddings = 40;
    hf.type_vocab_size = 1;
    hf.pad_token_id = 1;
    for (int i = 0; i < labels; ++i) {
        hf.id2label[i] = "L" + std::to_string(i);
        hf.label2id["L" + std::to_string(i)] = i;
    }
    return hf;
}

// A checkpoint folder with random weights; labels > 0 adds a classification head of that size.
fs::path save_tiny(const fs::path& dir, std::uint64_t seed, int labels = 0, Dtype dtype = Dtype::F32) {
    auto hf = tiny_roberta(labels);
    EncoderModel model(EncoderConfig::resolve(hf, "test"));
    init_weights(model, 0.5, seed);
    save_model(model, config_for(model->config, hf), dir, dtype);
    return dir;
}

// The body tensors of a checkpoint as the model loads them (float32).
std::map<std::string, torch::Tensor> body_of(const fs::path& dir) {
    auto loaded = load_body(dir);
    std::map<std::string, torch::Tensor> out;
    for (const auto& item : loaded.model->named_parameters())
        out[item.key()] = item.value().detach().clone();
    return out;
}

bool bitwise_equal(const torch::Tensor& a, const torch::Tensor& b) {
    return a.sizes() == b.sizes() && std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(),
                                                 std::size_t(a.numel()) * a.element_size()) == 0;
}

} // namespace

TEST(Region, EndpointsAndOneHotCombinationsAreBitwiseTheSources) {
    TempDir dir;
    // different heads (3 and 5 labels) and a BF16 source: heads are ignored, values converted
    const auto a = save_tiny(dir / "a", 1, 3), b = save_tiny(dir / "b", 2, 5),
               c = save_tiny(dir / "c", 3, 0, Dtype::BF16);
    WeightSpace space({a, b, c});
    auto model = space.new_model();
    const std::vector<fs::path> dirs = {a, b, c};
    for (double alpha : {0.0, 1.0}) { // PAPER.md's (1 - alpha) A + alpha B
        space.build({{1 - alpha, alpha}, {}}, model);
        const auto expected = body_of(alpha == 0 ? a : b);
        for (const auto& item : model->named_parameters())
            EXPECT_TRUE(bitwise_equal(item.value(), expected.at(item.key()))) << item.key() << " alpha " << alpha;
    }
    for (std::size_t k = 0; k < 3; ++k) {
        std::vector<double> w(3, 0.0);
        w[k] = 1;
        space.build({w, {}}, model);
        const auto expected = body_of(dirs[k]);
        for (const auto& item : model->named_parameters())
            EXPECT_TRUE(bitwise_equal(item.value(), expected.at(item.key()))) << item.key() << " member " << k;
    }
}

TEST(Region, MidpointIsTheAverageAndPointKeysDiffer) {
    TempDir dir;
    const auto a = save_tiny(dir / "a", 1), b = save_tiny(dir / "b", 2);
    WeightSpace space({a, b});
    auto model = space.new_model();
    space.build({{0.5, 0.5}, {}}, model);
    const auto ea = body_of(a), eb = body_of(b);
    for (const auto& item : model->named_parameters()) {
        auto expected = (ea.at(item.key()).to(torch::kDouble) + eb.at(item.key()).to(torch::kDouble)) / 2;
        EXPECT_LE((item.value().to(torch::kDouble) - expected).abs().max().item<double>(), 1e-7) << item.key();
    }
    EXPECT_NE(space.point_key({{0.5, 0.5}, {}}), space.point_key({{0.25, 0.75}, {}}));
    EXPECT_EQ(space.point_key({{0.5, 0.5}, {}}), space.point_key({{0.5, 0.5}, {}}));
    EXPECT_NE(space.point_key({{1, 0}, {}}), space.point_key({{0, 1}, {}}));
}

TEST(Region, MismatchedBodiesNameTheTensor) {
    TempDir dir;
    const auto a = save_tiny(dir / "a", 1);
    auto hf = tiny_roberta(0);
    hf.intermediate_size = 48;
    EncoderModel other(EncoderConfig::resolve(hf, "test"));
    save_model(other, config_for(other->config, hf), dir / "b");
    EXPECT_ERROR_CONTAINS(WeightSpace({a, dir / "b"}), "body does not match", "intermediate.dense.weight", "[48, 32]",
                          "expected [64, 32]");
    EXPECT_ERROR_CONTAINS(WeightSpace({a, dir / "missing"}), "model folder not found");
}

TEST(Region, XavierDirectionsFollowTheStatedScaling) {
    TempDir dir;
    const auto a = save_tiny(dir / "a", 1), b = save_tiny(dir / "b", 2);
    WeightSpace space({a, b});
    RandomDirection d;
    d.seed = 7;
    double squares = 0;
    for (std::size_t i = 0; i < space.body_names().size(); ++i) {
        auto t = space.direction_tensor(d, i);
        squares += t.to(torch::kDouble).pow(2).sum().item<double>();
        if (t.dim() < 2) {
            EXPECT_EQ(t.abs().max().item<float>(), 0.0f) << space.body_names()[i] << ": 1-D tensors stay";
            continue;
        }
        // E ||t||^2 = numel * 2 / (fan_in + fan_out); the sample mean of >= 1,000 squares is within 15%
        const double expected = double(t.numel()) * 2.0 / double(t.size(0) + t.size(1));
        EXPECT_NEAR(t.pow(2).sum().item<double>() / expected, 1.0, 0.15) << space.body_names()[i];
        EXPECT_TRUE(bitwise_equal(t, space.direction_tensor(d, i))) << "seeded: the same values every time";
    }
    EXPECT_NEAR(space.direction_norm(d), std::sqrt(squares), 1e-9 * std::sqrt(squares));
    // scaled to a target norm, the built point is base + s * direction with ||s * direction|| = target
    const double target = 3.5, s = scale_to_norm(space, d, target);
    RandomDirection scaled = d;
    scaled.coefficient = s;
    auto model = space.new_model();
    space.build({{1.0}, {scaled}}, model);
    const auto base = body_of(a);
    double moved = 0;
    for (const auto& item : model->named_parameters())
        moved += (item.value().to(torch::kDouble) - base.at(item.key()).to(torch::kDouble)).pow(2).sum().item<double>();
    EXPECT_NEAR(std::sqrt(moved), target, 1e-4 * target);
    RandomDirection other = d;
    other.seed = 8;
    EXPECT_FALSE(bitwise_equal(space.direction_tensor(d, 0), space.direction_tensor(other, 0)));
}

TEST(Region, FilterNormalizedDirectionsCopyFilterNorms) {
    TempDir dir;
    const auto a = save_tiny(dir / "a", 1);
    WeightSpace space({a});
    RandomDirection d{11, 1.0, DirectionKind::FilterNormalized, 0};
    for (std::size_t i = 0; i < space.body_names().size(); ++i) {
        auto t = space.direction_tensor(d, i);
        if (t.dim() < 2) continue;
        auto theta = space.source_tensor(0, i);
        EXPECT_LE((t.norm(2, 1) - theta.norm(2, 1)).abs().max().item<double>(),
                  1e-4 * theta.norm(2, 1).max().item<double>())
            << space.body_names()[i];
    }
}

TEST(Region, GramAndMeanTaskVectorNorm) {
    TempDir dir;
    const auto a = save_tiny(dir / "a", 1), b = save_tiny(dir / "b", 2), c = save_tiny(dir / "c", 3);
    WeightSpace space({a, b, c});
    const auto g = space.gram(0);
    const auto ea = body_of(a), eb = body_of(b), ec = body_of(c);
    double bb = 0, bc = 0;
    for (const auto& [name, t] : ea) {
        auto db = eb.at(name).to(torch::kDouble) - t.to(torch::kDouble);
        auto dc = ec.at(name).to(torch::kDouble) - t.to(torch::kDouble);
        bb += db.pow(2).sum().item<double>();
        bc += (db * dc).sum().item<double>();
    }
    EXPECT_NEAR(g[1][1], bb, 1e-9 * bb);
    EXPECT_NEAR(g[1][2], bc, 1e-9 * bb);
    EXPECT_EQ(g[0][0], 0.0);
    EXPECT_NEAR(mean_task_vector_norm(space, 0, {1, 2}), (std::sqrt(g[1][1]) + std::sqrt(g[2][2])) / 2, 1e-12);
}

TEST(RegionPoints, AlphasParseAndExtrapolationReaches32AndMinus31) {
    const auto a = parse_alphas("0:1:11");
    ASSERT_EQ(a.size(), 11u);
    EXPECT_EQ(a.front(), 0.0);
    EXPECT_EQ(a.back(), 1.0);
    EXPECT_NEAR(a[3], 0.3, 1e-15);
    EXPECT_EQ(parse_alphas("0.5, -1,2"), (std::vector<double>{0.5, -1, 2}));
    EXPECT_ERROR_CONTAINS(parse_alphas("0:1"), "start:stop:count");
    EXPECT_ERROR_CONTAINS(parse_alphas("0:x:3"), "'x' is not a number");
    EXPECT_ERROR_CONTAINS(parse_alphas("0:1:2.5"), "whole number");
    EXPECT_ERROR_CONTAINS(parse_alphas(""), "empty");
    const auto e = extrapolation_alphas();
    ASSERT_EQ(e.size(), 20u); // 10 from 1 to 32, 10 from 0 to -31
    EXPECT_NEAR(e.front(), -31, 1e-12);
    EXPECT_NEAR(e.back(), 32, 1e-12);
    EXPECT_NEAR(e[11] / e[10], std::pow(32.0, 1.0 / 9), 1e-12);    // log-spaced above 1
    EXPECT_EQ(merge_alphas(parse_alphas("0:1:3"), e).size(), 21u); // 0.5 is the only new point
}

TEST(RegionPoints, ProbabilityBetterOnHandMadeLosses) {
    // x = {1, 2, 3}, y = {2, 4}: 1<=2, 1<=4, 2<=2 (ties count), 2<=4, 3<=4; not 3<=2 -> 5 of 6
    auto pb = probability_better({1, 2, 3}, {2, 4});
    EXPECT_EQ(pb.pairs, 6u);
    EXPECT_DOUBLE_EQ(pb.value, 5.0 / 6.0);
    EXPECT_DOUBLE_EQ(probability_better({0.1, 0.2}, {0.5, 0.6, 0.7}).value, 1.0);
    EXPECT_DOUBLE_EQ(probability_better({5}, {1, 2}).value, 0.0);
    EXPECT_EQ(probability_better({}, {1}).pairs, 0u);
}

TEST(RegionPoints, DirichletSamplesLieOnTheSimplex) {
    const auto w = dirichlet_samples(4, 500, 3);
    ASSERT_EQ(w.size(), 500u);
    std::vector<double> mean(4, 0.0);
    for (const auto& row : w) {
        double sum = 0;
        for (std::size_t i = 0; i < 4; ++i) {
            EXPECT_GE(row[i], 0.0);
            sum += row[i];
            mean[i] += row[i] / 500;
        }
        EXPECT_NEAR(sum, 1.0, 1e-12);
    }
    for (double m : mean)
        EXPECT_NEAR(m, 0.25, 0.03); // Dirichlet(1) has mean 1/k
    EXPECT_EQ(dirichlet_samples(4, 3, 3), dirichlet_samples(4, 3, 3));
    EXPECT_NE(dirichlet_samples(4, 3, 3), dirichlet_samples(4, 3, 4));
}

TEST(RegionPoints, PlaneCoordinatesAndWeights) {
    // A = 0, B = (3, 0, 0), C = (1, 2, 0) in an orthonormal frame: bb 9, bc 3, cc 5
    const auto p = plane_basis(9, 3, 5);
    EXPECT_NEAR(p.ab, 3, 1e-12);
    EXPECT_NEAR(p.c_u, 1, 1e-12);
    EXPECT_NEAR(p.c_v, 2, 1e-12);
    const std::array<std::array<double, 3>, 3> one_hot = {{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};
    for (int k = 0; k < 3; ++k) {
        const auto w = p.weights(p.coordinates[k][0], p.coordinates[k][1]);
        for (int i = 0; i < 3; ++i)
            EXPECT_NEAR(w[i], one_hot[k][i], 1e-12) << "model " << k;
    }
    // (x, y) = (2, 1): the point A + 2u + v = (2, 1, 0) = wB B + wC C with wC = 1/2, wB = 1/2
    const auto w = p.weights(2, 1);
    EXPECT_NEAR(w[1], 0.5, 1e-12);
    EXPECT_NEAR(w[2], 0.5, 1e-12);
    EXPECT_NEAR(w[0], 0.0, 1e-12);
    EXPECT_ERROR_CONTAINS(plane_basis(4, 2, 1), "one line");
    EXPECT_ERROR_CONTAINS(plane_basis(0, 0, 1), "same point");
    const auto g = plane_grid(p, 21, 11, 0.2);
    EXPECT_NEAR(g.x0, -0.6, 1e-12);
    EXPECT_NEAR(g.x1, 3.6, 1e-12);
    EXPECT_NEAR(g.y1, 2.4, 1e-12);
    EXPECT_NEAR(g.x(20), g.x1, 1e-12);
    EXPECT_EQ(parse_grid("21x21", false), (std::pair<std::size_t, std::size_t>{21, 21}));
    EXPECT_EQ(parse_grid("7", false), (std::pair<std::size_t, std::size_t>{7, 7}));
    EXPECT_ERROR_CONTAINS(parse_grid("0x5", false), "at least 1");
    EXPECT_ERROR_CONTAINS(parse_grid("100x100", false), "--force");
    EXPECT_EQ(parse_grid("100x100", true).first, 100u);
    EXPECT_ERROR_CONTAINS(parse_grid("ax3", false), "not a number");
}

TEST(Stats, PairedTTestAgainstClosedForms) {
    // df = 2: P(|T| >= t) = 1 - t / sqrt(2 + t^2); df = 1 (Cauchy): 1 - 2 atan(t) / pi
    for (double t : {0.5, 2.0, 4.3}) {
        EXPECT_NEAR(student_t_two_sided_p(t, 2), 1 - t / std::sqrt(2 + t * t), 1e-12) << t;
        EXPECT_NEAR(student_t_two_sided_p(t, 1), 1 - 2 * std::atan(t) / M_PI, 1e-12) << t;
    }
    // differences 1, 2, 3: mean 2, sd 1, t = 2 sqrt(3), df 2
    const auto r = paired_t_test({0.5, 0.6, 0.7}, {1.5, 2.6, 3.7});
    EXPECT_NEAR(r.mean_difference, 2, 1e-12);
    EXPECT_NEAR(r.t, 2 * std::sqrt(3.0), 1e-9);
    EXPECT_EQ(r.degrees_of_freedom, 2);
    EXPECT_NEAR(r.p_value, 1 - r.t / std::sqrt(2 + r.t * r.t), 1e-9);
    EXPECT_EQ(paired_t_test({1, 2}, {1, 2}).p_value, 1.0);
    EXPECT_EQ(paired_t_test({1, 2}, {2, 3}).p_value, 0.0); // every difference equal and non-zero
    EXPECT_NEAR(sample_std({1, 2, 3, 4}), std::sqrt(5.0 / 3.0), 1e-12);
    // I_x(2, 3) = 12 (x^2/2 - 2 x^3/3 + x^4/4); at 0.3: 0.3483 (and the symmetric branch at 0.8)
    EXPECT_NEAR(incomplete_beta(0.3, 2, 3), 12 * (0.09 / 2 - 2 * 0.027 / 3 + 0.0081 / 4), 1e-12);
    EXPECT_NEAR(incomplete_beta(0.8, 2, 3), 12 * (0.64 / 2 - 2 * 0.512 / 3 + 0.4096 / 4), 1e-12);
}

TEST(Stats, WilsonIntervalAgainstTheClosedForm) {
    // 8 of 10: (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n) = 0.4902, 0.9433
    const basin::Interval w = basin::wilson_interval(8, 10);
    EXPECT_DOUBLE_EQ(w.estimate, 0.8);
    EXPECT_NEAR(w.low, 0.4902, 5e-5);
    EXPECT_NEAR(w.high, 0.9433, 5e-5);
    const basin::Interval all = basin::wilson_interval(17, 17), none = basin::wilson_interval(0, 17);
    EXPECT_LT(all.low, 1.0); // never the degenerate [1, 1] of the normal approximation
    EXPECT_DOUBLE_EQ(all.high, 1.0);
    EXPECT_DOUBLE_EQ(none.low, 0.0);
    EXPECT_TRUE(std::isnan(basin::wilson_interval(0, 0).low));
}

TEST(Stats, BootstrapIntervalOfTheMeanCoversAndNarrows) {
    // i.i.d. normal draws: the interval holds the sample mean, its width is about 2 x 1.96 sigma /
    // sqrt(n), it is the same for the same seed, and there is none below 3 values
    std::mt19937_64 rng(3);
    std::normal_distribution<double> normal(1.0, 2.0);
    for (std::size_t n : {20, 80, 320}) {
        std::vector<double> x(n);
        for (auto& v : x)
            v = normal(rng);
        const basin::Interval in = basin::bootstrap_mean_interval(x, 2000, 5);
        EXPECT_DOUBLE_EQ(in.estimate, basin::mean(x));
        EXPECT_LT(in.low, in.estimate);
        EXPECT_GT(in.high, in.estimate);
        const double expected = 2 * 1.96 * basin::sample_std(x) / std::sqrt(double(n));
        EXPECT_NEAR(in.high - in.low, expected, 0.15 * expected) << n;
        const basin::Interval again = basin::bootstrap_mean_interval(x, 2000, 5);
        EXPECT_EQ(in.low, again.low);
        EXPECT_EQ(in.high, again.high);
    }
    EXPECT_TRUE(std::isnan(basin::bootstrap_mean_interval({1.0, 2.0}, 100, 0).low));
}

TEST(Stats, QuantilesInterpolateLinearlyAsNumpy) {
    // numpy.quantile([3, 1, 4, 1, 5], q): 0.05 -> 1.0, 0.5 -> 3.0, 0.95 -> 4.8, 0.3 -> 1.4
    const std::vector<double> v = {3, 1, 4, 1, 5};
    EXPECT_DOUBLE_EQ(basin::quantile(v, 0.05), 1.0);
    EXPECT_DOUBLE_EQ(basin::quantile(v, 0.5), 3.0);
    EXPECT_DOUBLE_EQ(basin::quantile(v, 0.95), 4.8);
    EXPECT_DOUBLE_EQ(basin::quantile(v, 0.3), 1.4);
    EXPECT_DOUBLE_EQ(basin::quantile({7}, 0.95), 7.0);
    EXPECT_TRUE(std::isnan(basin::quantile({}, 0.5)));
    const basin::Summary s = basin::summarize(v);
    EXPECT_EQ(s.n, 5u);
    EXPECT_DOUBLE_EQ(s.mean, 2.8);
    EXPECT_DOUBLE_EQ(s.median, 3.0);
    EXPECT_EQ(basin::summarize({}).n, 0u);
}
