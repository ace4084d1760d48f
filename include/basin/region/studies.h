// The region studies of PAPER.md as library calls: each builds its points in weight space (a
// line, a hull with its outside, a plane), scores them with the generalized loss
// (region/score.h) and returns its record (region/records.h), which write_*_files turns into an
// output folder. The CLI's interpolate, hull and plane parse options into these structs and print.
#pragma once

#include "basin/region/records.h"
#include "basin/region/score.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

namespace basin {

// theta(alpha) = (1 - alpha) A + alpha B at each alpha.
struct InterpolationStudy {
    std::filesystem::path a, b;
    std::vector<double> alphas;         // sorted, distinct (merge_alphas)
    bool extrapolate = false;           // the alphas include extrapolation_alphas() (figures on a symlog axis)
    std::filesystem::path adapter_base; // the base of LoRA adapter folders among A and B (WeightSpace)
};
InterpolationRecord run_interpolation(const InterpolationStudy& study, std::vector<TargetDataset>& targets,
                                      const ScoreOptions& options);

// In: the members; In': weighted averages of them (explicit weights, or Dirichlet(1) samples);
// Ex: the outside models and the base moved along `random` Xavier directions scaled to the
// members' mean task-vector norm.
struct HullStudy {
    std::vector<std::filesystem::path> members, outside;
    std::optional<std::filesystem::path> base; // needed for random directions
    std::vector<std::vector<double>> weights;  // one row per hull sample; empty: Dirichlet samples
    std::size_t samples = 0;                   // Dirichlet samples (0: as many as members)
    std::size_t random = 0;
    std::uint64_t seed = 0;             // of the Dirichlet samples and (derive_seed 1, 2, ...) the directions
    std::filesystem::path adapter_base; // the base of LoRA adapter folders among the models (default: base)
};
HullRecord run_hull(const HullStudy& study, std::vector<TargetDataset>& targets, const ScoreOptions& options);

// A grid on the plane through three models A, B, C (orthonormalised, widened by `margin`), or with
// random_seed on the plane around A spanned by two filter-normalised random directions
// (Li et al., 2018), over [-extent, extent] on both axes.
struct PlaneStudy {
    std::vector<std::filesystem::path> models; // A B C, or A with random_seed
    std::size_t columns = 21, rows = 21;
    double margin = 0.2;
    std::optional<std::uint64_t> random_seed;
    double extent = 1.0;
    std::filesystem::path adapter_base; // the base of LoRA adapter folders among the models
};
PlaneRecord run_plane(const PlaneStudy& study, std::vector<TargetDataset>& targets, const ScoreOptions& options);

} // namespace basin
