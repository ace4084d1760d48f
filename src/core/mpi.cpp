#include "basin/core/mpi.h"

#include <cstdio>
#include <cstdlib>

#ifdef BASIN_WITH_MPI
#include <mpi.h>
#endif

namespace basin {

bool launched_by_mpi() {
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_PROCID"})
        if (std::getenv(var)) return true;
    return false;
}

MpiSession::MpiSession() {
#ifdef BASIN_WITH_MPI
    active_ = launched_by_mpi();
    if (!active_) return;
    MPI_Init(nullptr, nullptr);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
#endif
}

MpiSession::~MpiSession() {
#ifdef BASIN_WITH_MPI
    if (active_) MPI_Finalize();
#endif
}

void MpiSession::sum(std::vector<double>& values) {
#ifdef BASIN_WITH_MPI
    MPI_Allreduce(MPI_IN_PLACE, values.data(), int(values.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#else
    (void)values;
#endif
}

void MpiSession::abort_all(const std::string& message) const {
    std::fprintf(stderr, "basin: error: %s (rank %d of %d; ending the job)\n", message.c_str(), rank_, size_);
    std::fflush(stderr);
#ifdef BASIN_WITH_MPI
    if (active_) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
    std::exit(1);
}

} // namespace basin
