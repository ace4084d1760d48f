#include "basin/space/analysis.h"

#include "basin/core/error.h"
#include "basin/core/random.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>

namespace basin {
namespace {

using Matrix = Eigen::MatrixXd;

Matrix to_eigen(const SquareMatrix& m) {
    Matrix out(m.n, m.n);
    for (std::size_t i = 0; i < m.n; ++i)
        for (std::size_t j = 0; j < m.n; ++j)
            out(i, j) = m(i, j);
    return out;
}

double squared_distance(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (std::size_t d = 0; d < a.size(); ++d)
        s += (a[d] - b[d]) * (a[d] - b[d]);
    return s;
}

// Each point to its nearest centre; returns the inertia (sum of squared distances).
double assign_to_nearest(const Points& x, const Points& centres, std::vector<int>& labels) {
    labels.assign(x.size(), 0);
    double inertia = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        double best = std::numeric_limits<double>::infinity();
        for (std::size_t c = 0; c < centres.size(); ++c) {
            const double d = squared_distance(x[i], centres[c]);
            if (d < best) best = d, labels[i] = static_cast<int>(c);
        }
        inertia += best;
    }
    return inertia;
}

// Lloyd iterations from given centres; returns the inertia and fills labels.
double lloyd(const Points& x, Points& centres, std::vector<int>& labels, int max_iter, double tol) {
    const std::size_t k = centres.size(), dims = x[0].size();
    for (int iter = 0; iter < max_iter; ++iter) {
        assign_to_nearest(x, centres, labels);
        Points next(k, std::vector<double>(dims, 0.0));
        std::vector<int> count(k, 0);
        for (std::size_t i = 0; i < x.size(); ++i) {
            ++count[labels[i]];
            for (std::size_t d = 0; d < dims; ++d)
                next[labels[i]][d] += x[i][d];
        }
        double shift = 0;
        for (std::size_t c = 0; c < k; ++c) {
            if (count[c] == 0) {
                next[c] = centres[c]; // an empty cluster keeps its centre
                continue;
            }
            for (auto& v : next[c])
                v /= count[c];
            shift += squared_distance(next[c], centres[c]);
        }
        centres = std::move(next);
        if (shift <= tol) break;
    }
    return assign_to_nearest(x, centres, labels); // final labels for the final centres
}

// Hungarian algorithm (shortest augmenting paths) for a square cost matrix; returns the column
// assigned to each row.
std::vector<int> min_cost_assignment(const std::vector<std::vector<double>>& cost) {
    const int n = static_cast<int>(cost.size());
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> u(n + 1, 0), v(n + 1, 0);
    std::vector<int> p(n + 1, 0), way(n + 1, 0);
    for (int i = 1; i <= n; ++i) {
        p[0] = i;
        int j0 = 0;
        std::vector<double> minv(n + 1, inf);
        std::vector<char> used(n + 1, false);
        do {
            used[j0] = true;
            const int i0 = p[j0];
            double delta = inf;
            int j1 = 0;
            for (int j = 1; j <= n; ++j) {
                if (used[j]) continue;
                const double cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
                if (cur < minv[j]) minv[j] = cur, way[j] = j0;
                if (minv[j] < delta) delta = minv[j], j1 = j;
            }
            for (int j = 0; j <= n; ++j) {
                if (used[j])
                    u[p[j]] += delta, v[j] -= delta;
                else
                    minv[j] -= delta;
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            const int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    std::vector<int> row_to_col(n, -1);
    for (int j = 1; j <= n; ++j)
        if (p[j] > 0) row_to_col[p[j] - 1] = j - 1;
    return row_to_col;
}

// Accuracy and per-group F1 of clusters read as groups through a cluster -> group mapping.
ClusterScore score_mapping(const std::vector<int>& clusters, const std::vector<int>& groups, int n_groups,
                           const std::vector<int>& group_of_cluster) {
    ClusterScore s;
    s.group_of_cluster = group_of_cluster;
    std::vector<double> tp(n_groups, 0), predicted(n_groups, 0), actual(n_groups, 0);
    double correct = 0;
    for (std::size_t i = 0; i < clusters.size(); ++i) {
        const int g = group_of_cluster[clusters[i]];
        predicted[g] += 1;
        actual[groups[i]] += 1;
        if (g == groups[i]) tp[g] += 1, correct += 1;
    }
    s.accuracy = correct / double(clusters.size());
    for (int g = 0; g < n_groups; ++g) {
        const double denom = predicted[g] + actual[g];
        s.f1.push_back(denom > 0 ? 2 * tp[g] / denom : 0.0);
    }
    s.macro_f1 = std::accumulate(s.f1.begin(), s.f1.end(), 0.0) / std::max(1, n_groups);
    return s;
}

} // namespace

SquareMatrix cosine_from_gram(const SquareMatrix& g) {
    SquareMatrix c(g.n);
    for (std::size_t i = 0; i < g.n; ++i)
        for (std::size_t j = 0; j < g.n; ++j) {
            const double norm = std::sqrt(g(i, i) * g(j, j));
            c(i, j) = norm > 0 ? std::clamp(g(i, j) / norm, -1.0, 1.0) : 0.0;
        }
    for (std::size_t i = 0; i < g.n; ++i)
        if (g(i, i) > 0) c(i, i) = 1.0;
    return c;
}

SquareMatrix distance_from_gram(const SquareMatrix& g) {
    SquareMatrix d(g.n);
    for (std::size_t i = 0; i < g.n; ++i)
        for (std::size_t j = 0; j < g.n; ++j)
            d(i, j) = i == j ? 0.0 : std::sqrt(std::max(0.0, g(i, i) + g(j, j) - 2 * g(i, j)));
    return d;
}

SquareMatrix centered_gram(const SquareMatrix& g) {
    const std::size_t n = g.n;
    std::vector<double> row(n, 0.0);
    double all = 0;
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < n; ++j)
            row[i] += g(i, j);
        all += row[i];
        row[i] /= static_cast<double>(n);
    }
    all /= static_cast<double>(n * n);
    SquareMatrix c(n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            c(i, j) = g(i, j) - row[i] - row[j] + all;
    return c;
}

Points spectral_embedding(const SquareMatrix& affinity, int k) {
    const std::size_t n = affinity.n;
    BASIN_CHECK(k >= 1 && static_cast<std::size_t>(k) <= n, "spectral embedding: ", k, " dimensions for ", n,
                " points");
    Matrix a = to_eigen(affinity);
    a.diagonal().setZero(); // as scipy's laplacian(normed=True): self-loops are ignored
    Eigen::VectorXd degree = a.rowwise().sum();
    Eigen::VectorXd dd(n);
    for (std::size_t i = 0; i < n; ++i)
        dd(i) = degree(i) > 0 ? std::sqrt(degree(i)) : 1.0;
    Matrix laplacian = Matrix::Identity(n, n);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            if (i != j) laplacian(i, j) = -a(i, j) / (dd(i) * dd(j));
    Eigen::SelfAdjointEigenSolver<Matrix> solver(laplacian);
    BASIN_CHECK(solver.info() == Eigen::Success, "spectral embedding: eigen decomposition failed");
    Points out(n, std::vector<double>(k));
    for (int c = 0; c < k; ++c) { // eigenvalues ascending
        Eigen::VectorXd v = solver.eigenvectors().col(c).cwiseQuotient(dd);
        Eigen::Index top = 0;
        v.cwiseAbs().maxCoeff(&top);
        if (v(top) < 0) v = -v; // deterministic sign: the largest entry positive
        for (std::size_t i = 0; i < n; ++i)
            out[i][c] = v(i);
    }
    return out;
}

std::vector<int> kmeans(const Points& x, int k, std::uint64_t seed, int n_init) {
    const std::size_t n = x.size();
    BASIN_CHECK(k >= 1 && static_cast<std::size_t>(k) <= n, "k-means: ", k, " clusters for ", n, " points");
    // tolerance relative to the data's variance, as scikit-learn
    const std::size_t dims = x[0].size();
    double variance = 0;
    for (std::size_t d = 0; d < dims; ++d) {
        double mean = 0, sq = 0;
        for (const auto& p : x)
            mean += p[d];
        mean /= n;
        for (const auto& p : x)
            sq += (p[d] - mean) * (p[d] - mean);
        variance += sq / n;
    }
    const double tol = 1e-4 * variance / std::max<std::size_t>(1, dims);
    std::mt19937_64 rng(seed);
    std::vector<int> best_labels;
    double best = std::numeric_limits<double>::infinity();
    for (int run = 0; run < n_init; ++run) {
        // k-means++: each next centre drawn with probability proportional to D^2
        Points centres;
        centres.push_back(x[uniform_index(rng, n)]);
        std::vector<double> d2(n);
        while (centres.size() < static_cast<std::size_t>(k)) {
            double total = 0;
            for (std::size_t i = 0; i < n; ++i) {
                d2[i] = std::numeric_limits<double>::infinity();
                for (const auto& c : centres)
                    d2[i] = std::min(d2[i], squared_distance(x[i], c));
                total += d2[i];
            }
            std::size_t pick = 0;
            if (total > 0) {
                double r = uniform01(rng) * total;
                for (pick = 0; pick + 1 < n && r >= d2[pick]; ++pick)
                    r -= d2[pick];
            } else {
                pick = uniform_index(rng, n);
            }
            centres.push_back(x[pick]);
        }
        std::vector<int> labels;
        const double inertia = lloyd(x, centres, labels, 300, tol);
        if (best_labels.empty() || inertia < best - 1e-12 * best) best = inertia, best_labels = labels;
    }
    return best_labels;
}

SpectralAssign parse_spectral_assign(const std::string& name) {
    if (name == "discretize") return SpectralAssign::discretize;
    if (name == "kmeans") return SpectralAssign::kmeans;
    fail("--assign: expected discretize or kmeans, got '", name, "'");
}

const char* spectral_assign_name(SpectralAssign assign) {
    return assign == SpectralAssign::kmeans ? "kmeans" : "discretize";
}

std::vector<int> discretize_embedding(const Points& embedding, std::uint64_t seed) {
    const std::size_t n = embedding.size();
    BASIN_CHECK(n > 0 && !embedding[0].empty(), "discretize: an empty embedding");
    const std::size_t k = embedding[0].size();
    Matrix v(n, k);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t c = 0; c < k; ++c)
            v(i, c) = embedding[i][c];
    // columns to norm sqrt(n), each with a negative first entry; then rows to unit length
    for (std::size_t c = 0; c < k; ++c) {
        const double norm = v.col(c).norm();
        if (norm > 0) v.col(c) *= std::sqrt(double(n)) / norm;
        if (v(0, c) != 0) v.col(c) *= v(0, c) > 0 ? -1.0 : 1.0;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const double norm = v.row(i).norm();
        if (norm > 0) v.row(i) /= norm;
    }
    const double eps = std::numeric_limits<double>::epsilon();
    std::mt19937_64 rng(seed);
    std::vector<int> labels(n, 0);
    for (int restart = 0; restart < 30; ++restart) {
        // the first column a random row; each next one the row least aligned with those so far
        Matrix rotation = Matrix::Zero(k, k);
        rotation.col(0) = v.row(static_cast<Eigen::Index>(uniform_index(rng, n))).transpose();
        Eigen::VectorXd alignment = Eigen::VectorXd::Zero(n);
        for (std::size_t c = 1; c < k; ++c) {
            alignment += (v * rotation.col(c - 1)).cwiseAbs();
            Eigen::Index least = 0;
            alignment.minCoeff(&least);
            rotation.col(c) = v.row(least).transpose();
        }
        double last_objective = 0;
        for (int round = 1;; ++round) {
            const Matrix rotated = v * rotation;
            Matrix indicator = Matrix::Zero(n, k);
            for (std::size_t i = 0; i < n; ++i) {
                Eigen::Index best = 0;
                rotated.row(i).maxCoeff(&best);
                labels[i] = static_cast<int>(best);
                indicator(i, best) = 1;
            }
            Eigen::JacobiSVD<Matrix> svd(indicator.transpose() * v, Eigen::ComputeFullU | Eigen::ComputeFullV);
            if (svd.info() != Eigen::Success) break; // a fresh start
            const double objective = 2.0 * (double(n) - svd.singularValues().sum());
            if (std::abs(objective - last_objective) < eps || round > 20) return labels;
            last_objective = objective;
            rotation = svd.matrixV() * svd.matrixU().transpose();
        }
    }
    fail("discretize: the SVD did not converge in 30 starts");
}

std::vector<int> spectral_clustering(const SquareMatrix& affinity, int k, std::uint64_t seed, SpectralAssign assign) {
    const Points embedding = spectral_embedding(affinity, k);
    return assign == SpectralAssign::kmeans ? kmeans(embedding, k, seed) : discretize_embedding(embedding, seed);
}

std::vector<int> agglomerative_average(const SquareMatrix& distance, int k) {
    const std::size_t n = distance.n;
    BASIN_CHECK(k >= 1 && static_cast<std::size_t>(k) <= n, "agglomerative: ", k, " clusters for ", n, " points");
    std::vector<std::vector<std::size_t>> clusters(n);
    for (std::size_t i = 0; i < n; ++i)
        clusters[i] = {i};
    std::vector<bool> alive(n, true);
    SquareMatrix link = distance; // average linkage between live clusters
    std::size_t live = n;
    while (live > static_cast<std::size_t>(k)) {
        double best = std::numeric_limits<double>::infinity();
        std::size_t a = 0, b = 0;
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = i + 1; alive[i] && j < n; ++j)
                if (alive[j] && link(i, j) < best) best = link(i, j), a = i, b = j;
        const double na = clusters[a].size(), nb = clusters[b].size();
        for (std::size_t j = 0; j < n; ++j)
            if (alive[j] && j != a && j != b) link(a, j) = link(j, a) = (na * link(a, j) + nb * link(b, j)) / (na + nb);
        clusters[a].insert(clusters[a].end(), clusters[b].begin(), clusters[b].end());
        alive[b] = false;
        --live;
    }
    std::vector<int> labels(n, 0);
    int next = 0;
    for (std::size_t i = 0; i < n; ++i) // clusters numbered by their first member
        if (alive[i]) {
            for (std::size_t m : clusters[i])
                labels[m] = next;
            ++next;
        }
    return labels;
}

