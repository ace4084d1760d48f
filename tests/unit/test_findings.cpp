// The paper's numbers against PAPER.md, and the report's findings as records (no HTML): a store
// written here through the Store API, its findings read back with their values and verdicts.
#include "basin/experiment/job_kinds.h"
#include "basin/experiment/paper.h"
#include "basin/experiment/report.h"
#include "basin/experiment/store.h"
#include "test_util.h"

#include <cmath>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace {

using basin::Finding;
using basin::Verdict;

TEST(PaperNumbers, EveryEntryIsWhatPaperMdWrites) {
    const std::filesystem::path file = std::filesystem::path(BASIN_SHARED_DIR) / "PAPER.md";
    if (!std::filesystem::exists(file)) GTEST_SKIP() << file << " is absent: the paper's numbers were not checked";
    std::ifstream in(file);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    for (const auto& n : basin::paper::kNumbers) {
        SCOPED_TRACE(std::string(n.id));
        bool found = false;
        for (const auto& line : lines)
            if (line.find(n.row) != std::string::npos && line.find(n.as_written) != std::string::npos) found = true;
        EXPECT_TRUE(found) << "no line of PAPER.md has '" << n.row << "' and '" << n.as_written << "'";
        // the value is the number written, as a fraction when written as a percentage
        std::smatch m;
        const std::string written(n.as_written);
        ASSERT_TRUE(std::regex_search(written, m, std::regex(R"([0-9]+(\.[0-9]+)?)")));
        const double number = std::stod(m.str()),
                     expected = written.find('%') != std::string::npos ? number / 100 : number;
        EXPECT_NEAR(n.value, expected, 1e-12);
    }
    EXPECT_THROW(basin::paper::number("no such number"), std::logic_error);
}

// A finished job in the store: its labels and metrics (subject, dataset, metric, value).
void record(basin::Store& store, const std::string& id, const std::string& kind, const std::string& labels,
            const std::vector<std::tuple<std::string, std::string, std::string, double>>& metrics) {
    store.job_started(id, kind, "key-" + id, "/nowhere/" + id, labels);
    basin::JobResults r;
    for (const auto& [subject, dataset, metric, value] : metrics)
        r.metrics.push_back({id, subject, dataset, metric, value});
    store.job_finished(id, "key-" + id, 1.0, r);
}

const Finding& find(const std::vector<Finding>& all, const std::string& name) {
    for (const auto& f : all)
        if (f.finding == name) return f;
    throw std::runtime_error("no finding '" + name + "'");
}

