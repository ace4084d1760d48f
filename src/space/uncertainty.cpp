#include "basin/space/uncertainty.h"

#include "basin/core/error.h"
#include "basin/core/random.h"
#include "basin/core/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>

namespace basin {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();

void shuffle(std::vector<int>& v, std::mt19937_64& rng) {
    for (std::size_t i = v.size(); i > 1; --i)
        std::swap(v[i - 1], v[uniform_index(rng, i)]);
}

// Mean cosine of the pairs at each level (fine, coarse-only, different); source: which original
// model each row is (pairs of copies of one model are skipped). coarse may be empty.
struct LevelMeans {
    double fine = kNan, coarse = kNan, different = kNan, not_fine = kNan;
};

LevelMeans level_means(const SquareMatrix& cosine, const std::vector<int>& fine, const std::vector<int>& coarse,
                       const std::vector<std::size_t>& source) {
    double sum[3] = {0, 0, 0}, count[3] = {0, 0, 0};
    for (std::size_t i = 0; i < cosine.n; ++i)
        for (std::size_t j = i + 1; j < cosine.n; ++j) {
            if (!source.empty() && source[i] == source[j]) continue;
            const int level = fine[i] == fine[j] ? 0 : (!coarse.empty() && coarse[i] == coarse[j]) ? 1 : 2;
            sum[level] += cosine(i, j), count[level] += 1;
        }
    LevelMeans m;
    if (count[0]) m.fine = sum[0] / count[0];
    if (count[1]) m.coarse = sum[1] / count[1];
    if (count[2]) m.different = sum[2] / count[2];
    if (count[1] + count[2]) m.not_fine = (sum[1] + sum[2]) / (count[1] + count[2]);
    return m;
}

// The percentile interval, its arms widened by expand (see small_sample_expansion).
Interval interval_of(double estimate, std::vector<double> values, double expand) {
    values.erase(std::remove_if(values.begin(), values.end(), [](double v) { return std::isnan(v); }), values.end());
    if (values.empty() || std::isnan(estimate)) return {estimate, kNan, kNan};
    const double low = quantile(values, 0.025), high = quantile(values, 0.975);
    return {estimate, estimate - expand * (estimate - low), estimate + expand * (high - estimate)};
}

// Resampling n members with replacement shrinks a mean's variance by (n - 1) / n; with five seeds
// a dataset's percentile interval covers about 92%, not 95%. The arms are widened by
// sqrt(n / (n - 1)), n the harmonic mean of the group sizes (groups of one left out).
double small_sample_expansion(const std::vector<std::vector<std::size_t>>& members) {
    double inverse = 0, groups = 0;
    for (const auto& g : members)
        if (g.size() > 1) inverse += 1.0 / double(g.size()), groups += 1;
    if (groups == 0) return 1.0;
    const double n = groups / inverse;
    return std::sqrt(n / (n - 1));
}

double spectral_accuracy(const SquareMatrix& cosine, const KindLabels& kind, std::uint64_t seed,
                         SpectralAssign assign) {
    if (kind.groups < 2 || static_cast<std::size_t>(kind.groups) > cosine.n) return kNan;
    SquareMatrix affinity(cosine.n);
    for (std::size_t k = 0; k < cosine.values.size(); ++k)
        affinity.values[k] = (cosine.values[k] + 1.0) / 2.0;
    const auto clusters = spectral_clustering(affinity, kind.groups, seed, assign);
    return score_clusters(clusters, kind.label, kind.groups).accuracy;
}

double silhouette_of(const SquareMatrix& cosine, const std::vector<int>& labels) {
    SquareMatrix distance(cosine.n);
    for (std::size_t i = 0; i < cosine.n; ++i)
        for (std::size_t j = 0; j < cosine.n; ++j)
            distance(i, j) = i == j ? 0.0 : std::max(0.0, 1.0 - cosine(i, j));
    return silhouette(distance, labels);
}

// One resample: the rows drawn within each group of the resampled kind.
std::vector<std::size_t> resample_rows(const std::vector<std::vector<std::size_t>>& members, std::size_t n,
                                       std::mt19937_64& rng) {
    std::vector<std::size_t> rows;
    rows.reserve(n);
    for (const auto& group : members)
        for (std::size_t k = 0; k < group.size(); ++k)
            rows.push_back(group[uniform_index(rng, group.size())]);
    return rows;
}

// The resampled cosine matrix. Two copies of one model are not two seeds: their cosine is taken
// as the model's mean cosine to the other members of its group (as similar as another seed of its
// dataset is on average), not 1, which would make every drawn dataset look tighter than it is.
SquareMatrix rows_of(const SquareMatrix& m, const std::vector<std::size_t>& rows,
                     const std::vector<double>& peer_mean) {
    SquareMatrix out(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i)
        for (std::size_t j = 0; j < rows.size(); ++j)
            out(i, j) = i != j && rows[i] == rows[j] ? peer_mean[rows[i]] : m(rows[i], rows[j]);
    return out;
}

// Each model's mean cosine to the other members of its group (1 for a group of one: never used,
// since a group of one draws its model once).
std::vector<double> peer_means(const SquareMatrix& m, const std::vector<std::vector<std::size_t>>& members) {
    std::vector<double> mean(m.n, 1.0);
    for (const auto& group : members)
        for (std::size_t i : group) {
            double sum = 0;
            for (std::size_t j : group)
                if (j != i) sum += m(i, j);
            if (group.size() > 1) mean[i] = sum / double(group.size() - 1);
        }
    return mean;
}

std::vector<int> labels_of(const std::vector<int>& labels, const std::vector<std::size_t>& rows) {
    std::vector<int> out;
    for (std::size_t r : rows)
        out.push_back(labels[r]);
    return out;
}

// One-sided permutation p-value of observed against statistics of relabelled data.
template <class Relabel>
PermutationTest permutation_test(double observed, std::size_t permutations, Relabel&& statistic_of_permutation) {
    PermutationTest t;
    t.statistic = observed, t.permutations = permutations;
    if (std::isnan(observed) || permutations == 0) return t;
    std::size_t at_least = 0;
    for (std::size_t p = 0; p < permutations; ++p)
        if (statistic_of_permutation() >= observed) ++at_least;
    t.p_value = double(1 + at_least) / double(1 + permutations);
    return t;
}

} // namespace

