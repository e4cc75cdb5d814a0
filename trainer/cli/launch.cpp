// `maintune launch --nproc N [--nnodes M --node-rank R --master-addr HOST] [--master-port P] -- CMD ARGS`:
// torchrun's job for users without Python. Starts N ranks of `maintune CMD ARGS` on this node with
// torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT),
// forwards SIGINT/SIGTERM/SIGHUP to them (a second signal kills them), and when one rank fails
// stops the others (SIGTERM, then SIGKILL after --grace-s). Exit code: the first failing rank's
// (128 + signal for a rank killed by one); else 75 when a rank stopped on a signal; else 0.
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "models/error.h"
#include "trainer/base/child_process.h"
#include "trainer/base/exit_codes.h"
#include "trainer/cli/commands.h"

namespace mt::cli {
namespace {

std::atomic<int> g_launch_signal{0};
std::atomic<int> g_launch_signals_seen{0};
void on_launch_signal(int sig) {
  g_launch_signal.store(sig);
  g_launch_signals_seen.fetch_add(1);
}

// A TCP port free on this host now (bound to 0, then released): the single-node rendezvous port.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(fmt::format("launch: cannot open a socket to find a free port: {}", std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) throw Error(fmt::format("launch: cannot find a free port: {}", std::strerror(err)));
  return ntohs(a.sin_port);
}

struct LaunchPlan {
  int64_t nproc = 1, nnodes = 1, node_rank = 0, grace_s = 30;
  std::string master_addr;
  int64_t master_port = 0;
  std::vector<std::string> command;  // after "--": the maintune subcommand and its arguments
};

LaunchPlan plan_from_args(const Args& args, std::vector<std::string> command) {
  LaunchPlan p;
  p.nproc = args.get_int("nproc", 1);
  p.nnodes = args.get_int("nnodes", 1);
  p.node_rank = args.get_int("node-rank", 0);
  p.grace_s = args.get_int("grace-s", 30);
  if (p.nproc < 1 || p.nproc > 1024) throw UsageError(fmt::format("--nproc {} is not in 1 .. 1024", p.nproc));
  if (p.nnodes < 1) throw UsageError(fmt::format("--nnodes {} is not a positive number of nodes", p.nnodes));
  if (p.node_rank < 0 || p.node_rank >= p.nnodes)
    throw UsageError(fmt::format("--node-rank {} is not in 0 .. {} (--nnodes {})", p.node_rank, p.nnodes - 1, p.nnodes));
  if (p.grace_s < 0) throw UsageError("--grace-s cannot be negative");
  if (p.nnodes > 1 && !args.has("master-addr"))
    throw UsageError("--nnodes > 1 needs --master-addr (the host of node rank 0) and --master-port");
  if (p.nnodes > 1 && !args.has("master-port")) throw UsageError("--nnodes > 1 needs --master-port (the same on every node)");
  p.master_addr = args.get("master-addr", "127.0.0.1");
  p.master_port = args.has("master-port") ? args.get_int("master-port", 0) : free_port();
  if (p.master_port < 1 || p.master_port > 65535)
    throw UsageError(fmt::format("--master-port {} is not a TCP port (1 .. 65535)", p.master_port));
  if (command.empty())
    throw UsageError("give the command to run after '--' (e.g. maintune launch --nproc 2 -- train --config run.yaml)");
  p.command = std::move(command);
  return p;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
}

int exit_code_of(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

// The ranks of this node while they run: started, watched, signalled, reaped.
struct Ranks {
  std::map<pid_t, int64_t> running;  // pid -> global rank
  std::optional<int> first_failure;  // its exit code
  bool stopped_on_signal = false;    // some rank exited with kExitStopped
  bool killing = false;
  std::chrono::steady_clock::time_point kill_at;

  void signal_all(int sig) {
    for (const auto& [pid, rank] : running) ::kill(pid, sig);
  }
  // Reaps the ranks that ended; the first failure stops the others.
  void reap(const LaunchPlan& plan) {
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      const auto it = running.find(pid);
      if (it == running.end()) continue;
      const int64_t rank = it->second;
      running.erase(it);
      const int code = exit_code_of(status);
      if (code == kExitOk) continue;
      if (code == kExitStopped) {
        stopped_on_signal = true;
        continue;
      }
      if (first_failure) continue;
      first_failure = code;
      std::cerr << fmt::format("maintune launch: rank {} {}; stopping the other {} rank(s) of this node\n", rank,
                               describe_status(status), running.size());
      signal_all(SIGTERM);
      killing = true;
      kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(plan.grace_s);
    }
  }
};

int run_ranks(const LaunchPlan& plan) {
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  const int64_t world = plan.nproc * plan.nnodes;
  g_launch_signal.store(0);
  g_launch_signals_seen.store(0);
  struct sigaction sa{};
  sa.sa_handler = on_launch_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  Ranks ranks;
  for (int64_t local = 0; local < plan.nproc; ++local) {
    const int64_t rank = plan.node_rank * plan.nproc + local;
    ChildSpec spec;
    spec.argv = {exe};
    spec.argv.insert(spec.argv.end(), plan.command.begin(), plan.command.end());
    spec.env = environment_with({fmt::format("RANK={}", rank), fmt::format("WORLD_SIZE={}", world),
                                 fmt::format("LOCAL_RANK={}", local), fmt::format("LOCAL_WORLD_SIZE={}", plan.nproc),
                                 fmt::format("GROUP_RANK={}", plan.node_rank), "MASTER_ADDR=" + plan.master_addr,
                                 fmt::format("MASTER_PORT={}", plan.master_port)});
    spec.own_process_group = true;  // a terminal's Ctrl-C reaches launch alone, which forwards it once
    try {
      ranks.running[spawn_child(spec, fmt::format("launch: rank {}", rank))] = rank;
    } catch (...) {
      ranks.signal_all(SIGKILL);
      throw;
    }
  }
  std::cerr << fmt::format("maintune launch: {} rank(s) on this node ({} of {} in all), rendezvous at {}:{}\n",
                           plan.nproc, plan.node_rank * plan.nproc, world, plan.master_addr, plan.master_port);
  int forwarded = 0;
  while (!ranks.running.empty()) {
    ranks.reap(plan);
    const int seen = g_launch_signals_seen.load();
    if (seen > forwarded && !ranks.running.empty()) {
      // The first signal asks every rank to save and stop; another one ends them at once.
      const int sig = forwarded == 0 ? g_launch_signal.load() : SIGKILL;
      std::cerr << fmt::format("maintune launch: {}; {} the ranks\n", strsignal(g_launch_signal.load()),
                               sig == SIGKILL ? "killing" : "stopping");
      ranks.signal_all(sig);
      forwarded = seen;
    }
    if (ranks.killing && std::chrono::steady_clock::now() >= ranks.kill_at && !ranks.running.empty()) {
      std::cerr << fmt::format("maintune launch: {} rank(s) still running {} s after the failure: killing them\n",
                               ranks.running.size(), plan.grace_s);
      ranks.signal_all(SIGKILL);
      ranks.killing = false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, SIG_DFL);
  if (ranks.first_failure) return *ranks.first_failure;
  return ranks.stopped_on_signal ? kExitStopped : kExitOk;
}

}  // namespace

int cmd_launch(int argc, char** argv) {
  const std::vector<OptionSpec> spec = {
      {"nproc", true, "ranks to start on this node (one per GPU with CUDA)", "1"},
      {"nnodes", true, "nodes in the job (each runs maintune launch with its --node-rank)", "1"},
      {"node-rank", true, "this node's index, 0 .. nnodes-1", "0"},
      {"master-addr", true, "host of node rank 0, where the ranks meet (needed with --nnodes > 1)", "127.0.0.1"},
      {"master-port", true, "its TCP port (needed with --nnodes > 1)", "a free port"},
      {"grace-s", true, "seconds the other ranks get to exit after one failed, before SIGKILL", "30"},
  };
  int split = argc;
  for (int i = 0; i < argc; ++i)
    if (std::strcmp(argv[i], "--") == 0) {
      split = i;
      break;
    }
  const auto parsed = parse_command_line(
      split, argv, spec,
      "usage: maintune launch [--nproc N] [--nnodes M --node-rank R --master-addr HOST --master-port P] -- "
      "COMMAND [ARGS]\n\nRuns `maintune COMMAND ARGS` as N data-parallel ranks, as torchrun --no-python would "
      "(docs/distributed.md).");
  if (!parsed) return kExitOk;
  std::vector<std::string> command;
  for (int i = split + 1; i < argc; ++i) command.emplace_back(argv[i]);
  return run_ranks(plan_from_args(*parsed, std::move(command)));
}

}  // namespace mt::cli
