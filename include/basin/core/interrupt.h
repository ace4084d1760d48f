// Clean stops on SIGINT and SIGTERM. The first signal only raises a flag; long loops (training
// steps, feature batches, map chunks, merged tensors, the experiment scheduler) poll it with
// check_interrupted(), which throws Interrupted. The exception unwinds through the atomic writers
// (temporary files and folders are removed), training saves its resume state first, and the CLI
// prints one line and exits with 128 + the signal number. A second signal ends the process at once.
#pragma once

#include "basin/core/error.h"

namespace basin {

class Interrupted : public Error {
  public:
    Interrupted(int signal, const std::string& message) : Error(message), signal_(signal) {}
    int signal() const { return signal_; }

  private:
    int signal_;
};

// Installs the SIGINT / SIGTERM handlers (idempotent).
void install_interrupt_handlers();

// Forgets the signal received (a library caller, such as the Python package, that goes on after
// an interrupted call).
void clear_interrupt();

// The signal received so far (0: none).
int interrupt_signal();
inline bool interrupted() {
    return interrupt_signal() != 0;
}

// Throws Interrupted ("interrupted by SIGTERM while <doing>") once a signal arrived.
void check_interrupted(const char* doing);

// "SIGINT", "SIGTERM", or the number.
std::string signal_name(int signal);

} // namespace basin
