// Subcommand registration for the basin program. Each command file adds its options to the
// CLI11 app and returns the function that runs it; library errors propagate to main().
#pragma once

#include "basin/core/interrupt.h"
#include "basin/merge/regmean.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <string>

namespace basin::cli {

using Runner = std::function<int()>;

// A clean stop (SIGINT/SIGTERM): one line, and the exit status a shell gives a process killed by
// the signal (128 + its number), so scripts see the interruption.
inline int report_interrupted(const Interrupted& e) {
    std::fprintf(stderr, "basin: stopped: %s\n", e.what());
    return 128 + e.signal();
}

Runner add_eval(CLI::App& app);
Runner add_inspect(CLI::App& app);
Runner add_init_model(CLI::App& app);
Runner add_tokenize(CLI::App& app);
Runner add_finetune(CLI::App& app, const std::string& command_line);
Runner add_probe(CLI::App& app);
Runner add_tokenizer(CLI::App& app);
Runner add_pretrain(CLI::App& app, const std::string& command_line);
Runner add_map(CLI::App& app);
Runner add_locate(CLI::App& app);
Runner add_interpolate(CLI::App& app);
Runner add_hull(CLI::App& app);
Runner add_search(CLI::App& app);
Runner add_plane(CLI::App& app);
Runner add_merge(CLI::App& app);
// merge --method regmean runs forward passes, so it needs libtorch: basin-torch sets the runner
// before parsing, and basin hands such a merge to basin-torch (launcher.cpp).
void set_regmean_runner(RegMeanResult (*runner)(const RegMeanOptions&));
bool is_regmean_merge(int argc, char** argv);
Runner add_init_compare(CLI::App& app);
Runner add_run(CLI::App& app);
Runner add_status(CLI::App& app);
Runner add_report(CLI::App& app);

// "cpu", "cuda", "cuda:1": a clear error when the device is not available in this build.
std::string check_device(const std::string& name);
void set_threads(int threads);

} // namespace basin::cli
