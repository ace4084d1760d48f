// Internal to experiment/: one experiment's store read once (Study), the views the report and
// the findings share (the cosine matrix by dataset, the centroid comparison), and the findings
// themselves (findings.cpp): the paper's claims as this study measured them, with a typed
// verdict, and the likely reasons where they differ. Torch-free; no HTML.
#pragma once

#include "basin/experiment/report.h"
#include "basin/experiment/results.h"
#include "basin/experiment/store.h"
#include "basin/region/records.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <toml++/toml.h>
#include <vector>

namespace basin::report_detail {

namespace fs = std::filesystem;
using nlohmann::json;
using Lookup = MetricIndex; // metrics of one job (experiment/results.h)

// The finished jobs of one kind, in store order.
std::vector<std::string> done_jobs(const std::vector<JobRecord>& jobs, const std::string& kind);

// Mean and range of a few values.
struct Spread {
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    std::size_t n = 0;
    void add(double v) { sum += v, lo = std::min(lo, v), hi = std::max(hi, v), ++n; }
    double mean() const { return n ? sum / double(n) : NAN; }
};

// The cosine matrix from the store, per dataset: how tight its models are (their seeds closer to
// each other than to anything else) and how close to the rest of its family.
struct DatasetTightness {
    std::string dataset, family;
    Spread within, family_other, other;
    std::size_t nearest_same = 0, members = 0;
};

struct SimilarityView {
    std::vector<std::string> names, datasets; // models ordered by family and dataset
    std::vector<int> group;                   // each model's dataset index
    std::vector<std::vector<double>> values;
    std::vector<DatasetTightness> tightness;
};

// The map's cosines ordered by family and dataset, with each dataset's tightness; none without a
// map with two embedded models (or from a store older than the cosine matrix).
std::optional<SimilarityView> similarity_view(const Lookup& map_metrics, const std::vector<PointRecord>& points);

// "+1.2" / "-0.5": a share in percent points, a number with digits.
std::string signed_pct(double v);
std::string signed_fixed(double v, int digits);

// ---- centroid versus pretrained, from one init-compare job's metrics

struct TargetComparison {
    std::string name;
    double pretrained = NAN, pretrained_std = NAN, centroid = NAN, centroid_std = NAN, difference = NAN, p_value = NAN;
};

struct CentroidComparison {
    std::string title, mode;
    std::size_t train_limit = 0;
    std::vector<TargetComparison> targets;
    double mean_difference = NAN;
    int better_or_equal = 0;
    std::vector<double> per_seed; // the mean difference over targets, for each seed
};

CentroidComparison centroid_comparison(const Lookup& metrics, const json& labels);

// ---- one experiment's store, read once for every section that uses it

struct Study {
    fs::path folder, store_path;
    std::unique_ptr<Store> store;
    std::string name;
    std::vector<JobRecord> jobs;
    std::map<std::string, JobRecord> job_of;
    json facts = json::object(); // the runner's dataset facts (sizes, majority class)
    toml::table spec;            // the spec the store was made with (empty when unreadable)
    bool map_done = false;
    std::vector<PointRecord> map_points;
    std::optional<SimilarityView> view; // the map's cosine matrix by dataset
    std::size_t done = 0, failed = 0, pending = 0;
    std::size_t planned = 0; // the spec's jobs at the latest run (0 in stores older than that record)

    json labels(const std::string& id) const {
        const auto j = job_of.find(id);
        const json l = j == job_of.end() ? json() : json::parse(j->second.labels, nullptr, false);
        return l.is_object() ? l : json::object();
    }
    // the metrics of exactly one job (the store matches by prefix)
    Lookup metrics_of(const std::string& id) const { return MetricIndex(job_metrics(id)); }
    // the region records of one job, as the store holds them (experiment/results.h)
    std::vector<Metric> job_metrics(const std::string& id) const {
        auto all = store->metrics(id);
        all.erase(std::remove_if(all.begin(), all.end(), [&](const Metric& m) { return m.job != id; }), all.end());
        return all;
    }
    std::vector<PointRecord> job_points(const std::string& id) const {
        auto all = store->points(id);
        all.erase(std::remove_if(all.begin(), all.end(), [&](const PointRecord& p) { return p.job != id; }), all.end());
        return all;
    }
    InterpolationRecord interpolation(const std::string& id) const {
        return interpolation_from_store(job_metrics(id), job_points(id));
    }
    HullRecord hull(const std::string& id) const { return hull_from_store(job_metrics(id), job_points(id)); }
    PlaneRecord plane(const std::string& id) const { return plane_from_store(job_metrics(id), job_points(id)); }
    std::vector<std::string> done_of(const std::string& kind) const { return done_jobs(jobs, kind); }
    bool is_done(const std::string& id) const {
        const auto j = job_of.find(id);
        return j != job_of.end() && j->second.state == "done";
    }
    std::string status_line() const {
        const std::size_t not_started = planned > jobs.size() ? planned - jobs.size() : 0;
        const std::size_t unfinished = pending + not_started;
        return (planned ? std::to_string(done) + " of " + std::to_string(planned) : std::to_string(done)) +
               " jobs done, " + std::to_string(failed) + " failed or blocked" +
               (unfinished ? ", " + std::to_string(unfinished) + " not finished yet (their sections are missing)."
                           : ".");
    }
};

// experiment: a folder holding store.sqlite (opened read-only).
Study load_study(const fs::path& experiment);

// Test accuracy of every fine-tuned model, in store order.
struct ModelAccuracy {
    std::string model, dataset;
    double accuracy;
};
std::vector<ModelAccuracy> finetuned_accuracies(const Study& st);

// The generalized loss along one interpolation or extrapolation line: alpha -> losses over datasets.
std::map<double, Spread> loss_by_alpha(const InterpolationRecord& line);

// ---- the paper's findings (findings.cpp)

// agrees_in_direction: the same direction as the paper, but less than half its size
std::string verdict_text(Verdict v);
bool agrees(Verdict v); // agrees, or agrees in direction

struct StudyFindings {
    std::vector<Finding> findings;
    std::vector<std::string> reasons; // what separates the experiment from the paper, in numbers from the store
};

// The paper's findings as this study measured them, and the likely reasons where they differ.
StudyFindings study_findings(const Study& st);

} // namespace basin::report_detail