TEST(Findings, ValuesAndVerdictsComeFromTheStore) {
    basin::testing::TempDir dir;
    {
        basin::Store store(dir / "store.sqlite");
        record(store, "map", "map", "{}",
               {{"map", "", "clustering_accuracy/dataset/spectral", 0.90},
                {"map", "", "clustering_accuracy/dataset/kmeans_pca", 0.5},
                {"map", "", "clustering_accuracy/family/spectral", 0.70}});
        record(store, "hull/dataset/a", "hull", R"({"level":"dataset","group":"a"})",
               {{"pb", "all datasets", "PB(In', In)", 0.25}, {"pb", "all datasets", "PB(In', Ex)", 1.0}});
        record(store, "hull/dataset/b", "hull", R"({"level":"dataset","group":"b"})",
               {{"pb", "all datasets", "PB(In', In)", 0.75}, {"pb", "all datasets", "PB(In', Ex)", 0.9}});
        record(store, "hull/general", "hull", R"({"level":"general","group":""})",
               {{"pb", "all datasets", "PB(In', In)", 0.95}});
        store.job_started("finetune/a-s1", "finetune", "k", "/nowhere",
                          R"({"model":"a-s1","dataset":"a"})"); // still running
    }
    const auto all = basin::paper_findings(dir.path());
    const Finding& clustering = find(all, "same-dataset clustering accuracy (spectral)");
    EXPECT_EQ(clustering.verdict, Verdict::agrees); // within 10 points of 98%
    EXPECT_DOUBLE_EQ(clustering.value, 90.0);
    EXPECT_EQ(clustering.unit, "%");
    EXPECT_EQ(clustering.paper, "98.00%");
    EXPECT_EQ(clustering.spread, "kmeans_pca 50.00%");
    EXPECT_EQ(find(all, "task-family clustering accuracy (spectral)").verdict, Verdict::differs); // 70% against 90%
    const Finding& pb = find(all, "PB(In', In), dataset level (hull samples vs members)");
    EXPECT_DOUBLE_EQ(pb.value, 50.0); // the mean over the two groups
    EXPECT_EQ(pb.spread, "range 25.00-75.00% over 2 groups");
    EXPECT_EQ(pb.verdict, Verdict::differs);
    const Finding& ex = find(all, "PB(In', Ex), dataset level (hull samples vs outside models)");
    EXPECT_DOUBLE_EQ(ex.value, 95.0);
    EXPECT_EQ(ex.verdict, Verdict::agrees);
    const Finding& general = find(all, "PB(In', In), general level (hull samples vs members)");
    EXPECT_EQ(general.spread, "one group");
    EXPECT_EQ(general.verdict, Verdict::agrees);
    for (const auto& f : all)
        EXPECT_EQ(f.finding.find("centroid"), std::string::npos) << "no centroid job, no centroid finding";
}

TEST(Findings, IntervalsAndPermutationTestsDecideWhereTheMapHasThem) {
    basin::testing::TempDir dir;
    {
        basin::Store store(dir / "store.sqlite");
        record(store, "map", "map", "{}",
               {{"map", "", "clustering_accuracy/dataset/spectral", 0.80},
                {"map", "", "ci/dataset/spectral_accuracy/low", 0.70},
                {"map", "", "ci/dataset/spectral_accuracy/high", 0.985},
                {"map", "", "clustering_accuracy/family/spectral", 0.85},
                {"map", "", "ci/family/spectral_accuracy/low", 0.60},
                {"map", "", "ci/family/spectral_accuracy/high", 0.88},
                {"map", "", "p/dataset-in-family/fine_structure", 0.001},
                {"map", "", "p/dataset-in-family/coarse_structure", 0.31},
                {"map", "", "ci/dataset-in-family/coarse_gap/estimate", 0.004},
                {"map", "", "ci/dataset-in-family/coarse_gap/low", -0.01},
                {"map", "", "ci/dataset-in-family/coarse_gap/high", 0.02}});
    }
    const auto all = basin::paper_findings(dir.path());
    // 80% is 18 points below the paper's 98%, but 98% lies in the interval: it does not differ
    const Finding& dataset = find(all, "same-dataset clustering accuracy (spectral)");
    EXPECT_EQ(dataset.verdict, Verdict::agrees);
    EXPECT_EQ(dataset.spread, "95% interval 70.00-98.50%");
    // 85% is within 10 points of 90%, but 90% lies above the interval: it differs
    EXPECT_EQ(find(all, "task-family clustering accuracy (spectral)").verdict, Verdict::differs);
    const Finding& seeds = find(all, "dataset structure (permutation test: models shuffled across datasets)");
    EXPECT_EQ(seeds.verdict, Verdict::agrees);
    EXPECT_EQ(seeds.basin, "p = 0.001");
    const Finding& family = find(all, "family structure (permutation test: datasets shuffled across families)");
    EXPECT_EQ(family.verdict, Verdict::not_shown);
    EXPECT_EQ(family.spread, "cosine gap +0.004 (95% interval -0.010 to 0.020)");
}