Projection pca_from_gram(const SquareMatrix& gram, int dims) {
    const std::size_t n = gram.n;
    Eigen::SelfAdjointEigenSolver<Matrix> solver(to_eigen(centered_gram(gram)));
    BASIN_CHECK(solver.info() == Eigen::Success, "PCA: eigen decomposition failed");
    const Eigen::VectorXd& values = solver.eigenvalues(); // ascending
    double total = 0;
    for (Eigen::Index i = 0; i < values.size(); ++i)
        total += std::max(0.0, values(i));
    Projection p;
    p.coordinates.assign(n, std::vector<double>(dims, 0.0));
    for (int d = 0; d < dims && d < static_cast<int>(n); ++d) {
        const Eigen::Index c = static_cast<Eigen::Index>(n) - 1 - d;
        const double lambda = std::max(0.0, values(c));
        Eigen::VectorXd v = solver.eigenvectors().col(c);
        Eigen::Index top = 0;
        v.cwiseAbs().maxCoeff(&top);
        if (v(top) < 0) v = -v;
        for (std::size_t i = 0; i < n; ++i)
            p.coordinates[i][d] = std::sqrt(lambda) * v(i);
        p.explained.push_back(total > 0 ? lambda / total : 0.0);
    }
    return p;
}

Points tsne(const SquareMatrix& distance, const Points& init, double perplexity, int iterations) {
    const std::size_t n = distance.n;
    BASIN_CHECK(n >= 2 && init.size() == n, "t-SNE: needs 2 or more points and their starting coordinates");
    // conditional affinities with a per-point precision found by bisection on the entropy
    Matrix p = Matrix::Zero(n, n);
    const double target = std::log(perplexity);
    for (std::size_t i = 0; i < n; ++i) {
        double beta = 1, lo = 0, hi = std::numeric_limits<double>::infinity();
        for (int step = 0; step < 100; ++step) {
            double sum = 0, weighted = 0;
            for (std::size_t j = 0; j < n; ++j) {
                if (j == i) continue;
                const double e = std::exp(-distance(i, j) * beta);
                p(i, j) = e;
                sum += e;
                weighted += distance(i, j) * e;
            }
            sum = std::max(sum, 1e-300);
            const double entropy = std::log(sum) + beta * weighted / sum;
            for (std::size_t j = 0; j < n; ++j)
                p(i, j) /= sum;
            if (std::abs(entropy - target) < 1e-5) break;
            if (entropy > target) {
                lo = beta;
                beta = std::isinf(hi) ? beta * 2 : (beta + hi) / 2;
            } else {
                hi = beta;
                beta = (beta + lo) / 2;
            }
        }
    }
    Matrix joint = (p + p.transpose()) / (2.0 * n);
    joint = joint.cwiseMax(1e-12);
    for (std::size_t i = 0; i < n; ++i)
        joint(i, i) = 0;

    Matrix y(n, 2), update = Matrix::Zero(n, 2), gains = Matrix::Ones(n, 2);
    for (std::size_t i = 0; i < n; ++i)
        y(i, 0) = init[i][0], y(i, 1) = init[i].size() > 1 ? init[i][1] : 0.0;
    const double learning_rate = std::max(static_cast<double>(n) / 48.0, 50.0);
    for (int iter = 0; iter < iterations; ++iter) {
        const bool early = iter < 250;
        const double exaggeration = early ? 12.0 : 1.0, momentum = early ? 0.5 : 0.8;
        Matrix q(n, n);
        double qsum = 0;
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < n; ++j) {
                q(i, j) = i == j ? 0.0 : 1.0 / (1.0 + (y.row(i) - y.row(j)).squaredNorm());
                qsum += q(i, j);
            }
        Matrix grad = Matrix::Zero(n, 2);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < n; ++j) {
                if (i == j) continue;
                const double w = (exaggeration * joint(i, j) - q(i, j) / qsum) * q(i, j);
                grad.row(i) += 4.0 * w * (y.row(i) - y.row(j));
            }
        for (std::size_t i = 0; i < n; ++i)
            for (int d = 0; d < 2; ++d) {
                const bool same = (update(i, d) > 0) == (grad(i, d) > 0);
                gains(i, d) = std::max(same ? gains(i, d) * 0.8 : gains(i, d) + 0.2, 0.01);
                update(i, d) = momentum * update(i, d) - learning_rate * gains(i, d) * grad(i, d);
                y(i, d) += update(i, d);
            }
    }
    Points out(n, std::vector<double>(2));
    for (std::size_t i = 0; i < n; ++i)
        out[i] = {y(i, 0), y(i, 1)};
    return out;
}

