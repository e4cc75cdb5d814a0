// Graceful stop of a training run: while a StopSignals guard lives, SIGTERM/SIGINT/SIGHUP (or
// request_training_stop) only set a flag that the step loop reads after each step, so the run saves
// a checkpoint and returns; a second signal kills at once. SIGHUP (the terminal closed under a run
// started without nohup) is a stop like the others, not a death without a checkpoint.
#pragma once

namespace mt {

// Installs the graceful-stop handlers for the lifetime of a run and restores the previous ones.
// Construction clears a stop asked for earlier.
struct StopSignals {
  using Handler = void (*)(int);
  Handler old_term, old_int, old_hup;
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
};

// The signal that asked for a stop (SIGTERM, SIGINT or SIGHUP), 0 when none did.
int stop_signal_received();
// "SIGTERM", "SIGINT" or "SIGHUP", for the stop message.
const char* stop_signal_name(int sig);

// Asks a running run_training to stop after its current step (what the stop signals do).
void request_training_stop();

}  // namespace mt