// The centroid's verdict from the interval of its mean gain over targets (targets resampled): a
// gain whose interval lies above 0 but below the paper's is "in direction"; one that reaches it agrees.
TEST(Findings, TheCentroidVerdictUsesTheIntervalOverTargets) {
    for (const double gain : {0.02, 0.12}) { // points: 2 and 12 (the paper's few-shot BitFit gain is 10.66)
        basin::testing::TempDir dir;
        {
            basin::Store store(dir / "store.sqlite");
            std::vector<std::tuple<std::string, std::string, std::string, double>> metrics;
            for (int t = 0; t < 8; ++t) {
                const std::string target = "t" + std::to_string(t);
                const double d = gain + 0.01 * ((t % 3) - 1); // around the gain, every target positive
                metrics.push_back({"pretrained", target, "accuracy_mean", 0.7});
                metrics.push_back({"centroid", target, "accuracy_mean", 0.7 + d});
                metrics.push_back({"centroid - pretrained", target, "difference", d});
                metrics.push_back({"centroid - pretrained", target, "p_value", t < 3 ? 0.01 : 0.2});
                for (int run = 1; run <= 2; ++run) {
                    metrics.push_back({"pretrained", target, "accuracy_run" + std::to_string(run), 0.7});
                    metrics.push_back({"centroid", target, "accuracy_run" + std::to_string(run), 0.7 + d});
                }
            }
            record(store, "centroid/bitfit-1000", "centroid", R"({"mode":"bitfit","train_limit":"1000"})", metrics);
        }
        const auto all = basin::paper_findings(dir.path());
        const Finding& c = find(all, "centroid vs pretrained start, BitFit, at most 1000 training examples");
        SCOPED_TRACE(c.spread);
        EXPECT_NEAR(c.value, 100 * gain - 0.125, 1e-9); // the offsets -1, 0, 1 points sum to -1 over 8 targets
        EXPECT_NE(c.spread.find("95% interval +"), std::string::npos);
        EXPECT_NE(c.spread.find("3 of 8 targets better at p < 0.05"), std::string::npos);
        EXPECT_EQ(c.verdict, gain < 0.1 ? Verdict::agrees_in_direction : Verdict::agrees);
    }
}

TEST(Findings, AStoreThatIsMissingIsNamed) {
    basin::testing::TempDir dir;
    EXPECT_ERROR_CONTAINS(basin::paper_findings(dir / "nothing"), "nothing", "no store.sqlite");
}

} // namespace

namespace basin {
namespace {

TEST(JobKinds, EveryKindCollectsAndHasAReportSection) {
    std::set<std::string> names;
    for (const auto& k : job_kinds()) {
        EXPECT_TRUE(names.insert(k.name).second) << k.name;
        EXPECT_TRUE(k.collect) << k.name;
        EXPECT_TRUE(report_has_section(k.name)) << k.name << " has no section in the report";
        EXPECT_STREQ(job_kind(k.name).name, k.name);
    }
    const std::string e = testing::error_of([] { job_kind("sweep"); });
    EXPECT_NE(e.find("unknown job kind 'sweep' (finetune, map,"), std::string::npos) << e;
}

TEST(JobKinds, ThePlannerMakesOnlyRegisteredKinds) {
    // BASIN_SHARED_DIR is "<source>/../shared": the examples are in <source>/examples
    const auto source = std::filesystem::path(BASIN_SHARED_DIR).parent_path().parent_path();
    const auto spec = source / "examples" / "reproduction.toml";
    if (!std::filesystem::exists(std::filesystem::path(BASIN_SHARED_DIR) / "datasets"))
        GTEST_SKIP() << "../shared/datasets is absent: the reproduction spec cannot be planned";
    std::set<std::string> kinds;
    for (const auto& job : expand_jobs(read_experiment(spec)))
        kinds.insert(job.kind);
    for (const auto& kind : kinds)
        EXPECT_NO_THROW(job_kind(kind)) << kind;
    for (const auto& k : job_kinds()) // the plane is in reproduction-real.toml only
        if (std::string(k.name) != "plane") EXPECT_TRUE(kinds.count(k.name)) << k.name << " is not planned";
}

} // namespace
} // namespace basin
