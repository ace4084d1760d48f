#include "basin/region/search.h"

#include "basin/core/error.h"
#include "basin/core/strings.h"
#include "basin/merge/merge.h"
#include "basin/region/simplex_search.h"
#include "basin/space/adapter_gram.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <set>

namespace basin {

namespace fs = std::filesystem;

void make_selection_target(const TargetDataset& t, double held_out, std::uint64_t seed, const WeightSpace& space,
                           const FeatureOptions& features, TargetDataset& s) {
    BASIN_CHECK(held_out > 0 && held_out < 1, "search: the held-out share must be in (0, 1), got ", held_out);
    const std::size_t n = t.train.examples.size();
    BASIN_CHECK(n >= 4, t.train.path.string(), ": ", n,
                " training examples are too few to cut into a fit part and a held-out part (at least 4)");
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i)
        order[i] = i;
    std::mt19937_64 rng(seed);
    std::shuffle(order.begin(), order.end(), rng);
    const std::size_t held = std::clamp<std::size_t>(std::size_t(std::lround(held_out * double(n))), 1, n - 2);
    std::vector<std::size_t> fit(order.begin() + std::ptrdiff_t(held), order.end()),
        test(order.begin(), order.begin() + std::ptrdiff_t(held));
    std::sort(fit.begin(), fit.end());
    std::sort(test.begin(), test.end());
    s.name = t.name;
    s.train.path = s.test.path = t.train.path;
    s.train.has_pair = s.test.has_pair = t.train.has_pair;
    s.train.examples.clear(), s.test.examples.clear();
    std::set<std::string> known;
    for (auto i : fit) {
        s.train.examples.push_back(t.train.examples[i]);
        known.insert(t.train.examples[i].label);
    }
    for (auto i : test)
        if (known.count(t.train.examples[i].label)) s.test.examples.push_back(t.train.examples[i]);
    BASIN_CHECK(!s.test.examples.empty(), t.train.path.string(),
                ": no held-out example has a label of the fit part; give more training data");
    s.labels = probe_labels(s.train, s.test);
    s.train_labels = torch::tensor(map_labels(s.train, s.labels), torch::kLong);
    s.test_labels = torch::tensor(map_labels(s.test, s.labels), torch::kLong);
    const std::string cut =
        t.sample_tag + "|selection held-out " + format_exact(held_out) + " seed " + std::to_string(seed);
    s.sample_tag = cut;
    s.train_prepared = prepare_features(s.train, space.tokenizer(), space.config(), features);
    s.train_prepared.data_sha256 += cut + " fit";
    s.test_prepared = prepare_features(s.test, space.tokenizer(), space.config(), features);
    s.test_prepared.data_sha256 += cut + " held-out";
}

std::vector<std::size_t> greedy_soup(std::size_t m, const std::vector<PointScore>& member_scores,
                                     const std::function<PointScore(const std::vector<double>&)>& score) {
    BASIN_CHECK(member_scores.size() == m, "greedy soup: ", member_scores.size(), " scores for ", m, " members");
    std::vector<std::size_t> order(m);
    for (std::size_t i = 0; i < m; ++i)
        order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        const auto &x = member_scores[a], &y = member_scores[b];
        return x.accuracy != y.accuracy ? x.accuracy > y.accuracy : x.loss < y.loss;
    });
    std::vector<std::size_t> soup = {order[0]};
    double accuracy = member_scores[order[0]].accuracy;
    for (std::size_t k = 1; k < m; ++k) {
        std::vector<double> weights(m, 0.0);
        for (auto i : soup)
            weights[i] = 1.0 / double(soup.size() + 1);
        weights[order[k]] = 1.0 / double(soup.size() + 1);
        const PointScore s = score(weights);
        if (s.accuracy >= accuracy) soup.push_back(order[k]), accuracy = s.accuracy;
    }
    return soup;
}

