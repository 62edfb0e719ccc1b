#include "sync_schema_command.h"

#include <cstdlib>
#include <memory>
#include <string>

#include "cli_support.h"
#include "migrate/sync_schema.h"
#include "report/sync_schema_report.h"

namespace pgcourier::cli {
namespace {

struct SyncSchemaArgs {
  std::string dir = "pgcourier-work";
  std::string source;
  std::string target;
  bool apply = false;
  bool json = false;
};

std::string FromEnv(const std::string& value, const char* name) {
  if (!value.empty()) return value;
  const char* env = std::getenv(name);
  return env != nullptr ? env : "";
}

int RunSyncSchema(const SyncSchemaArgs& args) {
  SyncSchemaOptions options;
  options.work_dir = args.dir;
  options.source = FromEnv(args.source, "PGCOURIER_SOURCE");
  options.target = FromEnv(args.target, "PGCOURIER_TARGET");
  options.apply = args.apply;
  options.cancel = &InterruptToken();
  Result<SyncSchemaOutcome> outcome = SyncSchema(options);
  if (!outcome.ok()) return ReportError("sync-schema", outcome.status());
  PrintOut(args.json ? SyncSchemaToJson(*outcome).dump(2) + "\n" : RenderSyncSchemaText(*outcome));
  if (InterruptToken().cancelled()) return kExitCancelled;
  return outcome->ok() ? kExitOk : kExitBlocked;
}

}  // namespace

void AddSyncSchemaCommand(CLI::App& app, std::function<int()>& run) {
  auto args = std::make_shared<SyncSchemaArgs>();
  CLI::App* cmd = app.add_subcommand(
      "sync-schema",
      "While databases replicate: compares the tables the migration moves on both servers and "
      "prints the DDL that brings the target in line (new columns, tables and partitions on the "
      "source). With --apply, runs what adds on the target, adds new tables to the migration's "
      "publication, refreshes the subscription so they are copied, and waits until its workers "
      "stop failing. Exit status 0 when nothing is left to change, 1 otherwise.");
  cmd->add_option("--dir", args->dir, "Work directory of the migration")->capture_default_str();
  cmd->add_option("--source", args->source,
                  "The migration's source again, with its password (default: as recorded, the "
                  "password from PGPASSWORD or .pgpass)");
  cmd->add_option("--target", args->target, "The migration's target again, with its password");
  cmd->add_flag("--apply", args->apply,
                "Run the additive statements (dropped columns and type changes are only printed)");
  cmd->add_flag("--json", args->json, "JSON on standard output (pgcourier.sync-schema/1)");
  cmd->callback([&run, args] { run = [args] { return RunSyncSchema(*args); }; });
}

}  // namespace pgcourier::cli
