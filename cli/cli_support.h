// Pieces every subcommand shares: exit statuses, Ctrl-C handling, scrubbing
// secrets from the process's argument list.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "catalog/object_filter.h"
#include "preflight/check.h"
#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier::cli {

// Exit statuses, stable for scripts.
inline constexpr int kExitOk = 0;       // ready / done
inline constexpr int kExitBlocked = 1;  // checks failed, or the operation failed
inline constexpr int kExitUsage = 2;    // bad arguments or input
inline constexpr int kExitCancelled = 130;

// The token raised by the first SIGINT/SIGTERM; a second one ends the
// process at once.
CancelToken& InterruptToken();
void InstallInterruptHandlers();

// The options every command that talks to both servers shares.
struct ServerArgs {
  std::string source;
  std::string target;
  int jobs = 4;
  std::vector<std::string> databases;
  std::vector<std::string> exclude_databases;
  std::vector<std::string> pg_bindirs;
  double connect_timeout = 30;
  bool json = false;
};

// Adds --source, --target, --jobs, --databases, --exclude-database,
// --pg-bindir, --connect-timeout and --json to `cmd`.
void AddServerOptions(CLI::App* cmd, ServerArgs& args);

// Adds the object filters of migrate and verify to `cmd`: --include-schema,
// --exclude-schema, --include-table, --exclude-table, --exclude-table-data
// (glob patterns, repeatable; tables as schema.table).
void AddFilterOptions(CLI::App* cmd, ObjectFilter& filter);

// Fills the shared part of CheckOptions (connection strings from the
// arguments or PGCOURIER_SOURCE / PGCOURIER_TARGET, the interrupt token).
// Returns false, after printing why, when a connection string is missing.
bool FillCheckOptions(const char* command, const ServerArgs& args, CheckOptions& options,
                      bool servers_required = true);

// Writes an error on standard error in the chosen log form
// (cli/log_output.h): "pgcourier COMMAND: message" and "  hint: ..." as
// text, one line at level error in JSON.
void LogError(const char* command, const std::string& message, const std::string& hint = "");

// Prints a core error (message and hint) and returns the exit status it
// means: usage for bad input, cancelled, or blocked.
int ReportError(const char* command, const Status& error);

// Writes text to standard output as it is.
void PrintOut(const std::string& text);

// Overwrites, in place, the password of every connection string in argv
// (postgresql://user:SECRET@..., password=SECRET) so that `ps` and
// /proc/PID/cmdline stop showing it once arguments are parsed.
void ScrubPasswordsFromArgv(int argc, char** argv);

}  // namespace pgcourier::cli
