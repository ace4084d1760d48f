// basin run / status: an experiment spec expanded into jobs, run resumably (MPI optional).
#include "basin/core/error.h"
#include "basin/core/fs.h"
#include "basin/experiment/report.h"
#include "basin/experiment/runner.h"
#include "commands.h"

#include <cstdio>
#include <filesystem>
#include <map>

namespace basin::cli {

namespace {

std::map<std::string, std::string> parse_sets(const std::vector<std::string>& sets) {
    std::map<std::string, std::string> out;
    for (const auto& s : sets) {
        const auto eq = s.find('=');
        BASIN_CHECK(eq != std::string::npos && eq > 0, "--set '", s,
                    "': expected KEY=VALUE, e.g. data_root=/data/suite");
        out[s.substr(0, eq)] = s.substr(eq + 1);
    }
    return out;
}

// The `basin` program next to this one: jobs run through it.
fs::path basin_program() {
    std::error_code ec;
    const auto self = fs::read_symlink("/proc/self/exe", ec);
    BASIN_CHECK(!ec, "cannot find this program's path (/proc/self/exe)");
    return self.parent_path() / "basin";
}

} // namespace

Runner add_run(CLI::App& app) {
    struct Options {
        std::string spec;
        std::vector<std::string> sets;
        RunOptions run;
    };
    auto o = std::make_shared<Options>();
    app.add_option("spec", o->spec, "Experiment spec (TOML)")->required();
    app.add_option("--set", o->sets, "Override an [experiment] value: KEY=VALUE (repeatable), e.g. data_root=DIR")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    app.add_flag("--dry-run", o->run.dry_run, "List the jobs, their dependencies and commands; run nothing");
    app.add_option("--jobs", o->run.jobs, "Jobs at once on this machine (without MPI)")->capture_default_str();
    app.add_flag("--quiet", o->run.quiet, "No progress lines");
    app.add_option("--only", o->run.only,
                   "Only the jobs whose ids match these globs (comma-separated, e.g. 'search/*,map') and what "
                   "they need")
        ->delimiter(',');
    return [o]() {
        const ExperimentSpec spec = read_experiment(o->spec, parse_sets(o->sets));
        RunOptions r = o->run;
        r.program = basin_program();
        const int failed = run_experiment(spec, r);
        return failed == 0 ? 0 : 2;
    };
}

Runner add_status(CLI::App& app) {
    struct Options {
        std::string spec;
        std::vector<std::string> sets;
    };
    auto o = std::make_shared<Options>();
    app.add_option("spec", o->spec, "Experiment spec (TOML)")->required();
    app.add_option("--set", o->sets, "Override an [experiment] value: KEY=VALUE (repeatable)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    return [o]() {
        print_status(read_experiment(o->spec, parse_sets(o->sets)));
        return 0;
    };
}

} // namespace basin::cli

namespace basin::cli {

Runner add_report(CLI::App& app) {
    struct Options {
        std::vector<std::string> targets;
        std::string markdown;
    };
    auto o = std::make_shared<Options>();
    app.add_option("experiments", o->targets,
                   "Experiment folder (with store.sqlite) or its spec (TOML); several: one document comparing them "
                   "(for example one study on two bases), the HTML in the first one's report-comparison/")
        ->required();
    app.add_option(
        "--markdown", o->markdown,
        "Also write the report as Markdown to this file, its figures as SVG in a folder beside it named after it "
        "(docs/REPRODUCTION.md -> docs/reproduction/)");
    return [o]() {
        std::vector<fs::path> dirs;
        std::string command = "basin report";
        for (const auto& t : o->targets) {
            fs::path dir = t;
            if (fs::is_regular_file(dir)) dir = read_experiment(dir).out; // a spec: its experiment folder
            dirs.push_back(dir);
            command += " " + t;
        }
        ReportOptions options;
        if (!o->markdown.empty()) {
            options.markdown = o->markdown;
            options.command = command + " --markdown " + o->markdown;
        }
        const ReportResult r =
            dirs.size() == 1 ? write_report(dirs.front(), options) : write_comparison_report(dirs, options);
        std::printf("%s (%zu figures, %zu tables)\n", r.html.c_str(), r.figures, r.tables);
        if (!r.markdown.empty()) std::printf("%s\n", r.markdown.c_str());
        return 0;
    };
}

} // namespace basin::cli
