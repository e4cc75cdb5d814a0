// Kill points for the pipeline's kill/resume tests: MAINTUNE_FAULT_KILL_AT="NAME:N" makes the
// process exit at once with status 137 (what a SIGKILL looks like to the caller, no cleanup, no
// flushing) the Nth time fault_point(NAME) is reached. Unset, a fault point costs one lookup.
#pragma once
#include <string>

namespace mt {

void fault_point(const std::string& name);

}  // namespace mt
