#include "status_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "cli_support.h"
#include "migrate/run_status.h"
#include "report/status_report.h"
#include "util/cancel.h"

namespace pgcourier::cli {
namespace {

constexpr const char* kClearScreen = "\033[H\033[2J";

struct StatusArgs {
  std::string dir = "pgcourier-work";
  bool json = false;
  std::optional<double> watch;  // seconds between frames
  bool tables = false;
  double rate_sample = 1;  // seconds between the two readings of the apply rate
};

// 0 for a migration that is going or went well (or was never started), 1 for
// one that failed, was cancelled or was interrupted (and, in RunStatus, for
// a replication that is broken: waiting cannot fix it).
int ExitStatusFor(const std::string& overall) {
  if (overall == "failed" || overall == "cancelled" || overall == "interrupted") {
    return kExitBlocked;
  }
  return kExitOk;
}

bool IsTerminal() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDOUT_FILENO) != 0 && term != nullptr && std::string(term) != "dumb";
}

int RunStatus(const StatusArgs& args) {
  const bool watching = args.watch.has_value();
  const bool terminal = watching && IsTerminal();
  const auto interval =
      std::chrono::milliseconds(static_cast<int64_t>((watching ? *args.watch : 0) * 1000));
  int exit_status = kExitOk;
  for (bool first = true;; first = false) {
    Result<StatusView> view = ReadStatus(args.dir, args.tables);
    if (view.ok()) {
      ReadReplication(*view, std::chrono::seconds(10),
                      std::chrono::milliseconds(static_cast<int64_t>(args.rate_sample * 1000)));
    }
    if (!view.ok()) {
      Status error = view.status();
      // No work directory or no catalog in it: the user named the wrong one.
      if (error.code() == StatusCode::kNotFound) {
        error = Status(StatusCode::kInvalidArgument, error.message(), error.hint());
      }
      return ReportError("status", error);
    }
    std::string frame = args.json ? StatusJson(*view, args.tables).dump(2) + "\n"
                                  : RenderStatusText(*view, args.tables);
    if (terminal) {
      frame = kClearScreen + frame;
      if (!args.json && view->live) {
        frame += fmt::format("\n(every {:g} s; Ctrl-C to stop)\n", *args.watch);
      }
    } else if (watching && !first) {
      frame = "\n" + frame;
    }
    PrintOut(frame);
    std::fflush(stdout);
    exit_status = ExitStatusFor(OverallState(*view));
    if (AnyReplicationBroken(*view)) exit_status = kExitBlocked;
    if (!watching || !view->live) break;
    if (!SleepFor(interval, &InterruptToken())) break;  // Ctrl-C ends the watch
  }
  return exit_status;
}

}  // namespace

void AddStatusCommand(CLI::App& app, std::function<int()>& run) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* cmd = app.add_subcommand(
      "status",
      "Shows how far the migration in a work directory is, per database: state, tables and "
      "indexes done, bytes copied, errors. Works while `migrate` runs (from another terminal) "
      "and after it ended. Exit status 0 when it is done or running, 1 when it failed, was "
      "cancelled or was interrupted, or when a database's replication is broken.");
  cmd->add_option("--dir", args->dir, "Work directory of the migration (as given to migrate)")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Machine-readable output (pgcourier.status/1)");
  cmd->add_option("--watch", args->watch,
                  "Show it again every SECONDS (default 2) until the migration ends or Ctrl-C")
      ->expected(0, 1)
      ->default_str("2")
      ->check(CLI::Range(0.1, 86400.0))
      ->type_name("SECONDS");
  cmd->add_option("--rate-sample", args->rate_sample,
                  "Seconds between the two readings of a replicating database's apply rate (0: "
                  "not measured)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0))
      ->type_name("SECONDS");
  cmd->add_flag("--tables", args->tables,
                "Every step too: table copies (and their slices), index builds, phases");
  cmd->callback([&run, args] { run = [args] { return RunStatus(*args); }; });
}

}  // namespace pgcourier::cli
