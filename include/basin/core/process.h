// Child processes: a command run with its output in a log file, waited for, and its log's last
// line read back as its error message. `basin run` runs its jobs this way, and init-compare its
// fine-tunes when given more than one worker, both through a ChildSet.
//
// A child dies with its parent (PR_SET_PDEATHSIG), so a killed runner leaves nothing running on.
// It gets a process group of its own: Ctrl-C in a terminal reaches the parent only, which passes
// one signal on (a child that received two would stop at once instead of cleanly). The MPI
// variables of the environment are removed: a child is a process of its own, not a rank.
#pragma once
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
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

// The children a scheduler runs at once, each under a tag of the caller's (a job's index).
// wait_any polls each of its own pids (waitpid(pid, WNOHANG)), never waitpid(-1), so it reaps no
// child that another part of the process started and waits for.
class ChildSet {
  public:
    struct Ended {
        std::size_t tag;
        int code;       // exit code (128 + signal when killed)
        double seconds; // since start()
        std::filesystem::path log;
    };

    // spawn()s program with args, its output into log.
    void start(std::size_t tag, const std::filesystem::path& program, const std::vector<std::string>& args,
               const std::filesystem::path& log);
    // The next child to end, polling every 100 ms and calling idle (if set) between polls. nullopt
    // when a SIGINT/SIGTERM arrived first (interrupted() tells), none ended within seconds, or the
    // set is empty.
    std::optional<Ended> wait_any(double seconds = std::numeric_limits<double>::infinity(),
                                  const std::function<void()>& idle = {});
    // Passes signal on to every child, waits until each has ended (each saves what it can) and
    // returns their tags (in pid order).
    std::vector<std::size_t> stop(int signal);
    std::size_t size() const { return children_.size(); }
    bool empty() const { return children_.empty(); }

  private:
    struct Child {
        std::size_t tag;
        std::chrono::steady_clock::time_point started;
        std::filesystem::path log;
    };
    std::map<pid_t, Child> children_;
};

} // namespace basin
