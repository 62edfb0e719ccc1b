#include "status_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "cli_support.h"
#include "migrate/run_status.h"
#include "report/status_report.h"
#include "serve/status_server.h"
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
  bool serve = false;
  std::string listen = "127.0.0.1:8080";
  std::string token_file;
};

// The token of `--serve`: from --token-file (its first line) or
// PGCOURIER_SERVE_TOKEN, never from the command line, where `ps` shows it.
Result<std::string> ServeToken(const StatusArgs& args) {
  if (args.token_file.empty()) {
    const char* env = std::getenv("PGCOURIER_SERVE_TOKEN");
    return std::string(env == nullptr ? "" : env);
  }
  std::ifstream in(args.token_file);
  std::string token;
  if (!in || !std::getline(in, token)) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("cannot read the token from --token-file {}", args.token_file),
                  "name a readable file whose first line is the token");
  }
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) {
    return Status(StatusCode::kInvalidArgument,
                  fmt::format("--token-file {} holds no token on its first line", args.token_file),
                  "write the token on the file's first line");
  }
  return token;
}

int RunServe(const StatusArgs& args) {
  Result<std::string> token = ServeToken(args);
  if (!token.ok()) return ReportError("status", token.status());
  ServeOptions options;
  options.dir = args.dir;
  options.listen = args.listen;
  options.token = *token;
  options.poll = std::chrono::milliseconds(static_cast<int64_t>(args.watch.value_or(2) * 1000));
  options.rate_sample = std::chrono::milliseconds(static_cast<int64_t>(args.rate_sample * 1000));
  Status served = ServeStatus(options, InterruptToken(), [](const std::string& url) {
    PrintOut(fmt::format("serving the status at {} (Ctrl-C to stop)\n", url));
    std::fflush(stdout);
  });
  if (!served.ok()) {
    // No work directory or no catalog in it: the user named the wrong one.
    if (served.code() == StatusCode::kNotFound) {
      served = Status(StatusCode::kInvalidArgument, served.message(), served.hint());
    }
    return ReportError("status", served);
  }
  return kExitOk;
}

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
  if (args.serve) return RunServe(args);
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
  CLI::Option* serve =
      cmd->add_flag("--serve", args->serve,
                    "Serve the status over HTTP until Ctrl-C: a live page at /, `status --json` at "
                    "/api/status, Prometheus metrics at /metrics; read again every --watch seconds "
                    "(default 2). Read-only.");
  cmd->add_option("--listen", args->listen,
                  "Address and port for --serve (a non-loopback address needs a token: "
                  "PGCOURIER_SERVE_TOKEN or --token-file)")
      ->capture_default_str()
      ->needs(serve)
      ->type_name("ADDRESS:PORT");
  cmd->add_option("--token-file", args->token_file,
                  "File whose first line is the token every --serve request must carry "
                  "(Authorization: Bearer, or ?token=); default: PGCOURIER_SERVE_TOKEN")
      ->needs(serve)
      ->type_name("FILE");
  serve->excludes(cmd->get_option("--json"))->excludes(cmd->get_option("--tables"));
  cmd->callback([&run, args] { run = [args] { return RunStatus(*args); }; });
}

}  // namespace pgcourier::cli
