// Long library calls from Python, shared by both halves of the extension (module.cpp,
// module_torch.cpp): Ctrl-C armed, the GIL released, a progress callback taking the GIL.
#pragma once

#include "basin/core/error.h"
#include "basin/core/interrupt.h"

#include <csignal>
#include <cstdint>
#include <memory>
#include <pybind11/pybind11.h>

namespace basin::python {

namespace py = pybind11;

// Ctrl-C during a long call: on the main thread, basin's SIGINT handler replaces Python's for the
// call (the library polls its flag and unwinds cleanly, nothing half-written), then Python's is
// back and the flag cleared; the Interrupted error becomes KeyboardInterrupt.
class InterruptibleCall {
  public:
    InterruptibleCall() {
        const auto threading = py::module_::import("threading");
        active_ = threading.attr("current_thread")().is(threading.attr("main_thread")());
        if (!active_) return;
        sigaction(SIGINT, nullptr, &previous_);
        clear_interrupt();
        install_interrupt_handlers();
        sigaction(SIGTERM, &previous_term_, nullptr); // SIGTERM stays Python's: only Ctrl-C is asked for
    }
    ~InterruptibleCall() {
        if (!active_) return;
        sigaction(SIGINT, &previous_, nullptr);
        clear_interrupt();
    }

  private:
    bool active_ = false;
    struct sigaction previous_ {};
    struct sigaction previous_term_ = [] {
        struct sigaction a {};
        sigaction(SIGTERM, nullptr, &a);
        return a;
    }();
};

// A Python progress callback called from the library's threads: each call takes the GIL; an
// exception it raises stops the call (as an interruption) and is raised again afterwards.
class Progress {
  public:
    explicit Progress(py::object callback) : callback_(std::move(callback)) {}
    void operator()(std::uint64_t done, std::uint64_t total) {
        py::gil_scoped_acquire acquire;
        if (failure_) return;
        try {
            callback_(done, total);
        } catch (py::error_already_set& e) {
            failure_ = std::make_unique<py::error_already_set>(std::move(e));
            throw Interrupted(0, "stopped by the progress callback");
        }
    }
    void rethrow() {
        if (failure_) throw std::move(*failure_);
    }

  private:
    py::object callback_;
    std::unique_ptr<py::error_already_set> failure_;
};

// A long library call: the GIL released, Ctrl-C armed; an interruption the progress callback
// caused raises the callback's own exception instead.
template <class Body> auto released(Progress* progress, Body&& body) {
    try {
        InterruptibleCall interruptible;
        py::gil_scoped_release release;
        return body();
    } catch (const Interrupted&) {
        if (progress) progress->rethrow();
        throw;
    }
}

} // namespace basin::python
