// SIGTERM/SIGINT/SIGHUP as a graceful stop of a training run (see stop_signals.h).
#include "trainer/loop/stop_signals.h"

#include <atomic>
#include <csignal>

namespace mt {

namespace {

std::atomic<int> g_stop_signal{0};

void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
  // A second Ctrl-C kills at once, as users expect.
  std::signal(sig, SIG_DFL);
}

}  // namespace

StopSignals::StopSignals() {
  g_stop_signal.store(0);
  old_term = std::signal(SIGTERM, on_stop_signal);
  old_int = std::signal(SIGINT, on_stop_signal);
  old_hup = std::signal(SIGHUP, on_stop_signal);
}

StopSignals::~StopSignals() {
  std::signal(SIGTERM, old_term);
  std::signal(SIGINT, old_int);
  std::signal(SIGHUP, old_hup);
}

int stop_signal_received() { return g_stop_signal.load(); }

void request_training_stop() { g_stop_signal.store(SIGTERM); }

const char* stop_signal_name(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    default: return "SIGTERM";
  }
}

}  // namespace mt
