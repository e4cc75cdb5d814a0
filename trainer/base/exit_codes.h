// The exit codes of the maintune binary, one list for every command and for the sweep that runs
// pipelines as child processes. A run stopped by SIGTERM/SIGINT/SIGHUP after saving its state exits with
// kExitStopped, never 0, so that `maintune train ... && upload` does not treat an unfinished run as
// done; 75 is sysexits.h's EX_TEMPFAIL ("try again later": the resume command finishes the run).
#pragma once

namespace mt {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;    // bad input, a failed run or a failed write ("maintune: error: ...")
inline constexpr int kExitUsage = 2;    // misuse of the command line (usage printed)
inline constexpr int kExitStopped = 75; // stopped by a signal with a checkpoint saved: resume to finish

}  // namespace mt
