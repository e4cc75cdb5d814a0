// Starting a child process that dies with its parent: the sweep's pipeline runs and `maintune
// launch`'s ranks. fork + execve with only async-signal-safe calls in the child; the child gets
// PR_SET_PDEATHSIG SIGTERM, so a parent killed with SIGKILL leaves no orphan training behind (a
// SIGTERM'd training saves its checkpoint and stops).
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace mt {

struct ChildSpec {
  std::vector<std::string> argv;  // argv[0] is the executable's path (no PATH lookup)
  std::vector<std::string> env;   // the whole environment, "NAME=value"
  int output_fd = -1;             // >= 0: the child's stdout and stderr go there; else inherited
  bool own_process_group = false; // the terminal's Ctrl-C then reaches the parent alone, which forwards it
};

// Starts the child and returns its pid; a failed fork is an mt::Error naming `what`. A failed execve
// makes the child exit with 127, as a shell does.
pid_t spawn_child(const ChildSpec& spec, const std::string& what);

// This process's environment with `set` ("NAME=value") replacing or adding those names.
std::vector<std::string> environment_with(const std::vector<std::string>& set);

}  // namespace mt
