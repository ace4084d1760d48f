#include "basin/space/sketch.h"

#include "basin/core/error.h"
#include "basin/core/hash.h"
#include "basin/core/interrupt.h"
#include "basin/io/adapter.h"

#include <cblas.h>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>

namespace basin {

void sketch_add(double* sketch, std::size_t k, std::uint64_t seed, std::uint64_t offset, const float* tau,
                std::size_t n) {
    const std::uint64_t mask = k - 1, key = splitmix64(seed);
    for (std::size_t p = 0; p < n; ++p) {
        const std::uint64_t h = splitmix64(key ^ (offset + p));
        sketch[h & mask] += (h >> 63) ? -double(tau[p]) : double(tau[p]);
    }
}

SketchBody sketch_body(const CheckpointTensors& base, const GramOptions& options) {
    SketchBody b;
    std::vector<std::pair<std::string, std::string>> excluded;
    b.tensors = body_candidates(base, options, excluded);
    BASIN_CHECK(!b.tensors.empty(), "map --sketch: no tensor of ", base.source().string(),
                " is left to sketch (all excluded: check --include/--exclude)");
    std::string text;
    for (const auto& name : b.tensors) {
        const auto& info = *base.find(name)->info;
        b.parameters += info.numel();
        text += name + " " + shape_string(info.shape) + "\n";
    }
    b.digest = sha256_hex(text.data(), text.size());
    return b;
}

ModelSketch sketch_model(const CheckpointTensors& base, const SketchBody& body, const fs::path& model, std::size_t k,
                         std::uint64_t seed) {
    BASIN_CHECK(k >= 2 && (k & (k - 1)) == 0, "map --sketch: K must be a power of two (e.g. 65536), got ", k);
    std::vector<double> sketch(k, 0.0);
    std::vector<float> a, b;
    double norm2 = 0;
    std::uint64_t offset = 0;
    auto add = [&](const std::string& name, const std::vector<float>& tau) {
        for (float v : tau) {
            BASIN_CHECK(std::isfinite(v), model.string(), ": tensor ", name, " holds a NaN or infinite value");
            norm2 += double(v) * double(v);
        }
        sketch_add(sketch.data(), k, seed, offset, tau.data(), tau.size());
    };
    // an adapter: tau is s B A on its adapted weights (one formed at a time), 0 elsewhere
    std::optional<LoraAdapter> adapter;
    std::optional<CheckpointTensors> full;
    if (is_adapter_folder(model))
        adapter.emplace(model, base);
    else
        full.emplace(find_weights(model_folder(model)));
    for (const auto& name : body.tensors) {
        check_interrupted("sketching");
        const auto& base_ref = *base.find(name);
        const std::size_t n = std::size_t(base_ref.info->numel());
        if (adapter) {
            for (const auto& w : adapter->weights())
                if (w.target == name) add(name, adapter->delta(w));
        } else {
            const auto* ref = full->find(name);
            BASIN_CHECK(ref && ref->info->shape == base_ref.info->shape && is_floating(ref->info->dtype),
                        model.string(), ": tensor ", name,
                        ref ? " has shape " + shape_string(ref->info->shape) + ", the base " +
                                  shape_string(base_ref.info->shape)
                            : std::string(" is missing (the base has it)"));
            a.resize(n), b.resize(n);
            convert_to_f32(ref->info->dtype, ref->data(), a.data(), n);
            convert_to_f32(base_ref.info->dtype, base_ref.data(), b.data(), n);
            for (std::size_t p = 0; p < n; ++p)
                a[p] -= b[p];
            add(name, a);
        }
        offset += n;
    }
    ModelSketch s;
    s.model = model.string();
    s.values.assign(sketch.begin(), sketch.end());
    s.norm2 = norm2, s.seed = seed, s.body_digest = body.digest;
    return s;
}

void write_sketch(const fs::path& file, const ModelSketch& s) {
    char norm[64];
    std::snprintf(norm, sizeof norm, "%.17g", s.norm2);
    write_safetensors(file, {{"sketch", Dtype::F32, {std::int64_t(s.values.size())}, s.values.data(), {}}},
                      {{"format", "basin sketch"},
                       {"model", s.model},
                       {"norm2", norm},
                       {"seed", std::to_string(s.seed)},
                       {"k", std::to_string(s.values.size())},
                       {"body_digest", s.body_digest}});
}

ModelSketch read_sketch(const fs::path& file, std::size_t k, std::uint64_t seed, const std::string& body_digest) {
    const SafetensorsFile f(file);
    const auto& meta = f.metadata();
    auto field = [&](const char* key) {
        const auto it = meta.find(key);
        BASIN_CHECK(it != meta.end(), file.string(), ": no '", key, "' in its metadata (not a basin sketch)");
        return it->second;
    };
    BASIN_CHECK(field("format") == "basin sketch", file.string(), ": not a basin sketch (format '", field("format"),
                "')");
    BASIN_CHECK(field("seed") == std::to_string(seed), file.string(), ": made with seed ", field("seed"),
                "; this map sketches with seed ", seed, " (sketches of different seeds do not compare)");
    BASIN_CHECK(field("k") == std::to_string(k), file.string(), ": made with K = ", field("k"),
                "; this map sketches with K = ", k);
    BASIN_CHECK(field("body_digest") == body_digest, file.string(),
                ": made over another body (another base, or other --include/--exclude)");
    const TensorInfo& info = f.at("sketch");
    BASIN_CHECK(info.dtype == Dtype::F32 && info.shape == Shape{std::int64_t(k)}, file.string(),
                ": tensor 'sketch' is ", dtype_name(info.dtype), " ", shape_string(info.shape), "; expected F32 [", k,
                "]");
    ModelSketch s;
    s.model = field("model");
    s.values.resize(k);
    std::memcpy(s.values.data(), f.data(info), k * sizeof(float));
    s.norm2 = std::stod(field("norm2"));
    s.seed = seed, s.body_digest = body_digest;
    return s;
}

SquareMatrix sketched_gram(const std::vector<ModelSketch>& sketches, int threads) {
    const std::size_t n = sketches.size(), k = n ? sketches[0].values.size() : 0;
    // in double: float sums over K buckets would lose digits; dsyrk on the converted rows
    std::vector<double> xd(n * k), gd(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
        std::copy(sketches[i].values.begin(), sketches[i].values.end(), xd.begin() + std::ptrdiff_t(i * k));
    openblas_set_num_threads(std::max(1, threads));
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, int(n), int(k), 1.0, xd.data(), int(k), 0.0, gd.data(),
                int(n));
    SquareMatrix out(n);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = i + 1; j < n; ++j)
            out(i, j) = out(j, i) = gd[i * n + j];
        out(i, i) = sketches[i].norm2; // exact
    }
    return out;
}

double sketch_cosine_bound(double estimate, std::size_t k, double delta) {
    const double sd = std::sqrt(2.0 / double(k));
    const double c = std::min(1.0, std::abs(estimate) + sd);
    return std::sqrt((1 + c * c) / (delta * double(k)));
}

} // namespace basin