ClusterScore score_clusters(const std::vector<int>& clusters, const std::vector<int>& groups, int n_groups) {
    BASIN_CHECK(clusters.size() == groups.size() && !clusters.empty(), "cluster score: label lists differ in length");
    const int n_clusters = *std::max_element(clusters.begin(), clusters.end()) + 1;
    const int size = std::max(n_clusters, n_groups);
    std::vector<std::vector<double>> count(size, std::vector<double>(size, 0.0));
    for (std::size_t i = 0; i < clusters.size(); ++i)
        count[clusters[i]][groups[i]] += 1;
    std::vector<std::vector<double>> cost(size, std::vector<double>(size));
    for (int c = 0; c < size; ++c)
        for (int g = 0; g < size; ++g)
            cost[c][g] = -count[c][g];
    const auto assigned = min_cost_assignment(cost);
    ClusterScore s;
    s.group_of_cluster.assign(n_clusters, 0);
    for (int c = 0; c < n_clusters; ++c) {
        if (assigned[c] < n_groups) {
            s.group_of_cluster[c] = assigned[c];
        } else { // more clusters than groups: the extra ones take their majority group
            s.group_of_cluster[c] =
                static_cast<int>(std::max_element(count[c].begin(), count[c].begin() + n_groups) - count[c].begin());
        }
    }
    return score_mapping(clusters, groups, n_groups, s.group_of_cluster);
}

