// basin: the program's entry point. The commands that need no libtorch (map, merge, run, status) run in this
// small binary and start in milliseconds; every other command, and the help, runs in basin-torch
// (installed next to it), which spends about 0.4 s loading and initialising libtorch.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <unistd.h>

#include "basin/core/error.h"
#include "basin/core/interrupt.h"
#include "commands.h"

int main(int argc, char** argv) {
    const std::string command = argc > 1 ? argv[1] : "";
    static const std::map<std::string, std::pair<const char*, basin::cli::Runner (*)(CLI::App&)>> light = {
        {"map", {"Weight-space map: similarity, clusters and projections of many checkpoints", basin::cli::add_map}},
        {"merge", {"Merge checkpoints: mean (centroid), weighted, task-arithmetic, ties, dare, slerp, model-stock",
                   basin::cli::add_merge}},
        {"run", {"Run an experiment spec (TOML): jobs with dependencies, a resumable results store, MPI", basin::cli::add_run}},
        {"status", {"What an experiment has done, is doing and has left", basin::cli::add_status}},
        {"report", {"One self-contained HTML report (and SVG/PDF figures) from an experiment's store", basin::cli::add_report}},
    };
    if (const auto it = light.find(command); it != light.end()) {
        // libgomp reads its wait policy when it loads: without PASSIVE its idle threads spin and
        // take the cores from the reader and the writer. OpenBLAS's own thread pool (made when it
        // loads) spins in sched_yield the same way: map at N = 16 took 1.11 s with it, 0.64 s
        // without. map and merge run their threads themselves and call BLAS only single-threaded,
        // so the pool is not made at all. Restarting this small program is cheap.
        if ((command == "map" || command == "merge") &&
            (!std::getenv("OMP_WAIT_POLICY") || !std::getenv("OPENBLAS_NUM_THREADS"))) {
            ::setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
            ::setenv("OPENBLAS_NUM_THREADS", "1", 0);
            ::execv("/proc/self/exe", argv); // returns only on failure: then carry on as we are
        }
        basin::install_interrupt_handlers();
        CLI::App app{"basin: study and use the weight space of fine-tuned language models"};
        app.require_subcommand(1);
        app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast); // as basin-torch
        CLI::App* sub = app.add_subcommand(command, it->second.first);
        const basin::cli::Runner run = it->second.second(*sub);
        try {
            app.parse(argc, argv);
        } catch (const CLI::ParseError& e) {
            return app.exit(e);
        }
        try {
            return run();
        } catch (const basin::Interrupted& e) {
            return basin::cli::report_interrupted(e);
        } catch (const std::exception& e) { // basin::Error and anything else: one line
            std::fprintf(stderr, "basin: error: %s\n", e.what());
            return 1;
        }
    }
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    const auto full = (ec ? std::filesystem::path(argv[0]) : self).parent_path() / "basin-torch";
    ::execv(full.c_str(), argv);
    std::fprintf(stderr, "basin: error: cannot run %s (%s); it is built and installed next to basin\n", full.c_str(),
                 std::strerror(errno));
    return 1;
}