namespace {

std::vector<double> uniform_over(std::size_t m, const std::vector<std::size_t>& kept) {
    std::vector<double> w(m, 0.0);
    for (auto i : kept)
        w[i] = 1.0 / double(kept.size());
    return w;
}

// The TIES and DARE merges of the members (written once, scored on every target).
std::vector<std::pair<std::string, std::string>> write_baseline_merges(const SearchStudy& study,
                                                                       std::vector<fs::path>& sources) {
    std::vector<std::pair<std::string, std::string>> merges; // name, detail
    // without a base there are no task vectors; TIES and DARE are not linear, so adapters cannot take them
    if (!study.base || has_adapters(study.members)) return merges;
    MergeOptions ties;
    ties.method = MergeMethod::Ties;
    ties.models = study.members, ties.base = *study.base, ties.out = study.out / "ties";
    ties.density = study.ties_density, ties.lambda = 1;
    merge_checkpoints(ties);
    sources.push_back(ties.out);
    merges.push_back({"ties", "TIES: density " + format_g(study.ties_density) + ", lambda 1 (merge --method ties)"});
    MergeOptions dare; // DARE's drop and rescale, the rescaled task vectors averaged (mergekit's dare_linear)
    dare.method = MergeMethod::Gta;
    dare.models = study.members, dare.base = *study.base, dare.out = study.out / "dare";
    dare.sparsify = "random", dare.density = study.dare_density, dare.rescale = true, dare.normalize = true;
    dare.seed = study.seed;
    merge_checkpoints(dare);
    sources.push_back(dare.out);
    merges.push_back({"dare", "DARE: keep " + format_g(study.dare_density) +
                                  " of each task vector at random, rescaled, averaged (dare_linear), seed " +
                                  std::to_string(study.seed)});
    return merges;
}

// Scores points (combinations over the sources) on one target.
class PointScorer {
  public:
    PointScorer(const WeightSpace& space, const ScoreOptions& options, ScoreTimes& times)
        : space_(space), options_(options), times_(times) {
        options_.progress = false;
    }
    std::vector<PointScore> score(std::vector<TargetDataset>& target, const std::vector<std::vector<double>>& points) {
        std::vector<NamedPoint> named;
        for (std::size_t p = 0; p < points.size(); ++p)
            named.push_back({"point " + std::to_string(p + 1), {points[p], {}}});
        ScoreTimes t;
        const ScoreGrid grid = score_points(space_, target, named, options_, &t);
        times_.build_seconds += t.build_seconds, times_.extract_seconds += t.extract_seconds;
        times_.fit_seconds += t.fit_seconds, times_.points_built += t.points_built;
        times_.points_cached += t.points_cached;
        std::vector<PointScore> out;
        for (const auto& row : grid)
            out.push_back(row[0]);
        return out;
    }

  private:
    const WeightSpace& space_;
    ScoreOptions options_;
    ScoreTimes& times_;
};

std::vector<double> over_sources(const std::vector<double>& member_weights, std::size_t sources) {
    std::vector<double> w = member_weights;
    w.resize(sources, 0.0);
    return w;
}

std::vector<double> one_hot(std::size_t size, std::size_t i) {
    std::vector<double> w(size, 0.0);
    w[i] = 1;
    return w;
}

// The selection loss of points over the members on the fit / held-out cut, each point scored once.
class SelectionScores {
  public:
    SelectionScores(PointScorer& scorer, TargetDataset& selection, std::size_t sources)
        : scorer_(scorer), sources_(sources) {
        target_.push_back(std::move(selection));
        // the prepared data points into the dataset it was made from, which moved with it
        target_[0].train_prepared.data = &target_[0].train;
        target_[0].test_prepared.data = &target_[0].test;
    }
    // points over the members; the ones not seen yet are scored together (in parallel)
    std::vector<PointScore> operator()(const std::vector<std::vector<double>>& points) {
        std::vector<std::vector<double>> missing, full;
        for (const auto& w : points)
            if (!seen_.count(w) && std::find(missing.begin(), missing.end(), w) == missing.end()) {
                missing.push_back(w);
                full.push_back(over_sources(w, sources_));
            }
        const auto scores = scorer_.score(target_, full);
        for (std::size_t k = 0; k < missing.size(); ++k)
            seen_[missing[k]] = scores[k];
        std::vector<PointScore> out;
        for (const auto& w : points)
            out.push_back(seen_.at(w));
        return out;
    }
    PointScore operator()(const std::vector<double>& point) {
        return (*this)(std::vector<std::vector<double>>{point})[0];
    }
    // a point over every source (a merge), not remembered
    PointScore source(const std::vector<double>& point) { return scorer_.score(target_, {point})[0]; }

