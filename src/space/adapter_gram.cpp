#include "basin/space/adapter_gram.h"

#include "basin/core/error.h"
#include "basin/core/hash.h"
#include "basin/io/adapter.h"
#include "basin/io/checkpoint.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cblas.h>
#include <chrono>
#include <map>
#include <set>

namespace basin {

namespace {

using Matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using FloatMap = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>;

// The stacked factors of one weight's adapters: scale folded into B, both in double.
struct Stacked {
    Matrix b;                         // [out, sum of ranks]
    Matrix a;                         // [sum of ranks, in]
    std::vector<std::int64_t> offset; // of each adapter's columns / rows
};

Stacked stack(const std::vector<LoraFactors>& adapters) {
    std::int64_t total = 0;
    for (const auto& f : adapters)
        total += f.rank;
    const std::int64_t out = adapters.front().out, in = adapters.front().in;
    Stacked s{Matrix(out, total), Matrix(total, in), {}};
    std::int64_t at = 0;
    for (const auto& f : adapters) {
        BASIN_CHECK(f.out == out && f.in == in, "lora_block_gram: adapters of one weight must share its shape (", out,
                    " x ", in, "), found ", f.out, " x ", f.in);
        s.offset.push_back(at);
        s.b.middleCols(at, f.rank) = FloatMap(f.b, f.out, f.rank).cast<double>() * f.scale;
        s.a.middleRows(at, f.rank) = FloatMap(f.a, f.rank, f.in).cast<double>();
        at += f.rank;
    }
    s.offset.push_back(at);
    return s;
}

} // namespace

SquareMatrix lora_block_gram(const std::vector<LoraFactors>& adapters, int threads, std::size_t known) {
    const std::size_t k = adapters.size();
    SquareMatrix g(k);
    if (k == 0 || known >= k) return g;
    const Stacked s = stack(adapters);
    std::vector<std::pair<std::size_t, std::size_t>> tiles; // (first adapter of I, of J), I <= J
    for (std::size_t i = 0; i < k; i += kLoraTileAdapters)
        for (std::size_t j = i; j < k; j += kLoraTileAdapters)
            if (std::min(k, j + kLoraTileAdapters) > known) tiles.emplace_back(i, j); // some pair is new
    openblas_set_num_threads(1);                                                      // the tiles are the parallelism
#pragma omp parallel for schedule(dynamic) num_threads(std::max(1, threads))
    for (std::size_t t = 0; t < tiles.size(); ++t) {
        const auto [i0, j0] = tiles[t];
        const std::size_t i1 = std::min(k, i0 + kLoraTileAdapters), j1 = std::min(k, j0 + kLoraTileAdapters);
        const std::int64_t ri = s.offset[i0], ni = s.offset[i1] - ri, rj = s.offset[j0], nj = s.offset[j1] - rj;
        // P = B_I^T B_J, Q = A_I A_J^T: each adapter pair's r x r blocks, then sum(P_ab o Q_ab);
        // OpenBLAS's dgemm (run-time dispatched kernels: 2.8x Eigen's without -march=native)
        Matrix p(ni, nj), q(ni, nj);
        const auto total = Eigen::Index(s.b.cols()), in = Eigen::Index(s.a.cols()), out = Eigen::Index(s.b.rows());
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(ni), int(nj), int(out), 1.0, s.b.data() + ri,
                    int(total), s.b.data() + rj, int(total), 0.0, p.data(), int(nj));
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(ni), int(nj), int(in), 1.0, s.a.data() + ri * in,
                    int(in), s.a.data() + rj * in, int(in), 0.0, q.data(), int(nj));
        for (std::size_t a = i0; a < i1; ++a)
            for (std::size_t b = std::max(a, j0); b < j1; ++b) {
                if (b < known) continue; // a and b both known (a <= b)
                const std::int64_t pa = s.offset[a] - ri, pb = s.offset[b] - rj;
                const std::int64_t na = s.offset[a + 1] - s.offset[a], nb = s.offset[b + 1] - s.offset[b];
                const double v = p.block(pa, pb, na, nb).cwiseProduct(q.block(pa, pb, na, nb)).sum();
                g(a, b) = g(b, a) = v; // each pair lies in exactly one tile
            }
    }
    return g;
}

namespace {

// T [out, in] in double, from the stored tensor ([in, out] when transposed): converted once for
// every adapter that meets it.
Matrix dense_as_out_in(const LoraFactors& f, const float* t, bool transposed) {
    return transposed ? Matrix(FloatMap(t, f.in, f.out).cast<double>().transpose())
                      : Matrix(FloatMap(t, f.out, f.in).cast<double>());
}

// sum((B^T T) o A), scaled: <s B A, T>_F with T [out, in]
double dot_dense(const LoraFactors& f, const Matrix& t) {
    const Matrix b = FloatMap(f.b, f.out, f.rank).cast<double>(), a = FloatMap(f.a, f.rank, f.in).cast<double>();
    return f.scale * Matrix(b.transpose() * t).cwiseProduct(a).sum();
}

} // namespace

