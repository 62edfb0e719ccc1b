#include "verify_command.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "cli_support.h"
#include "report/verify_report.h"
#include "verify/verify_servers.h"

namespace pgcourier::cli {
namespace {

struct VerifyArgs {
  ServerArgs server;
  ObjectFilter filter;
  bool show_matches = false;
  bool owners = false;
  bool grants = false;
  double lock_timeout = 600;  // seconds
};

int RunVerify(const VerifyArgs& args) {
  CheckOptions server;
  if (!FillCheckOptions("verify", args.server, server)) return kExitUsage;
  VerifyServersOptions options;
  options.source = server.source;
  options.target = server.target;
  options.include_databases = server.include_databases;
  options.exclude_databases = server.exclude_databases;
  options.jobs = server.jobs;
  options.filter = args.filter;
  options.connect_timeout = server.connect_timeout;
  options.cancel = server.cancel;
  options.owners = args.owners;
  options.grants = args.grants;
  options.lock_timeout = std::chrono::milliseconds(static_cast<int64_t>(args.lock_timeout * 1000));
  Result<std::vector<DatabaseVerification>> verified = VerifyServers(options);
  if (!verified.ok()) return ReportError("verify", verified.status());
  const std::vector<DatabaseVerification>& results = *verified;
  if (args.server.json) {
    PrintOut(VerifyToJson(results).dump(2) + "\n");
  } else {
    PrintOut(RenderVerifyText(results, args.show_matches));
  }
  for (const auto& r : results) {
    if (!r.ok()) return kExitBlocked;
  }
  return kExitOk;
}

}  // namespace

void AddVerifyCommand(CLI::App& app, std::function<int()>& run) {
  auto args = std::make_shared<VerifyArgs>();
  CLI::App* cmd = app.add_subcommand(
      "verify",
      "Compares source and target: row counts and content checksums of every table (computed "
      "on the servers), sequence values, the schema objects present, the database's settings, "
      "comment and connection limit, and its large objects. Exit status 0 when they match. On a "
      "source that takes writes, run it after writes stopped.");
  AddServerOptions(cmd, args->server);
  AddFilterOptions(cmd, args->filter);
  cmd->add_flag("--all", args->show_matches, "List matching tables too, not only differences");
  cmd->add_flag("--preserve-owners", args->owners,
                "Compare the owners of large objects too (a move with --preserve-owners keeps "
                "them)");
  cmd->add_flag("--preserve-acl", args->grants,
                "Compare the grants on the database and its large objects too (a move with "
                "--preserve-acl keeps them)");
  cmd->add_option("--lock-timeout", args->lock_timeout,
                  "Seconds a read may wait for a table lock held by another session (an open "
                  "transaction's LOCK TABLE, a DDL); past it the verification fails naming the "
                  "table and the sessions holding the lock, never as a difference. 0: no limit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->callback([&run, args] { run = [args] { return RunVerify(*args); }; });
}

}  // namespace pgcourier::cli
