#include "verify_command.h"

#include <memory>

#include "catalog/server_facts.h"
#include "cli_support.h"
#include "pg/connection.h"
#include "preflight/checker.h"
#include "report/verify_report.h"
#include "verify/verifier.h"

namespace pgcourier::cli {
namespace {

struct VerifyArgs {
  ServerArgs server;
  ObjectFilter filter;
  bool show_matches = false;
};

int RunVerify(const VerifyArgs& args) {
  CheckOptions options;
  if (!FillCheckOptions("verify", args.server, options)) return kExitUsage;
  Result<ConnInfo> source = ConnInfo::Parse(options.source);
  if (!source.ok()) return ReportError("verify", source.status().WithContext("--source"));
  Result<ConnInfo> target = ConnInfo::Parse(options.target);
  if (!target.ok()) return ReportError("verify", target.status().WithContext("--target"));

  const std::string named = source->ExplicitDatabase();
  ConnectOptions connect;
  connect.role = "source";
  connect.total_timeout = options.connect_timeout;
  connect.cancel = options.cancel;
  Result<std::unique_ptr<Connection>> conn =
      Connection::Connect(named.empty() ? source->WithDatabase("postgres") : *source, connect);
  if (!conn.ok()) return ReportError("verify", conn.status());
  Result<ServerFacts> facts = ReadServerFacts(**conn, Deadline::After(std::chrono::minutes(2)));
  if (!facts.ok()) return ReportError("verify", facts.status());
  std::vector<std::string> names = SelectDatabaseNames(
      facts->databases, named, options.include_databases, options.exclude_databases);
  if (names.empty()) {
    return ReportError("verify", Status(StatusCode::kInvalidArgument,
                                        "no database of the source matches the selection",
                                        "check --databases / --exclude-database"));
  }
  const bool single = !named.empty() && options.include_databases.empty();

  VerifyOptions verify;
  verify.jobs = options.jobs;
  verify.filter = args.filter;
  verify.left_out_extensions = ProviderOnlyExtensions();
  verify.connect_timeout = options.connect_timeout;
  verify.cancel = options.cancel;
  std::vector<DatabaseVerification> results;
  for (const auto& name : names) {
    std::string target_name = TargetDatabaseName(name, single, target->ExplicitDatabase());
    Result<DatabaseVerification> verified =
        VerifyDatabase(source->WithDatabase(name), target->WithDatabase(target_name), verify);
    if (!verified.ok()) return ReportError("verify", verified.status());
    results.push_back(std::move(*verified));
  }
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
      "on the servers), sequence values, and the schema objects present. Exit status 0 when "
      "they match. On a source that takes writes, run it after writes stopped.");
  AddServerOptions(cmd, args->server);
  AddFilterOptions(cmd, args->filter);
  cmd->add_flag("--all", args->show_matches, "List matching tables too, not only differences");
  cmd->callback([&run, args] { run = [args] { return RunVerify(*args); }; });
}

}  // namespace pgcourier::cli
