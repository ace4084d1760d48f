// Region studies as data. An interpolation, a hull and a plane each end in one record: what was
// scored (the targets, the points and how they were made) and the scores, score[p][d] for point
// p on target d. The studies (region/studies.h) return these records; the writers here turn a
// record into its output folder (a CSV of every score, summary.json, figures) and the readers
// turn such a folder back into the same record, so the experiment store (experiment/results.h)
// and the report take their values from one type instead of from columns only a command knew.
//
// Torch-free. A reader checks what it reads: a missing file, column or score names the file, the
// line and what was expected. Values round-trip exactly (numbers are written with 17 significant
// digits).
#pragma once

#include "basin/region/points.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace basin {

// One point on one target: the generalized loss and what came with it.
struct PointScore {
    double loss = 0, accuracy = 0;             // test split: the generalized loss and accuracy
    double train_loss = 0, train_accuracy = 0; // the probe on its own training data
    bool converged = false;
    bool cached = false; // every feature came from the cache
};

// scores[p][d]: point p on target d.
using ScoreGrid = std::vector<std::vector<PointScore>>;

// Where the time of a study went (score_points measures it).
struct ScoreTimes {
    double build_seconds = 0, extract_seconds = 0, fit_seconds = 0, wall_seconds = 0;
    std::size_t points_built = 0, points_cached = 0;
};

// A probe target as records name it: its files and sizes, not its examples.
struct TargetInfo {
    std::string name;        // the dataset folder's name
    std::string train, test; // the split files
    std::vector<std::string> labels;
    std::size_t train_examples = 0, test_examples = 0;
    std::string sample = "all examples"; // or the sample the probe was fitted and scored on
};

// The mean of one field of a point's scores over its targets.
double mean_over_targets(const std::vector<PointScore>& row, double PointScore::*field);

// theta(alpha) = (1 - alpha) A + alpha B over the body, at each alpha (sorted).
struct InterpolationRecord {
    std::string a, b;         // the checkpoints at alpha 0 and 1
    bool extrapolate = false; // the alphas reach past the endpoints (figures on a symlog axis)
    std::vector<double> alphas;
    std::vector<TargetInfo> targets;
    ScoreGrid scores; // [alpha][target]
    ScoreTimes times;
};

// The hull's point sets (PAPER.md): In (members), In' (Dirichlet(1) averages of them), Ex
// (models outside the group and the base moved along random directions).
struct HullPoint {
    std::string name, set;       // set: "In", "In'" or "Ex"
    std::vector<double> weights; // per source (members, outside models, the base); missing trailing ones are 0
};

// A hull point's weights as scores.csv and the store write them: space-separated, 17 digits.
std::string weights_text(const std::vector<double>& weights);

// PB(X, Y) for the three pairs the paper reports, in this order.
constexpr std::array<std::array<const char*, 2>, 3> kPbPairs = {{{"In'", "In"}, {"In'", "Ex"}, {"In", "Ex"}}};
std::string pb_name(std::size_t pair); // "PB(In', In)", ...

struct PbRow {
    std::string dataset; // a target's name, or "all datasets"
    std::array<ProbabilityBetter, kPbPairs.size()> values;
};
constexpr const char* kAllDatasets = "all datasets";

// PB per target (pairs on the same target only), then over all targets (every target's pairs
// pooled) as the last row.
std::vector<PbRow> hull_pb(const std::vector<HullPoint>& points, const ScoreGrid& scores,
                           const std::vector<std::string>& targets);

struct HullRecord {
    std::vector<std::string> sources; // members, outside models, then the base (when given)
    std::size_t members = 0, hull_samples = 0, outside = 0, random = 0;
    double random_norm = 0; // the norm the random directions were scaled to (0: none)
    std::uint64_t seed = 0;
    std::vector<TargetInfo> targets;
    std::vector<HullPoint> points; // In, then In', then Ex
    ScoreGrid scores;              // [point][target]
    std::vector<PbRow> pb;         // hull_pb of the above
    ScoreTimes times;
};

// Resamples of a hull's pooled PB (its "all datasets" row), for an interval that respects that
// pairs share points: each resample draws the points of every set (In, In', Ex) again with
// replacement, the same draw for every target, and pools the pairs over the targets as hull_pb
// does. Deterministic for a seed.
std::vector<std::array<double, kPbPairs.size()>> hull_pb_resamples(const HullRecord& hull, std::size_t resamples,
                                                                   std::uint64_t seed);

struct PlaneMarker {
    std::string model; // "A", "B", "C"
    double u = 0, v = 0;
};

// A grid of points on a plane: through three models A, B, C (orthonormalised directions), or
// around A along two filter-normalised random directions.
struct PlaneRecord {
    std::vector<std::string> models;
    bool random = false;
    std::uint64_t seed = 0; // random: the plane's seed
    PlaneBasis basis;       // through A, B, C: the basis the grid is laid in
    PlaneGrid grid;
    std::vector<PlaneMarker> markers;
    std::vector<std::array<double, 3>> weights; // through A, B, C: point j * nx + i's weights of A, B, C
    std::vector<TargetInfo> targets;
    ScoreGrid scores; // [j * grid.nx + i][target]
    ScoreTimes times;
};

// A search of the region for one target (region/search.h): the selection split's trials (simplex
// weights over the members and their generalized loss on the held-out part of the target's
// training data), and the rows compared on the target's test split: the searched point, then the
// baselines (centroid, TIES, DARE where a base is given, greedy soup, the best member).
struct SearchRow {
    std::string name;            // searched, centroid, ties, dare, greedy-soup, best-member
    std::vector<double> weights; // over the members (empty: a merge that is no combination of them)
    PointScore selection, test;  // selection: fitted on the fit part, scored on the held-out part
    std::string detail;          // how the row was made (parameters, the members of the soup, ...)
};

struct SearchTargetRecord {
    TargetInfo target;
    std::size_t fit_examples = 0, held_out_examples = 0;
    std::vector<std::vector<double>> trial_weights;
    std::vector<double> trial_losses; // the selection objective of each trial, in order
    std::string stopped;              // why the search ended
    std::vector<SearchRow> rows;      // rows[0]: the searched point
};

// For each baseline: on how many targets the searched point's test loss is lower, equal, higher.
struct SearchWins {
    std::string against;
    std::size_t wins = 0, ties = 0, losses = 0;
};

struct SearchRecord {
    std::vector<std::string> members;
    std::string base; // empty: none (no TIES or DARE rows)
    double held_out = 0;
    std::uint64_t seed = 0;
    std::size_t budget = 0;
    std::vector<SearchTargetRecord> targets;
    std::vector<SearchWins> wins;
    ScoreTimes times;
};

// The output folders. write_*_files fills a folder being written (write_folder_atomically gives
// one): scores.csv (grid.csv for the plane), summary.json and the figures.
void write_interpolation_files(const InterpolationRecord& record, const std::filesystem::path& dir);
void write_hull_files(const HullRecord& record, const std::filesystem::path& dir);
void write_plane_files(const PlaneRecord& record, const std::filesystem::path& dir);
// search.csv (every row of every target), trials.csv and summary.json
void write_search_files(const SearchRecord& record, const std::filesystem::path& dir);

InterpolationRecord read_interpolation(const std::filesystem::path& dir);
HullRecord read_hull(const std::filesystem::path& dir);
PlaneRecord read_plane(const std::filesystem::path& dir);

} // namespace basin