ClusterScore score_clusters_majority(const std::vector<int>& clusters, const std::vector<int>& groups, int n_groups) {
    BASIN_CHECK(clusters.size() == groups.size() && !clusters.empty(), "cluster score: label lists differ in length");
    const int n_clusters = *std::max_element(clusters.begin(), clusters.end()) + 1;
    std::vector<std::vector<int>> count(n_clusters, std::vector<int>(n_groups, 0));
    for (std::size_t i = 0; i < clusters.size(); ++i)
        ++count[clusters[i]][groups[i]];
    std::vector<int> group_of_cluster;
    for (const auto& row : count)
        group_of_cluster.push_back(static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin()));
    return score_mapping(clusters, groups, n_groups, group_of_cluster);
}

double silhouette(const SquareMatrix& distance, const std::vector<int>& labels) {
    const std::size_t n = distance.n;
    const int k = *std::max_element(labels.begin(), labels.end()) + 1;
    std::vector<int> size(k, 0);
    for (int l : labels)
        ++size[l];
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (size[labels[i]] <= 1) continue; // silhouette 0
        std::vector<double> sum(k, 0.0);
        for (std::size_t j = 0; j < n; ++j)
            if (j != i) sum[labels[j]] += distance(i, j);
        const double a = sum[labels[i]] / (size[labels[i]] - 1);
        double b = std::numeric_limits<double>::infinity();
        for (int c = 0; c < k; ++c)
            if (c != labels[i] && size[c] > 0) b = std::min(b, sum[c] / size[c]);
        if (std::isinf(b)) continue;
        const double m = std::max(a, b);
        total += m > 0 ? (b - a) / m : 0.0;
    }
    return total / n;
}

