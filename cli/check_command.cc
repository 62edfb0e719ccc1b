#include "check_command.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli_support.h"
#include "preflight/checker.h"
#include "report/check_report.h"
#include "util/size.h"

namespace pgcourier::cli {
namespace {

struct CheckArgs {
  std::string source;
  std::string target;
  std::string method = "auto";
  int jobs = 4;
  bool json = false;
  bool quiet = false;
  std::vector<std::string> pg_bindirs;
  std::vector<std::string> databases;
  std::vector<std::string> exclude_databases;
  std::string target_storage_limit;
  double connect_timeout = 30;
};

std::string FromEnvIfEmpty(const std::string& value, const char* name) {
  if (!value.empty()) return value;
  const char* env = std::getenv(name);
  return env != nullptr ? env : "";
}

int RunCheck(const CheckArgs& args) {
  CheckOptions options;
  options.source = FromEnvIfEmpty(args.source, "PGCOURIER_SOURCE");
  options.target = FromEnvIfEmpty(args.target, "PGCOURIER_TARGET");
  if (options.source.empty() || options.target.empty()) {
    std::fprintf(stderr,
                 "pgcourier check: both --source and --target are needed (or PGCOURIER_SOURCE "
                 "and PGCOURIER_TARGET in the environment)\n");
    return kExitUsage;
  }
  options.method = *ParseMethod(args.method);
  options.jobs = args.jobs;
  options.pg_bindirs = args.pg_bindirs;
  options.include_databases = args.databases;
  options.exclude_databases = args.exclude_databases;
  options.connect_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(args.connect_timeout * 1000));
  options.cancel = &InterruptToken();
  if (!args.target_storage_limit.empty()) {
    Result<int64_t> limit = ParseByteSize(args.target_storage_limit);
    if (!limit.ok()) {
      std::fprintf(stderr, "pgcourier check: --target-storage-limit: %s (%s)\n",
                   limit.status().message().c_str(), limit.status().hint().c_str());
      return kExitUsage;
    }
    options.target_storage_limit = *limit;
  }

  Result<CheckReport> report = RunChecks(options);
  if (!report.ok()) {
    const Status& error = report.status();
    if (error.code() == StatusCode::kCancelled) {
      std::fprintf(stderr, "pgcourier check: cancelled\n");
      return kExitCancelled;
    }
    std::fprintf(stderr, "pgcourier check: %s\n", error.message().c_str());
    if (!error.hint().empty()) std::fprintf(stderr, "  hint: %s\n", error.hint().c_str());
    return error.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitBlocked;
  }
  if (args.json) {
    std::string text = CheckReportToJson(*report).dump(2);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  } else {
    TextStyle style;
    style.color = ::isatty(STDOUT_FILENO) != 0 && std::getenv("NO_COLOR") == nullptr;
    style.show_passes = !args.quiet;
    std::string text = RenderCheckText(*report, style);
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  return report->blocked() ? kExitBlocked : kExitOk;
}

}  // namespace

void AddCheckCommand(CLI::App& app, std::function<int()>& run) {
  auto args = std::make_shared<CheckArgs>();
  CLI::App* cmd = app.add_subcommand(
      "check",
      "Pre-flight checks: tells, before anything is touched, whether a move from --source to "
      "--target will work and what to fix if not. Reads both servers; changes nothing.");
  cmd->add_option("--source", args->source,
                  "Source connection string (URI or key=value, as libpq takes them; default "
                  "$PGCOURIER_SOURCE). Naming a database moves only that one.");
  cmd->add_option("--target", args->target,
                  "Target connection string (default $PGCOURIER_TARGET).");
  cmd->add_option("--method", args->method, "auto (replication where possible), replication, copy")
      ->check(CLI::IsMember({"auto", "replication", "copy"}))
      ->capture_default_str();
  cmd->add_option("--jobs,-j", args->jobs, "Parallel jobs the move will use")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--databases", args->databases,
                  "Databases to move (glob patterns; repeatable). Default: all.");
  cmd->add_option("--exclude-database", args->exclude_databases,
                  "Databases to leave out (glob patterns; repeatable).");
  cmd->add_option("--pg-bindir", args->pg_bindirs,
                  "Directory with pg_dump/pg_restore to prefer (repeatable).");
  cmd->add_option("--target-storage-limit", args->target_storage_limit,
                  "Storage the target may use, e.g. 10GB: checked against 1.3x the data.");
  cmd->add_option("--connect-timeout", args->connect_timeout,
                  "Seconds to keep trying to connect (serverless servers may be asleep)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Machine-readable output (format pgcourier.check/1)");
  cmd->add_flag("--quiet,-q", args->quiet, "Show only warnings and failures");
  cmd->callback([&run, args] { run = [args] { return RunCheck(*args); }; });
}

}  // namespace pgcourier::cli