  private:
    PointScorer& scorer_;
    std::size_t sources_;
    std::vector<TargetDataset> target_;
    std::map<std::vector<double>, PointScore> seen_;
};

// COBYLA from the best of the members and the centroid on the selection loss.
SimplexSearchResult search_weights(const SearchStudy& study, const std::string& target, SelectionScores& select,
                                   const std::vector<PointScore>& start_scores, bool progress) {
    const std::size_t m = study.members.size();
    std::size_t best_start = 0; // 0 .. m-1: a member, m: the centroid
    for (std::size_t k = 1; k <= m; ++k)
        if (start_scores[k].loss < start_scores[best_start].loss) best_start = k;
    SimplexSearchOptions options;
    options.evaluations = study.budget;
    options.start = best_start < m ? one_hot(m, best_start) : std::vector<double>(m, 1.0 / double(m));
    std::size_t trial = 0;
    return search_simplex(
        m,
        [&](const std::vector<double>& w) {
            const double loss = select(w).loss;
            if (progress)
                std::fprintf(stderr, "search %s: trial %zu/%zu  selection loss %.5f\n", target.c_str(), ++trial,
                             study.budget, loss);
            return loss;
        },
        options);
}

// One row to compare on the test split: a combination of the members, or one of the merges.
struct PlannedRow {
    std::string name;
    std::vector<double> weights; // over the members (empty: the merge below)
    std::size_t merge = 0;       // the merge's index among the sources, where weights is empty
    std::string detail;
};

SearchTargetRecord search_target(const SearchStudy& study, const WeightSpace& space, TargetDataset& target,
                                 const std::vector<std::pair<std::string, std::string>>& merges,
                                 const ScoreOptions& options, ScoreTimes& times) {
    const std::size_t m = study.members.size(), sources = space.size();
    PointScorer scorer(space, options, times);
    SearchTargetRecord r;
    r.target = target_info(target);
    TargetDataset cut;
    make_selection_target(target, study.held_out, study.seed, space, options.features, cut);
    r.fit_examples = cut.train.examples.size();
    r.held_out_examples = cut.test.examples.size();
    SelectionScores select(scorer, cut, sources);

    std::vector<std::vector<double>> starts;
    for (std::size_t i = 0; i < m; ++i)
        starts.push_back(one_hot(m, i));
    const std::vector<double> centroid(m, 1.0 / double(m));
    starts.push_back(centroid);
    const auto start_scores = select(starts); // the members and the centroid
    const SimplexSearchResult found = search_weights(study, target.name, select, start_scores, options.progress);
    for (const auto& t : found.trials) {
        r.trial_weights.push_back(t.weights);
        r.trial_losses.push_back(t.value);
    }
    r.stopped = found.stopped;
    const std::vector<PointScore> member_selection(start_scores.begin(), start_scores.begin() + std::ptrdiff_t(m));
    const auto soup = greedy_soup(m, member_selection, [&](const std::vector<double>& w) { return select(w); });

    std::vector<PlannedRow> planned = {{"searched", found.best, 0,
                                        str("the lowest selection loss of ", found.trials.size(),
                                            " trials (COBYLA on the simplex, ", found.stopped, ")")},
                                       {"centroid", centroid, 0, "the members' mean"}};
    for (std::size_t k = 0; k < merges.size(); ++k)
        planned.push_back({merges[k].first, {}, m + k, merges[k].second});
    std::string soup_text;
    for (auto i : soup)
        soup_text += (soup_text.empty() ? "" : " ") + study.members[i].filename().string();
    planned.push_back({"greedy-soup", uniform_over(m, soup), 0, str(soup.size(), " of ", m, " members: ", soup_text)});

    // every row and every member on the test split (the best member is the best there: an oracle)
    std::vector<std::vector<double>> test_points;
    for (const auto& p : planned)
        test_points.push_back(p.weights.empty() ? one_hot(sources, p.merge) : over_sources(p.weights, sources));
    for (std::size_t i = 0; i < m; ++i)
        test_points.push_back(one_hot(sources, i));
    std::vector<TargetDataset> test_target = {target};
    const auto test = scorer.score(test_target, test_points);
    for (std::size_t k = 0; k < planned.size(); ++k) {
        const auto& p = planned[k];
        r.rows.push_back({p.name, p.weights,
                          p.weights.empty() ? select.source(one_hot(sources, p.merge)) : select(p.weights), test[k],
                          p.detail});
    }
    std::size_t best = 0;
    for (std::size_t i = 1; i < m; ++i)
        if (test[planned.size() + i].loss < test[planned.size() + best].loss) best = i;
    r.rows.push_back({"best-member", one_hot(m, best), member_selection[best], test[planned.size() + best],
                      study.members[best].string() + " (the lowest test loss of the members: an oracle)"});
    return r;
}

} // namespace

