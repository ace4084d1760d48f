// basin: the program's entry point. The commands that need no libtorch (map, merge, run, status) run in this
// small binary and start in milliseconds; every other command, and the help, runs in basin-torch
// (installed next to it), which spends about 0.4 s loading and initialising libtorch.
#include "basin/core/error.h"
#include "basin/core/interrupt.h"
#include "commands.h"
#include "program.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <unistd.h>

int main(int argc, char** argv) {
    const std::string command = argc > 1 ? argv[1] : "";
    if (basin::cli::is_light_command(command) && !basin::cli::is_regmean_merge(argc, argv)) {
        // libgomp reads its wait policy when it loads: without PASSIVE its idle threads spin and
        // take the cores from the reader and the writer. OpenBLAS's own thread pool (made when it
        // loads) spins in sched_yield the same way: map at N = 16 took 1.11 s with it, 0.64 s
        // without. map and merge run their threads themselves and call BLAS only single-threaded,
        // so the pool is not made at all. Restarting this small program is cheap.
        if ((command == "map" || command == "locate" || command == "merge") &&
            (!std::getenv("OMP_WAIT_POLICY") || !std::getenv("OPENBLAS_NUM_THREADS"))) {
            ::setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
            ::setenv("OPENBLAS_NUM_THREADS", "1", 0);
            ::execv("/proc/self/exe", argv); // returns only on failure: then carry on as we are
        }
        basin::install_interrupt_handlers();
        // only the command asked for: registering the others would cost their start-up
        for (const auto& c : basin::cli::command_table())
            if (command == c.name) return basin::cli::run_program(argc, argv, {c});
    }
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    const auto full = (ec ? std::filesystem::path(argv[0]) : self).parent_path() / "basin-torch";
    ::execv(full.c_str(), argv);
    std::fprintf(stderr, "basin: error: cannot run %s (%s); it is built and installed next to basin\n", full.c_str(),
                 std::strerror(errno));
    return 1;
}
