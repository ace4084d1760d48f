// Child processes: a command run with its output in a log file, waited for, and its log's last
// line read back as its error message. `basin run` runs its jobs this way, and init-compare its
// fine-tunes when given more than one worker.
//
// A child dies with its parent (PR_SET_PDEATHSIG), so a killed runner leaves nothing running on.
// It gets a process group of its own: Ctrl-C in a terminal reaches the parent only, which passes
// one signal on (a child that received two would stop at once instead of cleanly). The MPI
// variables of the environment are removed: a child is a process of its own, not a rank.
#pragma once
#include <filesystem>
#include <string>
#include <sys/types.h>
#include <vector>

namespace basin {

// Starts program with args (argv[0] is the program), stdout and stderr into log (made, or
// truncated). Returns the child's pid; throws when fork fails.
pid_t spawn(const std::filesystem::path& program, const std::vector<std::string>& args,
            const std::filesystem::path& log);

// A waitpid status as an exit code: the code, or 128 + the signal that killed it.
int exit_code(int status);

// Waits for pid to end (through EINTR) and returns its exit code.
int wait_for(pid_t pid);

// The last non-empty line of a log: a failed command's error message ("(no output)" if none).
std::string last_line(const std::filesystem::path& log);

} // namespace basin
