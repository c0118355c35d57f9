// frugal: the command line. One file per subcommand (cmd_*.cpp); this file wires them up and
// turns every failure into one line on stderr and a non-zero exit code.
//
// Exit codes: 0 success, 1 the command failed (bad input file, unknown token id, ...),
// 2 the command line itself is wrong (unknown flag, missing or malformed argument).
#include <cstdio>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/log.h"
#include "parallel/world.h"

namespace {

void print_error(const std::string& where, const std::string& message, std::FILE* to = stderr) {
  std::string line = message;
  for (char& c : line) {
    if (c == '\n') c = ' ';  // one line, whatever the message
  }
  std::fprintf(to, "%s: error: %s\n", where.c_str(), line.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  frugal::init_log_level_from_env();
  // Under mpirun (docs/PARALLEL.md) every process runs the same command; rank 0 alone writes
  // standard output, and an error that every process hit is printed once (World::finish).
  auto world = frugal::parallel::World::start(&argc, &argv);
  if (!world.ok()) {
    print_error("frugal", world.status().message());
    return 1;
  }
  CLI::App app{"frugal: DeepSeek-V4 inference engine (tokenizer, chat format and tools)", "frugal"};
  app.set_help_all_flag("--help-all", "Help for every command");
  app.footer(
      "Run 'frugal COMMAND --help' for the options of a command.\n"
      "Errors are reported as one line on stderr; exit code 1 for a failed command, 2 for a bad "
      "command line.");
  std::vector<frugal::cli::Command> commands = {
      frugal::cli::add_tokenize(app),   frugal::cli::add_detokenize(app),
      frugal::cli::add_render(app),     frugal::cli::add_parse(app),
      frugal::cli::add_perplexity(app), frugal::cli::add_run(app),
      frugal::cli::add_chat(app),       frugal::cli::add_mem(app),
      frugal::cli::add_bench(app),      frugal::cli::add_synth(app),
      frugal::cli::add_serve(app),      frugal::cli::add_profile(app),
  };
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where = "frugal";
    std::vector<std::string> unknown = app.remaining();
    for (const CLI::App* sub : app.get_subcommands()) {
      where += " " + sub->get_name();
      for (const std::string& r : sub->remaining()) unknown.push_back(r);
    }
    // An unknown flag is the real problem even when CLI11 first noticed a missing option.
    std::string message = e.what();
    if (!unknown.empty()) {
      message = "unknown option or argument '" + unknown.front() + "'";
    }
    print_error(where, message + " (see '" + where + " --help')");
    return 2;
  }
  for (const frugal::cli::Command& c : commands) {
    if (!c.app->parsed()) continue;
    const frugal::Status st = c.run();
    // Processes of a parallel run that finished wait this long for the others (which may still
    // be writing their output) before deciding one of them is stuck.
    constexpr double kFinishWaitSeconds = 120.0;
    if ((*world)->finish(st, kFinishWaitSeconds)) {
      const int rank = (*world)->rank();
      print_error("frugal " + c.app->get_name() +
                      ((*world)->size() > 1 ? ": rank " + std::to_string(rank) : ""),
                  st.message(), frugal::parallel::diagnostics());
    }
    return st.ok() ? 0 : 1;
  }
  print_error("frugal",
              "no command given (commands: run, chat, tokenize, detokenize, render, parse, "
              "perplexity, mem, bench, synth; see 'frugal --help')");
  return 2;
}
