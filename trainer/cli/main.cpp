// The maintune binary: dispatches to one subcommand (`maintune help CMD` is `maintune CMD --help`),
// or prints --version. Errors in input are reported as "maintune: error: ..." with exit code 1;
// misuse of the command line prints usage, exit code 2.
#include <c10/util/Exception.h>

#include <cstring>
#include <iostream>

#include "models/error.h"
#include "trainer/cli/commands.h"
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
    "  config     print the config schema, or a config resolved\n"
    "  bench      training speed on a named model shape (tokens/s, MFU, peak memory)\n"
    "\n"
    "Run 'maintune help <command>' (or 'maintune <command> --help') for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "--version") == 0) {
    std::cout << mt::cli::version_text();
    return 0;
  }
  // `maintune help CMD` runs as `maintune CMD --help`.
  char help_flag[] = "--help";
  char* help_argv[] = {argv[0], nullptr, help_flag, nullptr};
  if (std::strcmp(argv[1], "help") == 0) {
    if (argc == 2) {
      std::cout << kUsage;
      return 0;
    }
    if (argc > 3) {
      std::cerr << "maintune help: give one command\n\n" << kUsage;
      return 2;
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
    std::cerr << "maintune: unknown command '" << cmd << "'\n\n" << kUsage;
    return 2;
  } catch (const mt::cli::UsageError& e) {
    std::cerr << "maintune " << cmd << ": " << e.what() << " (see 'maintune " << cmd << " --help')\n";
    return 2;
  } catch (const mt::Error& e) {
    std::cerr << "maintune: error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "maintune: error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "maintune: error: " << e.what() << "\n";
    return 1;
  }
}
