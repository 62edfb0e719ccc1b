// The command line as one CLI11 App: every command, option and description.
// `pgcourier` parses with it, and the build's documentation generator
// (cli/docs_main.cc) writes the man pages and the shell completion from the
// same tree, so they cannot drift from `--help`.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

namespace pgcourier::cli {

struct CommandLine {
  CLI::App app;
  // --log-level and --log-format, once parsed.
  std::string log_level = "warn";
  std::string log_format = "text";
  // Set by the parsed command's callback: runs it and returns the exit status.
  std::function<int()> run;
};

// The application with all its commands. Heap-allocated because the
// commands' callbacks hold references to `run`.
std::unique_ptr<CommandLine> MakeCommandLine();

}  // namespace pgcourier::cli