double fine_structure_statistic(const SquareMatrix& cosine, const std::vector<int>& fine) {
    const LevelMeans m = level_means(cosine, fine, {}, {});
    return m.fine - m.not_fine;
}

double coarse_structure_statistic(const SquareMatrix& cosine, const std::vector<int>& fine,
                                  const std::vector<int>& coarse) {
    const LevelMeans m = level_means(cosine, fine, coarse, {});
    return m.coarse - m.different;
}

MapUncertainty map_uncertainty(const SquareMatrix& cosine, const std::vector<KindLabels>& kinds,
                               std::size_t resample_within, const UncertaintyOptions& options) {
    BASIN_CHECK(resample_within < kinds.size(), "uncertainty: no label kind to resample within");
    const std::size_t n = cosine.n;
    const KindLabels& unit = kinds[resample_within];
    std::vector<std::vector<std::size_t>> members(unit.groups);
    for (std::size_t i = 0; i < n; ++i)
        members[unit.label[i]].push_back(i);
    // the nestings: fine kinds nested in coarse ones
    std::vector<std::pair<std::size_t, std::size_t>> nest;
    for (std::size_t f = 0; f < kinds.size(); ++f)
        for (std::size_t c = 0; c < kinds.size(); ++c)
            if (f != c && is_nested(kinds[f].label, kinds[c].label)) nest.emplace_back(f, c);

    MapUncertainty out;
    out.resampled_kind = unit.name, out.resamples = options.resamples;
    const std::vector<double> peer_mean = peer_means(cosine, members);
    const double expand = small_sample_expansion(members);
    std::mt19937_64 rng(options.seed);
    std::vector<std::vector<double>> accuracy(kinds.size()), silhouettes(kinds.size());
    std::vector<std::vector<double>> fine_gaps(nest.size()), coarse_gaps(nest.size());
    for (std::size_t b = 0; b < options.resamples; ++b) {
        const auto rows = resample_rows(members, n, rng);
        const SquareMatrix sub = rows_of(cosine, rows, peer_mean);
        for (std::size_t k = 0; k < kinds.size(); ++k) {
            const KindLabels resampled{kinds[k].name, labels_of(kinds[k].label, rows), kinds[k].groups};
            accuracy[k].push_back(spectral_accuracy(sub, resampled, options.seed + b + 1, options.assign));
            silhouettes[k].push_back(resampled.groups >= 2 ? silhouette_of(sub, resampled.label) : kNan);
        }
        for (std::size_t e = 0; e < nest.size(); ++e) {
            const LevelMeans m = level_means(sub, labels_of(kinds[nest[e].first].label, rows),
                                             labels_of(kinds[nest[e].second].label, rows), {});
            fine_gaps[e].push_back(m.fine - m.coarse);
            coarse_gaps[e].push_back(m.coarse - m.different);
        }
    }
    for (std::size_t k = 0; k < kinds.size(); ++k) {
        KindUncertainty u;
        u.kind = kinds[k].name;
        u.spectral_accuracy =
            interval_of(spectral_accuracy(cosine, kinds[k], options.seed, options.assign), accuracy[k], expand);
        u.silhouette =
            interval_of(kinds[k].groups >= 2 ? silhouette_of(cosine, kinds[k].label) : kNan, silhouettes[k], expand);
        out.kinds.push_back(u);
    }
    for (std::size_t e = 0; e < nest.size(); ++e) {
        const auto& fine = kinds[nest[e].first].label;
        const auto& coarse = kinds[nest[e].second].label;
        const LevelMeans m = level_means(cosine, fine, coarse, {});
        NestingUncertainty u;
        u.fine = kinds[nest[e].first].name, u.coarse = kinds[nest[e].second].name;
        u.fine_gap = interval_of(m.fine - m.coarse, fine_gaps[e], expand);
        u.coarse_gap = interval_of(m.coarse - m.different, coarse_gaps[e], expand);
        std::vector<int> shuffled = fine;
        u.fine_structure = permutation_test(fine_structure_statistic(cosine, fine), options.permutations, [&] {
            shuffle(shuffled, rng);
            return fine_structure_statistic(cosine, shuffled);
        });
        // whole fine groups relabelled to coarse groups, sizes kept
        std::map<int, int> coarse_of_fine;
        for (std::size_t i = 0; i < n; ++i)
            coarse_of_fine[fine[i]] = coarse[i];
        std::vector<int> fine_ids, assigned;
        for (const auto& [f, c] : coarse_of_fine)
            fine_ids.push_back(f), assigned.push_back(c);
        u.coarse_structure =
            permutation_test(coarse_structure_statistic(cosine, fine, coarse), options.permutations, [&] {
                shuffle(assigned, rng);
                std::map<int, int> relabel;
                for (std::size_t g = 0; g < fine_ids.size(); ++g)
                    relabel[fine_ids[g]] = assigned[g];
                std::vector<int> permuted(n);
                for (std::size_t i = 0; i < n; ++i)
                    permuted[i] = relabel[fine[i]];
                return coarse_structure_statistic(cosine, fine, permuted);
            });
        out.nestings.push_back(u);
    }
    return out;
}

} // namespace basin
