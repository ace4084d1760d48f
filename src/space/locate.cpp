#include "basin/space/locate.h"

#include "basin/core/error.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>

namespace basin {
namespace {

using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;

// ||q - sum w_i t_i|| from Gram entries (0 for a tiny negative rounding).
double distance_of(const Matrix& g_ss, const Vector& g_sq, double g_qq, const Vector& w) {
    return std::sqrt(std::max(0.0, g_qq - 2 * w.dot(g_sq) + w.dot(g_ss * w)));
}

} // namespace

std::vector<double> nonnegative_least_squares(const std::vector<double>& a_values, std::size_t rows,
                                              std::size_t columns, const std::vector<double>& b_values) {
    BASIN_CHECK(a_values.size() == rows * columns && b_values.size() == rows, "nnls: shapes do not match");
    const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> a(
        a_values.data(), Eigen::Index(rows), Eigen::Index(columns));
    const Eigen::Map<const Vector> b(b_values.data(), Eigen::Index(rows));
    const Eigen::Index n = Eigen::Index(columns);
    Vector x = Vector::Zero(n);
    std::vector<bool> passive(columns, false);
    const double tol = 10 * std::numeric_limits<double>::epsilon() * a.cwiseAbs().colwise().sum().maxCoeff() *
                       double(std::max(rows, columns));
    // least squares on the passive columns (the others held at 0)
    auto solve_passive = [&] {
        std::vector<Eigen::Index> cols;
        for (Eigen::Index j = 0; j < n; ++j)
            if (passive[std::size_t(j)]) cols.push_back(j);
        Matrix ap(a.rows(), Eigen::Index(cols.size()));
        for (std::size_t k = 0; k < cols.size(); ++k)
            ap.col(Eigen::Index(k)) = a.col(cols[k]);
        const Vector sp = ap.completeOrthogonalDecomposition().solve(b);
        Vector s = Vector::Zero(n);
        for (std::size_t k = 0; k < cols.size(); ++k)
            s(cols[k]) = sp(Eigen::Index(k));
        return s;
    };
    for (std::size_t iteration = 0; iteration < 3 * columns + 10; ++iteration) {
        const Vector w = a.transpose() * (b - a * x);
        Eigen::Index best = -1;
        for (Eigen::Index j = 0; j < n; ++j)
            if (!passive[std::size_t(j)] && w(j) > tol && (best < 0 || w(j) > w(best))) best = j;
        if (best < 0) break; // optimal: no inactive column would lower the residual
        passive[std::size_t(best)] = true;
        for (std::size_t inner = 0; inner < 3 * columns + 10; ++inner) {
            const Vector s = solve_passive();
            bool feasible = true;
            double alpha = 1;
            for (Eigen::Index j = 0; j < n; ++j)
                if (passive[std::size_t(j)] && s(j) <= tol) {
                    feasible = false;
                    alpha = std::min(alpha, x(j) / (x(j) - s(j)));
                }
            if (feasible) {
                x = s;
                break;
            }
            x += alpha * (s - x);
            for (Eigen::Index j = 0; j < n; ++j)
                if (passive[std::size_t(j)] && x(j) <= tol) passive[std::size_t(j)] = false, x(j) = 0;
        }
    }
    return std::vector<double>(x.data(), x.data() + n);
}

HullFit fit_to_hull(const SquareMatrix& gram, std::size_t query, const std::vector<std::size_t>& members) {
    BASIN_CHECK(!members.empty(), "locate: a group without members");
    const Eigen::Index m = Eigen::Index(members.size());
    Matrix g_ss(m, m);
    Vector g_sq(m);
    for (Eigen::Index i = 0; i < m; ++i) {
        g_sq(i) = gram(members[std::size_t(i)], query);
        for (Eigen::Index j = 0; j < m; ++j)
            g_ss(i, j) = gram(members[std::size_t(i)], members[std::size_t(j)]);
    }
    const double g_qq = gram(query, query);
    HullFit fit;
    // affine hull: [G 1; 1' 0] [w; mu] = [g; 1], least-norm where the members are dependent
    Matrix kkt = Matrix::Zero(m + 1, m + 1);
    kkt.topLeftCorner(m, m) = g_ss;
    kkt.block(0, m, m, 1).setOnes();
    kkt.block(m, 0, 1, m).setOnes();
    Vector rhs(m + 1);
    rhs.head(m) = g_sq, rhs(m) = 1;
    const Vector affine = kkt.completeOrthogonalDecomposition().solve(rhs).head(m);
    fit.affine_distance = distance_of(g_ss, g_sq, g_qq, affine);
    // convex hull: NNLS on a factor of G_SS, the sum-to-one condition as a weighted row
    Eigen::SelfAdjointEigenSolver<Matrix> eig(g_ss);
    const double top = std::max(eig.eigenvalues().maxCoeff(), 0.0);
    std::vector<Eigen::Index> kept;
    for (Eigen::Index k = 0; k < m; ++k)
        if (eig.eigenvalues()(k) > 1e-12 * top) kept.push_back(k);
    const double weight = 1e3 * std::max(1.0, std::sqrt(top));
    const std::size_t rows = kept.size() + 1;
    std::vector<double> a(rows * std::size_t(m)), b(rows);
    for (std::size_t r = 0; r < kept.size(); ++r) {
        const double lambda = eig.eigenvalues()(kept[r]);
        const Vector v = eig.eigenvectors().col(kept[r]);
        for (Eigen::Index j = 0; j < m; ++j)
            a[r * std::size_t(m) + std::size_t(j)] = std::sqrt(lambda) * v(j);
        b[r] = v.dot(g_sq) / std::sqrt(lambda);
    }
    for (Eigen::Index j = 0; j < m; ++j)
        a[kept.size() * std::size_t(m) + std::size_t(j)] = weight;
    b[kept.size()] = weight;
    std::vector<double> w = nonnegative_least_squares(a, rows, std::size_t(m), b);
    double sum = 0;
    for (double v : w)
        sum += v;
    Vector convex(m);
    for (Eigen::Index j = 0; j < m; ++j)
        convex(j) = sum > 0 ? w[std::size_t(j)] / sum : 1.0 / double(m);
    fit.convex_distance = distance_of(g_ss, g_sq, g_qq, convex);
    fit.weights.assign(convex.data(), convex.data() + m);
    return fit;
}

} // namespace basin
