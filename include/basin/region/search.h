// Searching the region (PAPER.md: "any point in the region is good"): for each target dataset,
// the simplex weights over a group's members whose combination has the lowest generalized loss
// on the target's own training data, compared on the target's test split with the points that
// need no search: the centroid, TIES and DARE (with a base), a greedy soup and the best member.
//
// Selection: the training split is cut (seeded) into a fit part and a held-out part; a point's
// selection loss is the probe fitted on the fit part and scored on the held-out part. The search
// (region/simplex_search.h, COBYLA on stick-breaking coordinates) starts from the best of the
// members and the centroid on that loss and spends at most `budget` evaluations in all, the
// starting points included. The test split is used only to report. Every point is scored by
// score_points, so its features are cached (a rerun, or members scored before, cost no forward
// pass). Memory: one model being built plus the targets' features; the merges stream.
#pragma once

#include "basin/region/records.h"
#include "basin/region/score.h"

#include <filesystem>
#include <optional>
#include <vector>

namespace basin {

struct SearchStudy {
    std::vector<std::filesystem::path> members;
    std::optional<std::filesystem::path> base; // TIES and DARE baselines (task vectors)
    double held_out = 0.25;                    // share of the training split the selection loss is scored on
    std::uint64_t seed = 0;                    // of the fit / held-out cut
    std::size_t budget = 30;                   // selection-loss evaluations per target, the start's included
    double ties_density = 0.2, dare_density = 0.1;
    // where the TIES and DARE merges and each target's searched checkpoint are written (a folder
    // being filled, e.g. inside write_folder_atomically)
    std::filesystem::path out;
};

// The fit / held-out cut of a target's training split, as a target of its own (fit: train,
// held-out: test), prepared for `space` with cache tags naming the cut. Held-out examples whose
// label the fit part lacks are dropped. Fill `selection` in place (its prepared data points into it).
void make_selection_target(const TargetDataset& target, double held_out, std::uint64_t seed, const WeightSpace& space,
                           const FeatureOptions& features, TargetDataset& selection);

// Runs the search and its comparison for every target; writes OUT/ties, OUT/dare (with a base) and
// OUT/<target>/searched (the searched point as a checkpoint with basin_merge.json provenance).
SearchRecord run_search(const SearchStudy& study, std::vector<TargetDataset>& targets, const ScoreOptions& options);

// Greedy soup (Wortsman et al., 2022): the members sorted by selection accuracy (best first; ties
// by lower loss), each added to the uniform soup only if the soup's selection accuracy does not
// drop. `score` gives a point's selection score; returns the kept members, in order added.
std::vector<std::size_t> greedy_soup(std::size_t members, const std::vector<PointScore>& member_scores,
                                     const std::function<PointScore(const std::vector<double>&)>& score);

} // namespace basin
