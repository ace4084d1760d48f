// The MPI session of one basin process (`mpirun basin run`, `mpirun basin map`): initialised when
// the process was started by mpirun or srun and basin was built with MPI, finalised when the
// session ends. Outside MPI (or built without it) the process is rank 0 of 1 and every call is a
// no-op, so callers need no #ifdef. No MPI type appears here: only this module includes mpi.h.
#pragma once

#include <string>
#include <vector>

namespace basin {

// Whether this process was started by mpirun or srun (their environment variables are set).
bool launched_by_mpi();

class MpiSession {
  public:
    MpiSession();  // MPI_Init when launched by mpirun/srun
    ~MpiSession(); // MPI_Finalize
    MpiSession(const MpiSession&) = delete;
    MpiSession& operator=(const MpiSession&) = delete;

    bool active() const { return active_; }
    int rank() const { return rank_; }
    int size() const { return size_; }

    // Element-wise sum over all ranks, in place (MPI_Allreduce); alone, nothing to add.
    static void sum(std::vector<double>& values);
    // An error on one rank that the others cannot see: say it and end every rank (MPI_Abort).
    [[noreturn]] void abort_all(const std::string& message) const;

  private:
    bool active_ = false;
    int rank_ = 0, size_ = 1;
};

} // namespace basin