SearchRecord run_search(const SearchStudy& study, std::vector<TargetDataset>& targets, const ScoreOptions& options) {
    BASIN_CHECK(!study.members.empty(), "search: the group has no members");
    BASIN_CHECK(study.budget >= 1, "search: the budget must allow at least one evaluation");
    BASIN_CHECK(!targets.empty(), "search: no target dataset");
    SearchRecord r;
    for (const auto& mem : study.members)
        r.members.push_back(mem.string());
    if (study.base) r.base = study.base->string();
    r.held_out = study.held_out, r.seed = study.seed, r.budget = study.budget;
    std::vector<fs::path> sources = study.members;
    const auto merges = write_baseline_merges(study, sources);
    const WeightSpace space(sources, study.base ? *study.base : fs::path()); // the base of any adapters
    const auto start = std::chrono::steady_clock::now();
    for (auto& target : targets) {
        r.targets.push_back(search_target(study, space, target, merges, options, r.times));
        // the searched point as a checkpoint, with the search in its provenance
        const auto& t = r.targets.back();
        MergeOptions point;
        point.method = MergeMethod::Weighted;
        point.models = study.members, point.weights = t.rows[0].weights;
        if (has_adapters(study.members)) point.base = *study.base; // the adapters' deltas apply to it
        point.out = study.out / file_safe_name(target.name) / "searched";
        point.extra_provenance = {{"search",
                                   {{"target", target.name},
                                    {"objective", "generalized loss on the held-out part of the training split"},
                                    {"held_out", study.held_out},
                                    {"seed", study.seed},
                                    {"trials", t.trial_losses.size()},
                                    {"selection_loss", t.rows[0].selection.loss},
                                    {"test_loss", t.rows[0].test.loss}}}};
        merge_checkpoints(point);
    }
    r.times.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (std::size_t k = 1; k < r.targets.front().rows.size(); ++k) {
        SearchWins w;
        w.against = r.targets.front().rows[k].name;
        for (const auto& t : r.targets) {
            const double a = t.rows[0].test.loss, b = t.rows[k].test.loss;
            (a < b ? w.wins : a == b ? w.ties : w.losses) += 1;
        }
        r.wins.push_back(w);
    }
    return r;
}

} // namespace basin
