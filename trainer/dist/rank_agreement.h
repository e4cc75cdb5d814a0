// Checks that every rank runs the same job: the same resolved configuration (refused at start,
// naming the first key that differs) and the same weights (an XXH64 checksum of every trained
// tensor, at the start and after the last step). Each check is collective: every rank reaches the
// same verdict and throws the same mt::Error, so no rank is left waiting on one that stopped.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace mt {

class ProcessGroup;

// The first dotted key (e.g. "optimizer.lr") whose value differs between two YAML texts, or "" if none.
std::string first_differing_key(const std::string& yaml_a, const std::string& yaml_b);

// Refuses a run whose resolved config (config_yaml) differs between ranks.
void check_ranks_have_same_config(ProcessGroup& group, const std::string& config_yaml);

// XXH64 over the names, shapes, dtypes and bytes of `tensors` (copied to the CPU where needed).
uint64_t weights_checksum(const std::vector<std::pair<std::string, at::Tensor>>& tensors);

// Refuses to go on when the checksums differ between ranks; `when` says when ("at the start").
void check_ranks_have_same_weights(ProcessGroup& group, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                   const std::string& when);

}  // namespace mt
