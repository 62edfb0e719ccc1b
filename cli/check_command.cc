#include "check_command.h"

#include <unistd.h>

#include <cstdlib>
#include <memory>

#include "cli_support.h"
#include "log_output.h"
#include "preflight/checker.h"
#include "report/check_report.h"
#include "util/size.h"

namespace pgcourier::cli {
namespace {

struct CheckArgs {
  ServerArgs server;
  std::string method = "auto";
  bool quiet = false;
  std::string target_storage_limit;
  bool roles = false;
  bool preserve_owners = false;
  bool preserve_acl = false;
  bool no_schema_trial = false;
};

// In JSON form the warnings and failures are log lines too, each with its
// hint (the text form leaves them to the report on standard output).
void LogFindings(const CheckReport& report) {
  if (CurrentLogFormat() != LogFormat::kJson) return;
  for (const CheckItem& item : report.items) {
    if (item.status == CheckStatus::kPass) continue;
    LogLine line;
    line.level = item.status == CheckStatus::kFail ? LogLevel::kError : LogLevel::kWarn;
    line.phase = "check";
    line.object = item.object;
    line.message = item.code + ": " + item.detail;
    line.hint = item.hint;
    WriteJsonLog(line);
  }
}

int RunCheck(const CheckArgs& args) {
  CheckOptions options;
  if (!FillCheckOptions("check", args.server, options)) return kExitUsage;
  options.method = *ParseName<Method>(args.method);
  options.roles = args.roles;
  options.preserve_owners = args.preserve_owners;
  options.preserve_acl = args.preserve_acl;
  options.schema_trial = !args.no_schema_trial;
  if (!args.target_storage_limit.empty()) {
    Result<int64_t> limit = ParseByteSize(args.target_storage_limit);
    if (!limit.ok())
      return ReportError("check", limit.status().WithContext("--target-storage-limit"));
    options.target_storage_limit = *limit;
  }

  Result<CheckReport> report = RunChecks(options);
  if (!report.ok()) return ReportError("check", report.status());
  LogFindings(*report);
  if (args.server.json) {
    PrintOut(CheckReportToJson(*report).dump(2) + "\n");
  } else {
    TextStyle style;
    style.color = ::isatty(STDOUT_FILENO) != 0 && std::getenv("NO_COLOR") == nullptr;
    style.show_passes = !args.quiet;
    PrintOut(RenderCheckText(*report, style));
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
  AddServerOptions(cmd, args->server);
  cmd->add_option("--method", args->method, "auto (replication where possible), replication, copy")
      ->check(CLI::IsMember({"auto", "replication", "copy"}))
      ->capture_default_str();
  cmd->add_option("--target-storage-limit", args->target_storage_limit,
                  "Storage the target may use, e.g. 10GB: checked against 1.3x the data.");
  cmd->add_flag("--roles", args->roles,
                "Check for a migrate --roles, which creates the source's missing roles first");
  cmd->add_flag("--preserve-owners", args->preserve_owners,
                "Check for a migrate --preserve-owners (owners' roles must exist on the target)");
  cmd->add_flag("--preserve-acl", args->preserve_acl,
                "Check for a migrate --preserve-acl (grantees' roles must exist on the target)");
  cmd->add_flag("--no-schema-trial", args->no_schema_trial,
                "Do not try the schema's restore on the target (in a transaction rolled back; "
                "for a database that does not exist there yet, in a scratch database dropped "
                "after it)");
  cmd->add_flag("--quiet,-q", args->quiet, "Show only warnings and failures");
  cmd->callback([&run, args] { run = [args] { return RunCheck(*args); }; });
}

}  // namespace pgcourier::cli
