#include "basin/core/process.h"

#include "basin/core/error.h"
#include "basin/core/interrupt.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace basin {

namespace fs = std::filesystem;

std::string last_line(const fs::path& log) {
    std::ifstream in(log);
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty()) last = line;
    return last.empty() ? "(no output)" : last;
}

pid_t spawn(const fs::path& program, const std::vector<std::string>& args, const fs::path& log) {
    fs::create_directories(log.parent_path());
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    BASIN_CHECK(pid >= 0, "cannot start ", program.string(), ": fork failed (", std::strerror(errno), ")");
    if (pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(127); // the parent died before prctl
        // a process group of its own: Ctrl-C in a terminal reaches the runner only, which passes
        // one SIGINT on (a job that received two would stop at once instead of cleanly)
        ::setpgid(0, 0);
        // a job is a process of its own, not a rank: without this, `basin map` started by an MPI
        // worker would try to join the MPI job it inherited the environment of
        std::vector<std::string> mpi_vars;
        for (char** e = environ; *e; ++e) {
            const std::string var(*e);
            for (const char* prefix : {"OMPI_", "PMIX_", "PMI_", "SLURM_PROCID"})
                if (var.rfind(prefix, 0) == 0) mpi_vars.push_back(var.substr(0, var.find('=')));
        }
        for (const auto& name : mpi_vars)
            ::unsetenv(name.c_str());
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        std::vector<char*> argv;
        std::string program_name = program.string();
        argv.push_back(program_name.data());
        std::vector<std::string> copy = args;
        for (auto& a : copy)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(program.c_str(), argv.data());
        std::fprintf(stderr, "cannot run %s: %s\n", program.c_str(), std::strerror(errno));
        ::_exit(127);
    }
    return pid;
}

int exit_code(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int wait_for(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return exit_code(status);
}

void ChildSet::start(std::size_t tag, const fs::path& program, const std::vector<std::string>& args,
                     const fs::path& log) {
    children_[spawn(program, args, log)] = {tag, std::chrono::steady_clock::now(), log};
}

std::optional<ChildSet::Ended> ChildSet::wait_any(double seconds, const std::function<void()>& idle) {
    const auto since = std::chrono::steady_clock::now();
    while (!children_.empty()) {
        for (auto it = children_.begin(); it != children_.end(); ++it) {
            int status = 0;
            const pid_t pid = ::waitpid(it->first, &status, WNOHANG);
            if (pid == 0 || (pid < 0 && errno == EINTR)) continue;
            BASIN_CHECK(pid > 0, "waiting for child process ", it->first, " failed (", std::strerror(errno), ")");
            const Child child = it->second;
            children_.erase(it);
            return Ended{child.tag, exit_code(status),
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - child.started).count(),
                         child.log};
        }
        if (interrupted()) return std::nullopt;
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count() > seconds)
            return std::nullopt;
        if (idle) idle();
        ::usleep(100'000);
    }
    return std::nullopt;
}

std::vector<std::size_t> ChildSet::stop(int signal) {
    std::vector<std::size_t> tags;
    for (const auto& [pid, child] : children_)
        ::kill(pid, signal);
    for (const auto& [pid, child] : children_) {
        wait_for(pid);
        tags.push_back(child.tag);
    }
    children_.clear();
    return tags;
}

} // namespace basin
