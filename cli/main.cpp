// basin: the command-line program. Subcommands are thin wrappers around the library; every
// library error is caught here and printed as one line with a non-zero exit.
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <unistd.h>
#include <map>
#include <torch/torch.h>

#include "basin/core/error.h"
#include "basin/core/version.h"
#include "basin/core/interrupt.h"
#include "commands.h"

namespace basin::cli {

std::string check_device(const std::string& name) {
    torch::Device device(torch::kCPU);
    try {
        device = torch::Device(name);
    } catch (const c10::Error&) {
        fail("--device: expected cpu, cuda or cuda:N, got '", name, "'");
    }
    if (device.is_cuda())
        BASIN_CHECK(torch::cuda::is_available(), "--device ", name,
                    ": CUDA is not available (this libtorch was built without CUDA or no GPU is visible)");
    return name;
}

void set_threads(int threads) {
    if (threads <= 0) return;
    torch::set_num_threads(threads);
    // OpenBLAS (Debian's pthread build) keeps its own thread pool besides libtorch's OpenMP
    // threads; both must follow --threads or they oversubscribe the cores.
    using SetThreads = void (*)(int);
    if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(threads);
}

} // namespace basin::cli

// libgomp's idle threads spin for a while after each parallel region, competing with OpenBLAS's
// own threads (measured: 2 threads run 2x slower than 1). The wait policy is read when libgomp
// loads, before main, so basin re-executes itself once with OMP_WAIT_POLICY=PASSIVE unless
// the user chose a policy. Commands without OpenBLAS next to OpenMP (map, merge) skip the restart,
// which costs about 0.4 s.
static void ensure_passive_openmp_wait(int argc, char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") || std::getenv("BASIN_NO_REEXEC")) return;
    if (argc > 1 && (std::string(argv[1]) == "map" || std::string(argv[1]) == "merge")) return;
    ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    ::setenv("BASIN_NO_REEXEC", "1", 1);
    ::execv("/proc/self/exe", argv); // returns only on failure; then carry on as we are
}

int main(int argc, char** argv) {
    ensure_passive_openmp_wait(argc, argv);
    basin::install_interrupt_handlers(); // before the slow start-up, so that an early signal is a clean stop too
    CLI::App app{"basin: study and use the weight space of fine-tuned language models"};
    app.require_subcommand(1);
    // A repeated option takes its last value, so that scripts can append overrides.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.set_version_flag("--version", std::string("basin ") + basin::kVersion);
    std::map<CLI::App*, basin::cli::Runner> runners;
    auto add = [&](const char* name, const char* help, basin::cli::Runner (*adder)(CLI::App&)) {
        CLI::App* sub = app.add_subcommand(name, help);
        runners[sub] = adder(*sub);
    };
    add("eval", "Evaluate a sequence-classification checkpoint on a labelled dataset", basin::cli::add_eval);
    add("inspect", "Describe a checkpoint folder or a .safetensors file", basin::cli::add_inspect);
    add("tokenizer", "Tokenizer tools (train)", basin::cli::add_tokenizer);
    add("tokenize", "Tokenize text with a tokenizer.json (ids as JSONL)", basin::cli::add_tokenize);
    {
        std::string command_line;
        for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
        CLI::App* sub = app.add_subcommand("finetune", "Fine-tune a checkpoint (full, BitFit or head) on labelled data");
        runners[sub] = basin::cli::add_finetune(*sub, command_line);
        sub = app.add_subcommand("pretrain", "Masked-LM pretraining of an encoder from a text corpus");
        runners[sub] = basin::cli::add_pretrain(*sub, command_line);
    }
    add("probe", "Generalized loss: fit a linear head on a frozen body, score it on test data", basin::cli::add_probe);
    add("map", "Weight-space map: similarity, clusters and projections of many checkpoints", basin::cli::add_map);
    add("interpolate", "Generalized loss along the line between two checkpoints (and beyond, --extrapolate)",
        basin::cli::add_interpolate);
    add("hull", "Generalized loss of a group's members (In), hull samples (In') and outside models (Ex); PB table",
        basin::cli::add_hull);
    add("plane", "Generalized-loss surface on the plane through three checkpoints", basin::cli::add_plane);
    add("merge", "Merge checkpoints: mean (centroid), weighted, task-arithmetic, ties, dare, slerp, model-stock",
        basin::cli::add_merge);
    add("init-compare", "Fine-tune from several starts (pretrained, centroid, ...) with the same seeds and compare",
        basin::cli::add_init_compare);
    add("run", "Run an experiment spec (TOML): jobs with dependencies, a resumable results store, MPI",
        basin::cli::add_run);
    add("status", "What an experiment has done, is doing and has left", basin::cli::add_status);
    add("report", "One self-contained HTML report (and SVG/PDF figures) from an experiment's store", basin::cli::add_report);
    add("init-model", "Create a randomly initialised BERT/RoBERTa checkpoint", basin::cli::add_init_model);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    try {
        for (auto* sub : app.get_subcommands()) return runners.at(sub)();
    } catch (const basin::Interrupted& e) {
        return basin::cli::report_interrupted(e);
    } catch (const basin::Error& e) {
        std::fprintf(stderr, "basin: error: %s\n", e.what());
        return 1;
    } catch (const c10::Error& e) {
        std::fprintf(stderr, "basin: error: %s\n", e.what_without_backtrace());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "basin: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
