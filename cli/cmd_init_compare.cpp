// basin init-compare: which start is better for fine-tuning (pretrained vs centroid, or any others).
#include "basin/compare/init_compare.h"
#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/core/strings.h"
#include "options.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace basin::cli {

Runner add_init_compare(CLI::App& app) {
    struct Options {
        StartSettings settings;
        std::string target, candidates, zoo, data_root, pretrained, targets = "all", out, mode = "bitfit",
                                                                    seeds = "1,2,3";
        LoraCliOptions lora;
        bool quiet = false;
    };
    auto o = std::make_shared<Options>();
    app.add_option("--target", o->target, "One target: a dataset folder with train and test splits");
    app.add_option("--candidates", o->candidates,
                   "With --target: NAME=DIR,NAME=DIR[,...] (the first is the reference)");
    app.add_option("--zoo", o->zoo,
                   "Leave-one-out: CSV model,dataset[,...] of fine-tuned models (centroids per target)");
    app.add_option("--data-root", o->data_root, "With --zoo: folder holding one dataset folder per target");
    app.add_option("--pretrained", o->pretrained, "With --zoo: the pretrained model");
    app.add_option("--targets", o->targets, "With --zoo: comma-separated targets, or all")->capture_default_str();
    app.add_option("--mode", o->mode, "bitfit, full, head or lora")->capture_default_str();
    o->lora.add(app, o->settings.lora);
    app.add_option("--seeds", o->seeds, "Comma-separated seeds, the same for every candidate")->capture_default_str();
    app.add_option("--train-limit", o->settings.train_limit, "Few-shot: at most this many training examples (0: all)")
        ->capture_default_str();
    app.add_option("--epochs", o->settings.epochs, "Epochs per run")->capture_default_str();
    app.add_option("--lr", o->settings.lr, "Peak learning rate")->capture_default_str();
    app.add_option("--batch-size", o->settings.batch_size, "Examples per step")->capture_default_str();
    app.add_option("--max-length", o->settings.max_length, "Tokens per example")->capture_default_str();
    add_threads_option(app, o->settings.threads);
    app.add_option("--workers", o->settings.workers,
                   "Runs at once, each a child process with --threads threads (the results do not change)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    add_device_option(app, o->settings.device);
    app.add_option("--out", o->out, "Output folder: runs, centroids, table.md, table.csv, summary.json")->required();
    app.add_flag("--quiet", o->quiet, "No progress lines");
    return [o]() {
        StartSettings s = o->settings;
        s.mode = parse_train_mode(o->mode);
        o->lora.apply(s.lora);
        s.seeds.clear();
        for (const auto& part : split_list(o->seeds)) {
            std::size_t used = 0;
            unsigned long long v = 0;
            try {
                v = std::stoull(part, &used);
            } catch (...) {
                used = 0;
            }
            BASIN_CHECK(used == part.size() && used > 0, "--seeds: '", part, "' is not a whole number");
            s.seeds.push_back(v);
        }
        BASIN_CHECK(!s.seeds.empty(), "--seeds: no seeds");
        check_device(s.device);
        set_threads(s.threads);
        if (s.workers > 1) s.program = fs::read_symlink("/proc/self/exe");
        if (!o->quiet) s.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
        std::vector<TargetComparison> rows;
        nlohmann::json inputs;
        if (!o->zoo.empty()) {
            BASIN_CHECK(o->target.empty() && o->candidates.empty(),
                        "give --zoo (leave-one-out) or --target with --candidates, not both");
            BASIN_CHECK(!o->data_root.empty() && !o->pretrained.empty(), "--zoo needs --data-root and --pretrained");
            rows = leave_one_out_centroids(o->zoo, o->data_root, o->pretrained, split_list(o->targets), s, o->out);
            inputs = {{"zoo", o->zoo}, {"data_root", o->data_root}, {"pretrained", o->pretrained}};
        } else {
            BASIN_CHECK(!o->target.empty() && !o->candidates.empty(), "give --target with --candidates, or --zoo");
            std::vector<std::pair<std::string, fs::path>> candidates;
            for (const auto& item : split_list(o->candidates)) {
                const auto eq = item.find('=');
                BASIN_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < item.size(), "--candidates: '", item,
                            "' is not NAME=DIR (e.g. pretrained=models/basin-mini)");
                candidates.emplace_back(item.substr(0, eq), item.substr(eq + 1));
            }
            rows.push_back(compare_starts(o->target, candidates, s, fs::path(o->out) / "runs"));
            inputs = {{"target", o->target}, {"candidates", o->candidates}};
        }
        const std::string table = write_comparison_tables(rows, s, o->out, inputs);
        std::printf("%s\nwrote %s\n", table.c_str(), o->out.c_str());
        return 0;
    };
}

} // namespace basin::cli
