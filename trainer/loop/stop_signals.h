// Graceful stop of a training run: while a StopSignals guard lives, SIGTERM/SIGINT (or
// request_training_stop) only set a flag that the step loop reads after each step, so the run saves
// a checkpoint and returns; a second signal kills at once.
#pragma once

namespace mt {

// Installs the graceful-stop handlers for the lifetime of a run and restores the previous ones.
// Construction clears a stop asked for earlier.
struct StopSignals {
  using Handler = void (*)(int);
  Handler old_term, old_int;
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
};

// The signal that asked for a stop (SIGTERM or SIGINT), 0 when none did.
int stop_signal_received();

// Asks a running run_training to stop after its current step (what SIGTERM/SIGINT do).
void request_training_stop();

}  // namespace mt
