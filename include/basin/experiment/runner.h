// Running an experiment's jobs: in dependency order, each as a basin child process whose output
// folder is written atomically by the command itself; its results go into the store in one
// transaction when it exits successfully. A rerun skips every job whose key is recorded as done
// and whose output exists; a killed run resumes with nothing lost or counted twice. A failing job
// is recorded with its error and only the jobs that need it are held back.
//
// Under MPI (`mpirun -np K basin run ...`, built with OpenMPI), rank 0 schedules jobs and owns the
// store; ranks 1..K-1 run the commands and report back, and never open the SQLite file.
#pragma once

#include "basin/experiment/spec.h"
#include "basin/experiment/store.h"

#include <filesystem>
#include <vector>

namespace basin {

struct RunOptions {
    std::filesystem::path program; // the basin executable the jobs run
    int jobs = 1;                  // jobs at once (without MPI); a job with slots > 1 counts as that many
    bool dry_run = false;          // list the jobs and what would run
    bool quiet = false;
    // Only the jobs whose ids match one of these globs (fnmatch, e.g. search/*), with every job
    // they depend on; empty: all
    std::vector<std::string> only;
};

// Returns the number of jobs that failed or could not run because a dependency failed.
int run_experiment(const ExperimentSpec& spec, const RunOptions& options);

// One line per job: state (done, stale, running, failed, blocked, pending), time, error.
void print_status(const ExperimentSpec& spec);

// The experiment's store file.
inline std::filesystem::path store_file(const ExperimentSpec& spec) {
    return spec.out / "store.sqlite";
}

} // namespace basin
