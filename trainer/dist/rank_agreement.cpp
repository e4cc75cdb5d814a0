// Config and weight agreement between ranks (see rank_agreement.h).
#include "trainer/dist/rank_agreement.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <map>

#include "models/error.h"
#include "trainer/base/hash.h"
#include "trainer/dist/process_group.h"

namespace mt {
namespace {

// Every scalar of a YAML document under its dotted path (sequences as key[i]).
void flatten(const YAML::Node& node, const std::string& path, std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node) flatten(kv.second, path.empty() ? kv.first.as<std::string>() : path + "." + kv.first.as<std::string>(), out);
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) flatten(node[i], fmt::format("{}[{}]", path, i), out);
    if (node.size() == 0) out[path] = "[]";
  } else {
    out[path] = node.IsNull() ? "~" : node.as<std::string>();
  }
}

// Every rank's verdict, gathered: "" where it agreed. Throws on every rank when any disagreed.
void agree_or_throw(ProcessGroup& group, const std::string& what, const std::string& my_problem) {
  const std::vector<std::string> verdicts = group.all_gather_text(what, my_problem);
  for (size_t r = 0; r < verdicts.size(); ++r)
    if (!verdicts[r].empty()) throw Error(fmt::format("distributed: rank {} {}", r, verdicts[r]));
}

}  // namespace

std::string first_differing_key(const std::string& yaml_a, const std::string& yaml_b) {
  std::map<std::string, std::string> a, b;
  flatten(YAML::Load(yaml_a), "", a);
  flatten(YAML::Load(yaml_b), "", b);
  for (const auto& [key, value] : a) {
    const auto it = b.find(key);
    if (it == b.end() || it->second != value) return key;
  }
  for (const auto& [key, value] : b)
    if (a.find(key) == a.end()) return key;
  return "";
}

void check_ranks_have_same_config(ProcessGroup& group, const std::string& config_yaml) {
  const std::string rank0 = group.broadcast_text("the resolved config", config_yaml);
  std::string problem;
  if (rank0 != config_yaml) {
    const std::string key = first_differing_key(rank0, config_yaml);
    problem = fmt::format("has a different resolved config than rank 0 (first difference: '{}'); every rank must run "
                          "the same config and --set options",
                          key.empty() ? "the YAML text" : key);
  }
  agree_or_throw(group, "the config check", problem);
}

uint64_t weights_checksum(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  Xxh64 h;
  for (const auto& [name, t] : tensors) {
    const at::Tensor c = t.detach().to(at::kCPU).contiguous();
    const std::string meta = fmt::format("{}|{}|{}|", name, fmt::join(c.sizes(), ","), c10::toString(c.scalar_type()));
    h.update(meta.data(), meta.size());
    h.update(c.data_ptr(), c.nbytes());
  }
  return h.digest();
}

void check_ranks_have_same_weights(ProcessGroup& group, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                   const std::string& when) {
  const std::string mine = fmt::format("{:016x}", weights_checksum(tensors));
  const std::string rank0 = group.broadcast_text("the weights checksum", mine);
  std::string problem;
  if (rank0 != mine)
    problem = fmt::format("has different weights than rank 0 {} (checksum of the {} trained tensors {} vs {})",
                          when, tensors.size(), mine, rank0);
  agree_or_throw(group, "the weights check", problem);
}

}  // namespace mt
