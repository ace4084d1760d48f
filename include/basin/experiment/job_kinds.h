// The kinds of job an experiment runs, in one table: each kind's name, what it does, and how its
// finished output folder becomes store rows. The order is the order of the report's sections.
// A kind is also planned by the spec (a JobPlanner step in spec.cpp) and drawn by the report (its
// section writer in report.cpp, found by name); a unit test checks that every kind here has both
// and that the planner makes no kind that is not here. docs/ARCHITECTURE.md: how to add a job kind.
#pragma once

#include "basin/experiment/spec.h"
#include "basin/experiment/store.h"

#include <string>
#include <vector>

namespace basin {

struct JobKindEntry {
    const char* name;                  // Job::kind
    const char* what;                  // one line, for docs and errors
    JobResults (*collect)(const Job&); // the finished job's output folder as store rows
    // Pieces: a glob (fnmatch, '/' matched only by '/') relative to the output folder for the files
    // of a long job's finished parts (init-compare's finished runs). The runner keeps them in the
    // store while the job runs and when it stops, and writes them back before its next attempt
    // under the same key, so that the attempt resumes there on any machine; nullptr: none.
    const char* pieces = nullptr;
};

const std::vector<JobKindEntry>& job_kinds();
// The entry of a kind; an error lists the known kinds.
const JobKindEntry& job_kind(const std::string& name);

} // namespace basin
