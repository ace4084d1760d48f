#include "basin/core/interrupt.h"

#include <atomic>
#include <csignal>
#include <cstring>

namespace basin {

namespace {

std::atomic<int> received{0};

extern "C" void on_signal(int signal) {
    if (received.exchange(signal) != 0) { // a second signal: stop now, the default way
        std::signal(signal, SIG_DFL);
        std::raise(signal);
    }
}

} // namespace

void install_interrupt_handlers() {
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0; // no SA_RESTART: a blocking wait returns EINTR and the caller looks at the flag
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

void clear_interrupt() {
    received.store(0);
}

int interrupt_signal() {
    return received.load(std::memory_order_relaxed);
}

std::string signal_name(int signal) {
    return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal " + std::to_string(signal);
}

void check_interrupted(const char* doing) {
    if (const int s = interrupt_signal()) throw Interrupted(s, "interrupted by " + signal_name(s) + " while " + doing);
}

} // namespace basin
