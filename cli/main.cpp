// basin-torch: the command-line program with every command (`basin` runs the light ones itself and
// hands the rest here). Subcommands are thin wrappers around the library; run_program
// (program.h) is the one error boundary: every library error is one line and a non-zero exit.
#include "basin/core/error.h"
#include "basin/core/interrupt.h"
#include "program.h"

#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <map>
#include <torch/torch.h>
#include <unistd.h>

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

namespace {

// libtorch's errors carry a backtrace in what(); the line says the message only.
std::string describe(const std::exception& e) {
    if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
    return e.what();
}

} // namespace

int main(int argc, char** argv) {
    ensure_passive_openmp_wait(argc, argv);
    basin::install_interrupt_handlers(); // before the slow start-up, so that an early signal is a clean stop too
    basin::cli::set_regmean_runner(&basin::regmean_merge);
    // the commands that need libtorch; the table (program.cpp) has their names, help and order
    const std::map<std::string, basin::cli::Adder> torch = {
        {"eval", basin::cli::without_command_line<basin::cli::add_eval>},
        {"inspect", basin::cli::without_command_line<basin::cli::add_inspect>},
        {"tokenizer", basin::cli::without_command_line<basin::cli::add_tokenizer>},
        {"tokenize", basin::cli::without_command_line<basin::cli::add_tokenize>},
        {"finetune", basin::cli::add_finetune},
        {"pretrain", basin::cli::add_pretrain},
        {"probe", basin::cli::without_command_line<basin::cli::add_probe>},
        {"interpolate", basin::cli::without_command_line<basin::cli::add_interpolate>},
        {"hull", basin::cli::without_command_line<basin::cli::add_hull>},
        {"search", basin::cli::without_command_line<basin::cli::add_search>},
        {"plane", basin::cli::without_command_line<basin::cli::add_plane>},
        {"init-compare", basin::cli::without_command_line<basin::cli::add_init_compare>},
        {"init-model", basin::cli::without_command_line<basin::cli::add_init_model>},
    };
    return basin::cli::run_program(argc, argv, basin::cli::command_table(), torch, describe);
}
