#include "migrate_command.h"

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "cli_support.h"
#include "migrate/migration.h"
#include "progress.h"
#include "report/migrate_report.h"

namespace pgcourier::cli {
namespace {

struct MigrateArgs {
  ServerArgs server;
  std::string method = "copy";
  std::string dir = "pgcourier-work";
  bool preserve_owners = false;
  bool preserve_acl = false;
  ObjectFilter filter;
  bool quiet = false;
};

int RunMigrate(const MigrateArgs& args) {
  MigrateOptions options;
  if (!FillCheckOptions("migrate", args.server, options.check)) return kExitUsage;
  options.check.method = *ParseMethod(args.method);
  options.work_dir = args.dir;
  options.policy.preserve_owners = args.preserve_owners;
  options.policy.preserve_acl = args.preserve_acl;
  options.filter = args.filter;
  ProgressPrinter progress(::isatty(STDERR_FILENO) != 0 && std::getenv("TERM") != nullptr &&
                           std::string(std::getenv("TERM")) != "dumb");
  if (!args.quiet) options.on_progress = [&progress](const ProgressEvent& e) { progress.Print(e); };

  Result<MigrationOutcome> outcome = Migrate(options);
  progress.Finish();
  if (!outcome.ok()) return ReportError("migrate", outcome.status());
  if (args.server.json) {
    PrintOut(MigrateToJson(*outcome).dump(2) + "\n");
  } else {
    PrintOut(RenderMigrateText(*outcome));
  }
  if (InterruptToken().cancelled()) return kExitCancelled;
  return outcome->ok() ? kExitOk : kExitBlocked;
}

}  // namespace

void AddMigrateCommand(CLI::App& app, std::function<int()>& run) {
  auto args = std::make_shared<MigrateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "migrate",
      "Moves databases from --source to --target: checks, schema, data in parallel COPY "
      "streams at one snapshot, indexes and constraints, sequences, then verifies every table. "
      "Exit status 0 only when everything moved and verified.");
  AddServerOptions(cmd, args->server);
  cmd->add_option("--method", args->method,
                  "copy (the source should not take writes during the move); replication comes "
                  "in a later version")
      ->check(CLI::IsMember({"auto", "copy", "replication"}))
      ->capture_default_str();
  cmd->add_option("--dir", args->dir, "Work directory: schema archives and the run's state")
      ->capture_default_str();
  cmd->add_flag("--preserve-owners", args->preserve_owners,
                "Keep the source's object owners (the roles must exist on the target)");
  cmd->add_flag("--preserve-acl", args->preserve_acl,
                "Apply the source's GRANTs (the roles must exist on the target)");
  AddFilterOptions(cmd, args->filter);
  cmd->add_flag("--quiet,-q", args->quiet, "No progress lines on standard error");
  cmd->callback([&run, args] { run = [args] { return RunMigrate(*args); }; });
}

}  // namespace pgcourier::cli
