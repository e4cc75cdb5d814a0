// The maintune binary: dispatches to one subcommand (`maintune help CMD` is `maintune CMD --help`),
// or prints --version. Errors in input are reported as "maintune: error: ..." with exit code 1;
// misuse of the command line prints usage, exit code 2. Whatever a command printed is flushed and
// checked before the exit code is returned: a failed write exits 1 (trainer/cli/output.h).
#include <c10/util/Exception.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <iostream>

#include "models/error.h"
#include "trainer/base/exit_codes.h"
#include "trainer/cli/commands.h"
#include "trainer/cli/output.h"
#include "trainer/cli/version.h"

namespace {

const char* kUsage =
    "usage: maintune <command> [options]\n"
    "       maintune help [<command>]\n"
    "       maintune --version\n"
    "\n"
    "Commands:\n"
    "  generate   continuations of token-id or text prompts, or of instructions through the chat template\n"
    "  score      negative log-likelihood of targets given prompts (token ids, text or instruction/response)\n"
    "  tokenize   token ids of JSONL text lines with a model's tokenizer\n"
    "  train      fine-tune a model from a YAML config (resumable)\n"
    "  pipeline   the MAIN pipeline: seed models, mutual rounds, synthesis, mutual filter, final models, report\n"
    "  sweep      ablation sweep of pipeline runs over config keys, reusing the stages settings share\n"
    "  export     a training checkpoint as a Hugging Face model directory (as final/ is)\n"
    "  launch     run a command as N data-parallel ranks on this node (torchrun without Python)\n"
    "  data       preview a run's training data: examples with the loss mask marked, lengths, packing\n"
    "  config     print the config schema, or a config resolved\n"
    "  bench      training speed on a named model shape (tokens/s, MFU, peak memory)\n"
    "\n"
    "Run 'maintune help <command>' (or 'maintune <command> --help') for a command's options.\n";

// A standard descriptor the caller closed (`maintune generate ... >&-`) is held by /dev/null opened
// the other way round, so writes to it still fail (EBADF) and no file the command opens later takes
// its number and receives its output.
void hold_closed_std_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1) continue;
    const int held = ::open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
    if (held >= 0 && held != fd) {
      ::dup2(held, fd);
      ::close(held);
    }
  }
}

int run_command(int argc, char** argv) {
  using mt::cli::out;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    out().write(kUsage);
    return argc < 2 ? mt::kExitUsage : mt::kExitOk;
  }
  if (std::strcmp(argv[1], "--version") == 0) {
    out().write(mt::cli::version_text());
    return mt::kExitOk;
  }
  // `maintune help CMD` runs as `maintune CMD --help`.
  char help_flag[] = "--help";
  char* help_argv[] = {argv[0], nullptr, help_flag, nullptr};
  if (std::strcmp(argv[1], "help") == 0) {
    if (argc == 2) {
      out().write(kUsage);
      return mt::kExitOk;
    }
    if (argc > 3) {
      std::cerr << "maintune help: give one command\n\n" << kUsage;
      return mt::kExitUsage;
    }
    help_argv[1] = argv[2];
    argc = 3;
    argv = help_argv;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "generate") return mt::cli::cmd_generate(argc - 2, argv + 2);
    if (cmd == "score") return mt::cli::cmd_score(argc - 2, argv + 2);
    if (cmd == "tokenize") return mt::cli::cmd_tokenize(argc - 2, argv + 2);
    if (cmd == "train") return mt::cli::cmd_train(argc - 2, argv + 2);
    if (cmd == "config") return mt::cli::cmd_config(argc - 2, argv + 2);
    if (cmd == "bench") return mt::cli::cmd_bench(argc - 2, argv + 2);
    if (cmd == "pipeline") return mt::cli::cmd_pipeline(argc - 2, argv + 2);
    if (cmd == "sweep") return mt::cli::cmd_sweep(argc - 2, argv + 2);
    if (cmd == "export") return mt::cli::cmd_export(argc - 2, argv + 2);
    if (cmd == "launch") return mt::cli::cmd_launch(argc - 2, argv + 2);
    if (cmd == "data") return mt::cli::cmd_data(argc - 2, argv + 2);
    std::cerr << "maintune: unknown command '" << cmd << "'\n\n" << kUsage;
    return mt::kExitUsage;
  } catch (const mt::cli::UsageError& e) {
    std::cerr << "maintune " << cmd << ": " << e.what() << " (see 'maintune " << cmd << " --help')\n";
    return mt::kExitUsage;
  }
}

}  // namespace

int main(int argc, char** argv) {
  hold_closed_std_fds();
  try {
    const int code = run_command(argc, argv);
    mt::cli::out().finish();  // what was printed reached its destination, or the exit is 1
    return code;
  } catch (const mt::Error& e) {
    std::cerr << "maintune: error: " << e.what() << "\n";
  } catch (const c10::Error& e) {
    std::cerr << "maintune: error: " << e.what_without_backtrace() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "maintune: error: " << e.what() << "\n";
  }
  return mt::kExitError;
}
