// fork + execve of a child that dies with its parent (see child_process.h).
#include "trainer/base/child_process.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "models/error.h"

extern char** environ;

namespace mt {

pid_t spawn_child(const ChildSpec& spec, const std::string& what) {
  if (spec.argv.empty()) throw Error(fmt::format("{}: no program to start", what));
  // Built before fork: the child may only make async-signal-safe calls.
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(fmt::format("{}: cannot start a process: {}", what, std::strerror(errno)));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(137);  // the parent died before prctl took effect
    if (spec.own_process_group) ::setpgid(0, 0);
    if (spec.output_fd >= 0) {
      ::dup2(spec.output_fd, 1);
      ::dup2(spec.output_fd, 2);
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

std::vector<std::string> environment_with(const std::vector<std::string>& set) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& s : set) replaced = replaced || s.substr(0, s.find('=')) == name;
    if (!replaced) env.push_back(entry);
  }
  env.insert(env.end(), set.begin(), set.end());
  return env;
}

}  // namespace mt