double lora_dot_dense(const LoraFactors& f, const float* t, bool transposed) {
    return dot_dense(f, dense_as_out_in(f, t, transposed));
}

bool has_adapters(const std::vector<fs::path>& models) {
    for (const auto& m : models)
        if (is_adapter_folder(m)) return true;
    return false;
}

namespace {

// A tensor of a checkpoint as float32 (any floating dtype).
std::vector<float> read_f32(const CheckpointTensors::Ref& ref) {
    std::vector<float> out(std::size_t(ref.info->numel()));
    convert_to_f32(ref.info->dtype, ref.data(), out.data(), out.size());
    return out;
}

} // namespace

GramResult zoo_gram(const fs::path& base_path, const std::vector<fs::path>& models, const GramOptions& options) {
    if (!has_adapters(models)) return task_vector_gram(base_path, models, options);
    const auto start = std::chrono::steady_clock::now();
    const std::size_t known = options.known; // models mapped before (an update): their products are kept

    std::vector<fs::path> full;
    std::vector<std::size_t> adapter_at; // input positions of the adapters
    std::size_t known_full = 0;
    for (std::size_t i = 0; i < models.size(); ++i) {
        (is_adapter_folder(models[i]) ? (void)adapter_at.push_back(i) : full.push_back(models[i]));
        if (i < known && !is_adapter_folder(models[i])) ++known_full;
    }

    // every adapter is read and checked against the base before the pass over the full models
    const CheckpointTensors base(find_weights(model_folder(base_path)));
    std::vector<std::unique_ptr<LoraAdapter>> adapters;
    for (std::size_t i : adapter_at)
        adapters.push_back(std::make_unique<LoraAdapter>(models[i], base));
    GramResult g;
    if (!full.empty()) {
        // the pass needs a new model after the known ones: when only adapters are new, the last
        // known full model's row is formed again (read anyway, it costs one row of products)
        GramOptions pass = options;
        pass.known = std::min(known_full, full.size() - 1);
        g = task_vector_gram(base_path, full, pass);
    }
    // the layer group of a tensor: its index in g.layers (one group, "all", without per_layer)
    auto group_of = [&](const std::string& tensor) {
        const std::string group = options.per_layer ? layer_group(tensor) : "all";
        return std::size_t(std::find(g.layers.begin(), g.layers.end(), group) - g.layers.begin());
    };
    if (full.empty()) { // the body and its layer groups, in the order the pass would give them
        g.body = body_candidates(base, options, g.excluded);
        for (const auto& name : g.body) {
            const std::size_t l = group_of(name);
            if (l == g.layers.size())
                g.layers.push_back(options.per_layer ? layer_group(name) : "all"), g.layer_parameters.push_back(0);
            const std::int64_t numel = base.find(name)->info->numel();
            g.layer_parameters[l] += numel;
            g.parameters += numel;
        }
    }
    const std::set<std::string> body(g.body.begin(), g.body.end());

    // the models in input order: the full ones the pass used (some may have been skipped), then
    // every adapter in its place
    std::vector<fs::path> used;
    std::vector<int> full_index, adapter_index; // per used model: its index among g.models / adapters
    std::size_t next_full = 0, next_adapter = 0;
    for (std::size_t i = 0; i < models.size(); ++i) {
        if (is_adapter_folder(models[i])) {
            used.push_back(models[i]), full_index.push_back(-1), adapter_index.push_back(int(next_adapter++));
        } else if (next_full < g.models.size() && g.models[next_full] == models[i]) {
            used.push_back(models[i]), full_index.push_back(int(next_full++)), adapter_index.push_back(-1);
        }
    }
    const std::size_t n = used.size();
    SquareMatrix gram(n);
    std::vector<SquareMatrix> layer_gram(g.layers.size(), SquareMatrix(n)); // per layer group (one: "all")
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
            if (full_index[i] >= 0 && full_index[j] >= 0) {
                const auto fi = std::size_t(full_index[i]), fj = std::size_t(full_index[j]);
                gram(i, j) = g.gram(fi, fj);
                for (std::size_t l = 0; l < g.layers.size() && !g.layer_gram.empty(); ++l)
                    layer_gram[l](i, j) = g.layer_gram[l](fi, fj);
            }
    // the adapters' products, apart: under MPI each rank forms those of its share of the adapted
    // weights, and the shares are added over the ranks (the full models' are summed already)
    std::vector<SquareMatrix> adapter_part(g.layers.size(), SquareMatrix(n));
    auto add = [&](std::size_t l, std::size_t i, std::size_t j, double v) { adapter_part[l](i, j) += v; };

    // the adapted weights in the body, each with its adapters (model index, weight)
    std::vector<std::size_t> model_of(adapters.size()); // an adapter's index among the used models
    for (std::size_t i = 0; i < n; ++i)
        if (adapter_index[i] >= 0) model_of[std::size_t(adapter_index[i])] = i;
    WeightsByTarget by_target;
    for (auto& [target, members] : weights_by_target(adapters)) {
        if (!body.count(target)) {
            for (const auto& member : members)
                g.excluded.emplace_back(adapters[member.first]->folder().string() + ": " + target,
                                        "adapted, but not in the body");
            continue;
        }
        for (auto& member : members)
            member.first = model_of[member.first];
        by_target.emplace(target, std::move(members));
    }
    std::vector<std::unique_ptr<CheckpointTensors>> full_tensors;
    for (const auto& m : g.models)
        full_tensors.push_back(std::make_unique<CheckpointTensors>(find_weights(model_folder(m))));
    const std::size_t ranks = std::size_t(std::max(1, options.ranks)), rank = std::size_t(std::max(0, options.rank));
    std::string failure; // this rank's first error: every rank must still join the sum below
    std::size_t weight_index = 0;
    std::uint64_t adapter_bytes = 0;
    for (const auto& [target, members] : by_target) {
        if (weight_index++ % ranks != rank || !failure.empty()) continue; // another rank's weight
        try {
            std::vector<std::vector<float>> a_values, b_values;
            std::vector<LoraFactors> factors;
            const bool transposed = members.front().second->transposed; // one for all (weights_by_target)
            for (const auto& [i, w] : members) {
                const LoraAdapter& a = *adapters[std::size_t(adapter_index[i])];
                a_values.push_back(a.a(*w));
                b_values.push_back(a.b(*w));
                factors.push_back({a_values.back().data(), b_values.back().data(), w->rank, w->out, w->in, w->scale});
            }
            const std::size_t l = group_of(target); // found once per weight, not per pair
            BASIN_CHECK(l < g.layers.size(), "map: the layer group of ", target, " is not in the pass");
            std::size_t known_members = 0; // members are in model order: the known ones first
            while (known_members < members.size() && members[known_members].first < known)
                ++known_members;
            const SquareMatrix block = lora_block_gram(factors, options.threads, known_members);
            for (std::size_t x = 0; x < members.size(); ++x)
                for (std::size_t y = 0; y < members.size(); ++y)
                    add(l, members[x].first, members[y].first, block(x, y));
            // against every full task vector on this weight: T = model - base, read once
            const std::vector<float> base_values = read_f32(*base.find(target));
            for (std::size_t i = 0; i < n; ++i) {
                if (full_index[i] < 0 || (i < known && known_members == members.size())) continue; // nothing new
                const auto* ref = full_tensors[std::size_t(full_index[i])]->find(target);
                BASIN_CHECK(ref && ref->info->shape == base.find(target)->info->shape, used[i].string(), ": tensor ",
                            target, " is missing or has another shape than the base's");
                std::vector<float> t = read_f32(*ref);
                for (std::size_t e = 0; e < t.size(); ++e)
                    t[e] -= base_values[e];
                adapter_bytes += ref->info->nbytes();
                const Matrix dense = dense_as_out_in(factors.front(), t.data(), transposed); // once for all adapters
                for (std::size_t x = 0; x < members.size(); ++x) {
                    if (i < known && x < known_members) continue; // both known
                    const double v = dot_dense(factors[x], dense);
                    add(l, i, members[x].first, v);
                    add(l, members[x].first, i, v);
                }
            }
        } catch (const std::exception& e) {
            failure = e.what();
        }
    }
    if (ranks > 1) { // every group's matrix, the bytes read and a failure flag, added over the ranks
        std::vector<double> shared;
        shared.reserve(adapter_part.size() * n * n + 2);
        for (const auto& m : adapter_part)
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < n; ++j)
                    shared.push_back(m(i, j));
        shared.push_back(double(adapter_bytes));
        shared.push_back(failure.empty() ? 0.0 : 1.0);
        options.sum_across_ranks(shared);
        BASIN_CHECK(failure.empty(), failure);
        BASIN_CHECK(shared.back() == 0, "map: another rank failed (see its message)");
        std::size_t at = 0;
        for (auto& m : adapter_part)
            for (std::size_t i = 0; i < n; ++i)
                for (std::size_t j = 0; j < n; ++j)
                    m(i, j) = shared[at++];
        adapter_bytes = std::uint64_t(shared[at]);
    }
    BASIN_CHECK(failure.empty(), failure);
    for (std::size_t l = 0; l < adapter_part.size(); ++l)
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < n; ++j) {
                gram(i, j) += adapter_part[l](i, j);
                layer_gram[l](i, j) += adapter_part[l](i, j);
            }
    g.bytes_read += adapter_bytes;
    for (const auto& a : adapters) // every rank reads every adapter (they are small): counted once
        g.bytes_read += a->file().file_size();
    std::vector<std::uint64_t> digests(n); // a full model's from the pass, an adapter's from its file
    for (std::size_t i = 0; i < n; ++i)
        digests[i] =
            full_index[i] >= 0
                ? g.digests[std::size_t(full_index[i])]
                : std::stoull(sha256_file_cached(adapters[std::size_t(adapter_index[i])]->file().path()).substr(0, 16),
                              nullptr, 16);
    g.models = used;
    g.gram = gram;
    g.layer_gram = options.per_layer ? std::move(layer_gram) : std::vector<SquareMatrix>{gram};
    g.digests = std::move(digests);
    g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return g;
}

} // namespace basin
