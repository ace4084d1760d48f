// Turning a finished job's output folder into store rows (metrics, points, models). The runner
// calls it after a job's command exits successfully; it reads only the job's output folder.
#pragma once

#include "basin/experiment/spec.h"
#include "basin/experiment/store.h"

namespace basin {

JobResults collect_results(const Job& job);

} // namespace basin