GroupSimilarity group_similarity(const SquareMatrix& cosine, const std::vector<int>& labels, int n_groups) {
    GroupSimilarity s;
    std::vector<double> ws(n_groups, 0), wc(n_groups, 0), bs(n_groups, 0), bc(n_groups, 0);
    s.members.assign(n_groups, 0);
    double all_w = 0, all_b = 0, nw = 0, nb = 0;
    for (std::size_t i = 0; i < cosine.n; ++i) {
        ++s.members[labels[i]];
        for (std::size_t j = 0; j < cosine.n; ++j) {
            if (i == j) continue;
            if (labels[i] == labels[j]) {
                ws[labels[i]] += cosine(i, j), wc[labels[i]] += 1;
                if (i < j) all_w += cosine(i, j), nw += 1;
            } else {
                bs[labels[i]] += cosine(i, j), bc[labels[i]] += 1;
                if (i < j) all_b += cosine(i, j), nb += 1;
            }
        }
    }
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (int g = 0; g < n_groups; ++g) {
        s.within.push_back(wc[g] > 0 ? ws[g] / wc[g] : nan);
        s.between.push_back(bc[g] > 0 ? bs[g] / bc[g] : nan);
    }
    s.within_mean = nw > 0 ? all_w / nw : nan;
    s.between_mean = nb > 0 ? all_b / nb : nan;
    return s;
}

