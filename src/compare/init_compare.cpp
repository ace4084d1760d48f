#include "basin/compare/init_compare.h"

#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/interrupt.h"
#include "basin/core/process.h"
#include "basin/core/strings.h"
#include "basin/data/dataset.h"
#include "basin/merge/merge.h"
#include "basin/space/map.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <set>

namespace basin {

namespace {

using nlohmann::json;

// The final test accuracy of a finished run folder (basin_run.json), if it is complete.
std::optional<double> finished_accuracy(const fs::path& run) {
    const fs::path record = run / "basin_run.json";
    if (!fs::exists(record)) return std::nullopt;
    const json j = json::parse(read_text_file(record), nullptr, false);
    if (j.is_discarded() || !j.contains("epochs") || j["epochs"].empty()) return std::nullopt;
    const auto& last = j["epochs"].back();
    if (!last.contains("eval_accuracy")) return std::nullopt;
    return last["eval_accuracy"].get<double>();
}

// One run: candidate start `start` fine-tuned on target's train split with `seed`, scored on its
// test split, into `run`.
FinetuneOptions run_options(const fs::path& target, const fs::path& start, std::uint64_t seed, const StartSettings& s,
                            const fs::path& run) {
    FinetuneOptions f;
    f.model = start;
    f.train = find_split(target, "train");
    f.eval = find_split(target, "test");
    f.out = run;
    f.mode = s.mode;
    f.lora = s.lora;
    f.seed = seed;
    f.epochs = s.epochs;
    f.lr = s.lr;
    f.batch_size = s.batch_size;
    f.max_length = s.max_length;
    f.train_limit = s.train_limit;
    f.threads = s.threads;
    f.device = s.device;
    f.overwrite = true; // an unfinished folder of an earlier attempt
    return f;
}

// The `basin finetune` command line of a run: every option run_options sets; the others keep
// their defaults, which are FinetuneOptions' own, so the child makes the run finetune(f) would.
std::vector<std::string> finetune_command(const FinetuneOptions& f) {
    std::vector<std::string> args = {"finetune",
                                     "--model",
                                     f.model.string(),
                                     "--train",
                                     f.train.string(),
                                     "--eval",
                                     f.eval.string(),
                                     "--out",
                                     f.out.string(),
                                     "--mode",
                                     train_mode_name(f.mode),
                                     "--seed",
                                     std::to_string(f.seed),
                                     "--epochs",
                                     std::to_string(f.epochs),
                                     "--lr",
                                     format_exact(f.lr),
                                     "--batch-size",
                                     std::to_string(f.batch_size),
                                     "--max-length",
                                     std::to_string(f.max_length),
                                     "--train-limit",
                                     std::to_string(f.train_limit),
                                     "--threads",
                                     std::to_string(f.threads),
                                     "--device",
                                     f.device,
                                     "--overwrite"};
    if (f.mode == TrainMode::Lora)
        args.insert(args.end(), {"--lora-rank", std::to_string(f.lora.rank), "--lora-alpha", format_exact(f.lora.alpha),
                                 "--lora-targets", join(f.lora.targets, ",")});
    return args;
}

// The unfinished runs, s.workers at a time, each a `basin finetune` child process of s.program
// with its log beside its folder (<run>.log). A failed run stops the others and throws with its
// log's last line; a SIGINT or SIGTERM is passed on to every child (each saves what it can) and
// then thrown as Interrupted. The runs' results are read back from their folders afterwards.
void run_in_workers(const std::vector<FinetuneOptions>& all, const StartSettings& s) {
    std::vector<FinetuneOptions> pending;
    for (const auto& f : all)
        if (!finished_accuracy(f.out)) pending.push_back(f);
    ChildSet running; // tagged by index into pending
    std::size_t next = 0;
    while (next < pending.size() || !running.empty()) {
        while (next < pending.size() && running.size() < std::size_t(s.workers)) {
            const FinetuneOptions& f = pending[next];
            if (s.log)
                s.log("fine-tuning " + f.out.string() + " in a worker (" + std::to_string(next + 1) + " of " +
                      std::to_string(pending.size()) + " unfinished)");
            fs::create_directories(f.out.parent_path());
            running.start(next++, s.program, finetune_command(f), f.out.string() + ".log");
        }
        const auto ended = running.wait_any();
        if (!ended) { // a SIGINT or SIGTERM: every child saves what it can
            running.stop(interrupt_signal());
            check_interrupted("fine-tuning in workers");
        }
        const FinetuneOptions& f = pending[ended->tag];
        if (ended->code != 0 || !finished_accuracy(f.out)) {
            running.stop(SIGTERM);
            check_interrupted("fine-tuning in workers");
            throw Error(f.out.string() + ": fine-tuning failed (exit code " + std::to_string(ended->code) +
                        "): " + last_line(ended->log));
        }
    }
}

} // namespace

TargetComparison compare_starts(const fs::path& target, const std::vector<std::pair<std::string, fs::path>>& candidates,
                                const StartSettings& s, const fs::path& runs) {
    BASIN_CHECK(candidates.size() >= 2, "init-compare: needs at least two candidate starts, got ", candidates.size());
    BASIN_CHECK(!s.seeds.empty(), "init-compare: no seeds");
    std::set<std::string> names;
    for (const auto& [name, dir] : candidates) {
        BASIN_CHECK(names.insert(name).second, "init-compare: candidate name '", name, "' is given twice");
        BASIN_CHECK(fs::is_directory(dir), "init-compare: candidate ", name, ": ", dir.string(),
                    ": model folder not found");
    }
    TargetComparison result;
    result.target = fs::path(target).lexically_normal().filename().string();
    if (result.target.empty()) result.target = fs::path(target).lexically_normal().parent_path().filename().string();
    result.test_examples = read_dataset(find_split(target, "test")).examples.size();
    // every run, candidate by candidate and seed by seed
    std::vector<FinetuneOptions> planned;
    for (const auto& [name, dir] : candidates)
        for (std::uint64_t seed : s.seeds)
            planned.push_back(
                run_options(target, dir, seed, s, runs / result.target / (name + "-s" + std::to_string(seed))));
    if (s.workers > 1) run_in_workers(planned, s);
    auto next = planned.begin();
    for (const auto& [name, dir] : candidates) {
        CandidateResult c;
        c.name = name;
        c.start = dir;
        for (std::uint64_t seed : s.seeds) {
            const FinetuneOptions& f = *next++;
            std::optional<double> accuracy = finished_accuracy(f.out);
            if (accuracy) {
                if (s.log)
                    s.log(result.target + ": " + name + " seed " + std::to_string(seed) + ": reusing " +
                          f.out.string());
            } else {
                if (s.log) s.log(result.target + ": fine-tuning from " + name + " with seed " + std::to_string(seed));
                const FinetuneResult r = finetune(f);
                BASIN_CHECK(!r.epochs.empty() && r.epochs.back().eval_accuracy, f.out.string(),
                            ": the run recorded no test accuracy");
                accuracy = *r.epochs.back().eval_accuracy;
            }
            c.accuracy.push_back(*accuracy);
        }
        c.mean = mean(c.accuracy);
        c.std = sample_std(c.accuracy);
        result.candidates.push_back(c);
    }
    result.test = paired_t_test(result.candidates[0].accuracy, result.candidates[1].accuracy);
    // a tie: equal mean accuracy (to rounding)
    result.outcome = std::abs(result.test.mean_difference) < 1e-9 ? "tie"
                     : result.test.mean_difference > 0            ? "win"
                                                                  : "loss";
    return result;
}

std::vector<TargetComparison> leave_one_out_centroids(const fs::path& zoo, const fs::path& data_root,
                                                      const fs::path& pretrained, std::vector<std::string> targets,
                                                      const StartSettings& s, const fs::path& out) {
    // the zoo: model folders with a dataset label each
    const std::vector<fs::path> models = read_group_models(zoo);
    BASIN_CHECK(!models.empty(), zoo.string(), ": no models (expected a header model,dataset and one row per model)");
    const ModelGroups groups = read_model_groups(zoo, models);
    const auto kind = std::find(groups.kinds.begin(), groups.kinds.end(), "dataset");
    BASIN_CHECK(kind != groups.kinds.end(), zoo.string(), ": needs a 'dataset' column (model,dataset[,...])");
    const auto& dataset_of = groups.labels[std::size_t(kind - groups.kinds.begin())];
    if (targets.empty() || (targets.size() == 1 && targets[0] == "all")) {
        targets.clear();
        for (const auto& d : dataset_of)
            if (std::find(targets.begin(), targets.end(), d) == targets.end()) targets.push_back(d);
    }
    std::vector<TargetComparison> rows;
    for (const auto& target : targets) {
        BASIN_CHECK(fs::is_directory(data_root / target), (data_root / target).string(),
                    ": dataset folder not found for target '", target, "'");
        std::vector<fs::path> others;
        for (std::size_t i = 0; i < models.size(); ++i)
            if (dataset_of[i] != target) others.push_back(models[i]);
        BASIN_CHECK(!others.empty(), "init-compare: every zoo model is trained on ", target,
                    "; the leave-one-out centroid would be empty");
        const fs::path centroid = out / "centroids" / target;
        if (!fs::exists(centroid / "basin_merge.json")) {
            if (s.log)
                s.log(target + ": centroid of " + std::to_string(others.size()) + " models trained on other datasets");
            MergeOptions m;
            m.method = MergeMethod::Mean;
            m.models = others;
            m.base = pretrained; // its config and tokenizer; the mean does not use its weights
            m.out = centroid;
            m.overwrite = true;
            m.extra_provenance = {{"leave_one_out", target}, {"zoo", zoo.string()}};
            merge_checkpoints(m);
        }
        rows.push_back(
            compare_starts(data_root / target, {{"pretrained", pretrained}, {"centroid", centroid}}, s, out / "runs"));
    }
    return rows;
}

std::string write_comparison_tables(const std::vector<TargetComparison>& rows, const StartSettings& s,
                                    const fs::path& out, const json& inputs) {
    BASIN_CHECK(!rows.empty(), "init-compare: no results to tabulate");
    const std::string a = rows[0].candidates[0].name, b = rows[0].candidates[1].name;
    std::string md = "| target | " + a + " | " + b + " | difference | p (paired t) | " + b + " vs " + a + " |\n";
    md += "|---|---|---|---|---|---|\n";
    std::string csv = "target,candidate,seed,accuracy\n";
    json table = json::array();
    std::vector<double> gains;
    int wins = 0, ties = 0, losses = 0;
    for (const auto& r : rows) {
        const auto &x = r.candidates[0], &y = r.candidates[1];
        md += "| " + r.target + " | " + format_percent(x.mean) + " +- " + format_percent(x.std) + " | " +
              format_percent(y.mean) + " +- " + format_percent(y.std) + " | " +
              (r.test.mean_difference >= 0 ? "+" : "") + format_percent(r.test.mean_difference) + " | " +
              (r.test.degrees_of_freedom > 0 ? std::to_string(r.test.p_value).substr(0, 5) : "-") + " | " + r.outcome +
              " |\n";
        gains.push_back(r.test.mean_difference);
        (r.outcome == "win" ? wins : r.outcome == "tie" ? ties : losses) += 1;
        json candidates = json::array();
        for (const auto& c : r.candidates) {
            candidates.push_back({{"name", c.name},
                                  {"start", c.start.string()},
                                  {"accuracy", c.accuracy},
                                  {"mean", c.mean},
                                  {"std", c.std}});
            for (std::size_t i = 0; i < c.accuracy.size(); ++i)
                csv += r.target + "," + c.name + "," + std::to_string(s.seeds[i]) + "," +
                       std::to_string(c.accuracy[i]) + "\n";
        }
        table.push_back({{"target", r.target},
                         {"test_examples", r.test_examples},
                         {"candidates", candidates},
                         {"mean_difference", r.test.mean_difference},
                         {"t", std::isfinite(r.test.t) ? json(r.test.t) : json(r.test.t > 0 ? "inf" : "-inf")},
                         {"degrees_of_freedom", r.test.degrees_of_freedom},
                         {"p_value", r.test.p_value},
                         {"outcome", r.outcome}});
    }
    md += "| **mean** | | | **" + std::string(mean(gains) >= 0 ? "+" : "") + format_percent(mean(gains)) + "** | | " +
          std::to_string(wins) + " win / " + std::to_string(ties) + " tie / " + std::to_string(losses) + " loss |\n";
    std::string seeds;
    for (auto v : s.seeds)
        seeds += (seeds.empty() ? "" : ",") + std::to_string(v);
    const std::string settings =
        std::string(train_mode_name(s.mode)) + " fine-tuning, " + std::to_string(s.epochs) + " epochs, lr " +
        format_g(s.lr) + ", batch " + std::to_string(s.batch_size) + ", max length " + std::to_string(s.max_length) +
        ", seeds " + seeds + (s.train_limit ? ", at most " + std::to_string(s.train_limit) + " training examples" : "");
    md = "Test accuracy (%), mean +- standard deviation over seeds; difference = " + b + " - " + a +
         "; tie: equal means.\nSettings: " + settings + ".\n\n" + md;
    json summary = {{"settings", settings}, {"inputs", inputs}, {"rows", table},   {"mean_difference", mean(gains)},
                    {"wins", wins},         {"ties", ties},     {"losses", losses}};
    fs::create_directories(out);
    write_text_atomically(out / "table.md", md);
    write_text_atomically(out / "table.csv", csv);
    write_text_atomically(out / "summary.json", summary.dump(2) + "\n");
    return md;
}

} // namespace basin
