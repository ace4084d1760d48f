// What a Gram matrix of task vectors says: similarities, clusters, their agreement with known
// groups, and 2-D pictures. Everything here works on N x N matrices (N = number of models).
#pragma once

#include "basin/core/stats.h"
#include "basin/space/gram.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace basin {

// cos(i, j) = G_ij / sqrt(G_ii G_jj) (0 where a task vector is zero); distance = ||t_i - t_j||.
SquareMatrix cosine_from_gram(const SquareMatrix& gram);
SquareMatrix distance_from_gram(const SquareMatrix& gram);
// The Gram matrix of the same vectors measured from their mean instead of the base: J G J.
SquareMatrix centered_gram(const SquareMatrix& gram);

using Points = std::vector<std::vector<double>>;

// How spectral clustering turns its embedding into labels, as scikit-learn's assign_labels:
// discretize (Yu and Shi 2003, multiclass spectral clustering: the rotation of the embedding
// nearest to a cluster indicator matrix; what the paper's authors used) or kmeans.
enum class SpectralAssign { discretize, kmeans };
SpectralAssign parse_spectral_assign(const std::string& name); // "discretize" | "kmeans"
const char* spectral_assign_name(SpectralAssign assign);

// Spectral clustering as scikit-learn's SpectralClustering(affinity="precomputed") does it:
// symmetric normalised Laplacian of the affinity (its diagonal ignored), the k eigenvectors of
// the smallest eigenvalues divided by sqrt(degree), deterministic signs, then discretize or k-means.
std::vector<int> spectral_clustering(const SquareMatrix& affinity, int k, std::uint64_t seed,
                                     SpectralAssign assign = SpectralAssign::discretize);
// Spectral embedding used above (N points of k coordinates).
Points spectral_embedding(const SquareMatrix& affinity, int k);
// Yu and Shi's discretisation of a spectral embedding (N x k): columns scaled to norm sqrt(N) with
// the first entry's sign fixed, rows to unit length; then, from a rotation started at a seeded
// random row (and the rows least aligned with it), alternately the indicator matrix nearest to the
// rotated embedding and the rotation nearest to that (an SVD), until the normalised-cut bound
// stops changing (machine epsilon) or after 20 rounds; up to 30 restarts if an SVD fails. Only the
// starting row is random, and on separated data every start gives the same partition.
std::vector<int> discretize_embedding(const Points& embedding, std::uint64_t seed);
// Lloyd's k-means from k-means++ starts, best of n_init by inertia; deterministic for a seed.
std::vector<int> kmeans(const Points& points, int k, std::uint64_t seed, int n_init = 10);
// Average-linkage agglomerative clustering on a distance matrix, cut at k clusters.
std::vector<int> agglomerative_average(const SquareMatrix& distance, int k);

// Principal coordinates from a Gram matrix (PCA of the vectors without forming them): the
// vectors are centred, and coordinate d of model i is sqrt(lambda_d) v_d[i].
struct Projection {
    Points coordinates;            // N x dims
    std::vector<double> explained; // share of the total variance per dimension
};
Projection pca_from_gram(const SquareMatrix& gram, int dims);

// Exact t-SNE on a precomputed distance matrix (as scikit-learn's TSNE(metric="precomputed"):
// perplexity-calibrated affinities, early exaggeration 12 for 250 iterations, momentum 0.5 then
// 0.8, gains, learning rate max(N / 48, 50)), started from the given 2-D coordinates.
Points tsne(const SquareMatrix& distance, const Points& init, double perplexity, int iterations = 1000);

// Clusters against known groups (both 0-based). Each cluster is mapped to a group so that the
// number of correctly placed models is largest and every group gets a cluster (an optimal
// assignment; with as many clusters as groups, a one-to-one mapping).
struct ClusterScore {
    double accuracy = 0;
    std::vector<int> group_of_cluster;
    std::vector<double> f1; // per group
    double macro_f1 = 0;
};
ClusterScore score_clusters(const std::vector<int>& clusters, const std::vector<int>& groups, int n_groups);
// The majority rule instead: each cluster is mapped to the group most of its members belong to
// (ties: the group listed first), so several clusters may map to one group and a group may get
// none (accuracy is then the clustering's purity).
ClusterScore score_clusters_majority(const std::vector<int>& clusters, const std::vector<int>& groups, int n_groups);

// Mean silhouette coefficient of a labelling on a distance matrix (as scikit-learn's
// silhouette_score(metric="precomputed"): 0 for members of singleton clusters).
double silhouette(const SquareMatrix& distance, const std::vector<int>& labels);

// Mean cosine within each group (pairs of distinct members) and between the group and the rest.
struct GroupSimilarity {
    std::vector<double> within, between; // per group (NaN for a group of one member)
    std::vector<int> members;
    double within_mean = 0, between_mean = 0; // over all pairs of the kind
};
GroupSimilarity group_similarity(const SquareMatrix& cosine, const std::vector<int>& labels, int n_groups);

// For a fine labelling nested in a coarse one (datasets in families), the cosines of the pairs of
// distinct models at three levels, each pair counted once and at one level only: the same fine
// group (seeds of one dataset); the same coarse group but different fine groups (different
// datasets of one family); different coarse groups. A coarse group's "within" then never mixes in
// the tighter fine pairs.
struct NestedPairs {
    Summary same_fine, same_coarse, different_coarse;
};
NestedPairs nested_pairs(const SquareMatrix& cosine, const std::vector<int>& fine, const std::vector<int>& coarse);
// True when every fine group lies in one coarse group (and the two labellings are not the same
// partition, that is the coarse one has fewer groups).
bool is_nested(const std::vector<int>& fine, const std::vector<int>& coarse);

} // namespace basin