NestedPairs nested_pairs(const SquareMatrix& cosine, const std::vector<int>& fine, const std::vector<int>& coarse) {
    BASIN_CHECK(fine.size() == cosine.n && coarse.size() == cosine.n, "nested pairs: ", cosine.n, " models but ",
                fine.size(), " and ", coarse.size(), " labels");
    std::vector<double> same_fine, same_coarse, different;
    for (std::size_t i = 0; i < cosine.n; ++i)
        for (std::size_t j = i + 1; j < cosine.n; ++j)
            (fine[i] == fine[j] ? same_fine : coarse[i] == coarse[j] ? same_coarse : different).push_back(cosine(i, j));
    return {summarize(same_fine), summarize(same_coarse), summarize(different)};
}

bool is_nested(const std::vector<int>& fine, const std::vector<int>& coarse) {
    std::map<int, int> coarse_of;
    std::set<int> fine_groups, coarse_groups;
    for (std::size_t i = 0; i < fine.size(); ++i) {
        const auto [it, inserted] = coarse_of.emplace(fine[i], coarse[i]);
        if (!inserted && it->second != coarse[i]) return false;
        fine_groups.insert(fine[i]), coarse_groups.insert(coarse[i]);
    }
    return coarse_groups.size() < fine_groups.size();
}

} // namespace basin
