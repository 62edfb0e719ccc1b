// The man pages and shell completion of pgcourier, written from the CLI11
// App itself (cli/app.h): every command, option, argument placeholder,
// choice, default and description comes from the tree that `--help` prints,
// so the documentation cannot drift from it. The build runs
// pgcourier_docs (cli/docs_main.cc) to write them.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace pgcourier::cli {

// The visible commands of `app`, in the order --help lists them.
std::vector<CLI::App*> VisibleCommands(CLI::App& app);

// The roff source of a man page (section 1): `pgcourier.1` for the
// application when `command` is null, else `pgcourier-<command>.1`.
// `version` goes into the page's footer.
std::string ManPage(CLI::App& app, CLI::App* command, const std::string& version);

// The file name of a command's man page: "pgcourier-check.1".
std::string ManPageName(const CLI::App& app, const CLI::App* command);

// A bash completion script (bash-completion's directory, or `source` it):
// commands, each command's options, and the values of options with a fixed
// set of choices, directories for --dir options, files for FILE ones.
std::string BashCompletion(CLI::App& app);

// A zsh completion function file (`_pgcourier`, for a directory on $fpath):
// the same as the bash one, with each option's description.
std::string ZshCompletion(CLI::App& app);

}  // namespace pgcourier::cli
