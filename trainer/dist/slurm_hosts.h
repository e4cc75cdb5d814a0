// SLURM host lists ("node[01-04,07],gpu5"): the first host of one, which a SLURM job step's ranks
// rendezvous at when MASTER_ADDR is not given (distributed.cpp).
#pragma once
#include <string>

namespace mt {

// The first host name that `hostlist` (SLURM's compressed form: comma-separated names, each with
// bracketed ranges and lists of numbers, zero padding kept, several bracket groups allowed) expands
// to. Malformed lists (empty, unbalanced brackets, a bad range) are an mt::Error naming `what`.
std::string first_slurm_host(const std::string& hostlist, const std::string& what);

}  // namespace mt
