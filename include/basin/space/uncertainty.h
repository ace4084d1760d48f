// How sure a map's numbers are: bootstrap intervals over the seeds of each dataset, and
// permutation tests of dataset and family structure. Everything works on the cosine matrix (N x N)
// and the labels, so it serves a map of checkpoints and a given matrix alike. Torch-free.
//
// Bootstrap: each resample draws, within every group of the resampling kind (the datasets), as
// many members as it has, with replacement; the statistics are recomputed on the resampled models.
// A model drawn twice is not two seeds: pairs of its copies are left out of the pair statistics,
// and for the clustering and the silhouette their cosine is the model's mean cosine to the other
// members of its group, not 1. The interval is the 2.5% and 97.5% quantiles of the resampled
// values (percentile bootstrap).
//
// Permutation tests (one-sided, p = (1 + resamples at least as extreme) / (1 + permutations)):
// - dataset structure: models shuffled across the datasets (sizes kept); statistic: the mean
//   cosine of same-dataset pairs minus that of all other pairs;
// - family structure: whole datasets shuffled across the families (sizes kept, in datasets);
//   statistic: the mean cosine of pairs from different datasets of one family minus that of pairs
//   from different families (same-dataset pairs take no part, so seeds cannot pass for a family).
//
// Cost: resamples x (one spectral clustering per label kind + O(N^2)); N = 500 and 1,000 resamples
// take about a minute. Deterministic for a seed (basin's own generator).
#pragma once

#include "basin/core/stats.h" // Interval
#include "basin/space/analysis.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace basin {

struct PermutationTest {
    double statistic = NAN, p_value = NAN;
    std::size_t permutations = 0;
};

// One label kind's intervals: spectral clustering accuracy (one-to-one mapping) and the
// silhouette of its groups on 1 - cos.
struct KindUncertainty {
    std::string kind;
    Interval spectral_accuracy, silhouette;
};

// For a fine kind nested in a coarse one: the gaps between the three pair levels, with intervals,
// and the two permutation tests.
struct NestingUncertainty {
    std::string fine, coarse;
    Interval fine_gap;   // mean same-fine cosine - mean same-coarse (different fine) cosine
    Interval coarse_gap; // mean same-coarse (different fine) cosine - mean different-coarse cosine
    PermutationTest fine_structure, coarse_structure;
};

struct UncertaintyOptions {
    std::size_t resamples = 1000, permutations = 1000;
    std::uint64_t seed = 0;
    SpectralAssign assign = SpectralAssign::discretize;
};

// A label kind for the functions below: its name, each model's group, the number of groups.
struct KindLabels {
    std::string name;
    std::vector<int> label;
    int groups = 0;
};

struct MapUncertainty {
    std::string resampled_kind; // whose groups the bootstrap resamples within
    std::size_t resamples = 0;
    std::vector<KindUncertainty> kinds;
    std::vector<NestingUncertainty> nestings;
};

// kinds: every label kind of the map; resample_within: the index of the kind whose groups are
// resampled within (the finest: datasets). Kinds with fewer than 2 groups, or more groups than
// models, get no clustering interval.
MapUncertainty map_uncertainty(const SquareMatrix& cosine, const std::vector<KindLabels>& kinds,
                               std::size_t resample_within, const UncertaintyOptions& options);

// The two statistics of the permutation tests above (NaN where a level has no pairs).
double fine_structure_statistic(const SquareMatrix& cosine, const std::vector<int>& fine);
double coarse_structure_statistic(const SquareMatrix& cosine, const std::vector<int>& fine,
                                  const std::vector<int>& coarse);

} // namespace basin
