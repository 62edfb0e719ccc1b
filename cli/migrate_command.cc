#include "migrate_command.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli_support.h"
#include "migrate/migration.h"
#include "progress.h"
#include "report/migrate_report.h"
#include "util/size.h"

namespace pgcourier::cli {
namespace {

struct MigrateArgs {
  ServerArgs server;
  std::string method = "auto";
  std::string dir = "pgcourier-work";
  bool preserve_owners = false;
  bool preserve_acl = false;
  ObjectFilter filter;
  bool roles = false;
  bool no_role_passwords = false;
  bool resume = false;
  bool replica_identity_full = false;
  std::string verify = "full";
  std::string copy_format = "auto";
  std::string slice_size;
  double lock_timeout = 600;  // seconds
  bool quiet = false;
  bool no_schema_trial = false;
};

int RunMigrate(const MigrateArgs& args) {
  MigrateOptions options;
  if (args.resume) {
    // The recorded run's choices stand; only how to reach the servers, the
    // jobs and the tools may be given again.
    if (!args.filter.empty() || !args.server.databases.empty() ||
        !args.server.exclude_databases.empty() || args.preserve_owners || args.preserve_acl ||
        args.roles || args.no_role_passwords || args.replica_identity_full ||
        args.verify != "full" || args.copy_format != "auto") {
      LogError("migrate",
               "--resume continues the run recorded in " + args.dir +
                   " with the databases, filters and policies it was started with",
               "leave those options out");
      return kExitUsage;
    }
  }
  if (!FillCheckOptions("migrate", args.server, options.check, !args.resume)) return kExitUsage;
  // Options that would be silently ignored are mistakes: say so.
  if (args.no_role_passwords && !args.roles) {
    LogError("migrate", "--no-role-passwords only applies with --roles (which creates the roles)",
             "add --roles or leave --no-role-passwords out");
    return kExitUsage;
  }
  if (args.replica_identity_full && args.method == "copy") {
    LogError("migrate",
             "--replica-identity-full only applies to the replication method, not to --method "
             "copy",
             "leave it out or use --method auto|replication");
    return kExitUsage;
  }
  options.resume = args.resume;
  options.check.schema_trial = !args.no_schema_trial;
  if (!args.slice_size.empty()) {
    Result<int64_t> size = ParseByteSize(args.slice_size);
    if (!size.ok() || *size <= 0) {
      LogError("migrate", "--slice-size " + args.slice_size + " is not a size",
               "give a size such as 64MB or 1GB");
      return kExitUsage;
    }
    options.split_bytes = *size;
  }
  options.lock_timeout = std::chrono::milliseconds(static_cast<int64_t>(args.lock_timeout * 1000));
  options.roles = args.roles;
  options.replica_identity_full = args.replica_identity_full;
  options.role_options.copy_passwords = !args.no_role_passwords;
  options.check.method = *ParseName<Method>(args.method);
  options.verify_counts_only = args.verify == "counts";
  options.copy_as_text = args.copy_format == "text";
  options.work_dir = args.dir;
  options.policy.preserve_owners = args.preserve_owners;
  options.policy.preserve_acl = args.preserve_acl;
  options.filter = args.filter;
  options.check.filter = args.filter;  // tables left out need not be readable
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
      "streams at one snapshot, indexes and constraints, sequences, then verifies every table; "
      "with the replication method, the target then follows the source until pgcourier "
      "cutover. Exit status 0 only when everything moved and verified (and replicates).");
  AddServerOptions(cmd, args->server);
  cmd->add_option("--method", args->method,
                  "auto: replication (near-zero downtime; finish with pgcourier cutover) for "
                  "every database whose preconditions hold, else copy, with the reason; "
                  "replication: never falls back; copy: one bulk copy (stop the source's writes "
                  "first)")
      ->check(CLI::IsMember({"auto", "copy", "replication"}))
      ->capture_default_str();
  cmd->add_option("--dir", args->dir, "Work directory: schema archives and the run's state")
      ->capture_default_str();
  cmd->add_flag("--preserve-owners", args->preserve_owners,
                "Keep the source's object owners (the roles must exist on the target)");
  cmd->add_flag("--preserve-acl", args->preserve_acl,
                "Apply the source's GRANTs (the roles must exist on the target)");
  AddFilterOptions(cmd, args->filter);
  cmd->add_flag("--roles", args->roles,
                "First create the source's roles missing on the target (attributes, "
                "memberships, settings, password hashes where readable); provider roles are "
                "left out");
  cmd->add_flag("--no-role-passwords", args->no_role_passwords,
                "With --roles: create roles without their passwords");
  cmd->add_flag("--resume", args->resume,
                "Continue the interrupted migration recorded in --dir: finished tables are "
                "kept, unfinished ones copied again, nothing twice");
  cmd->add_flag("--replica-identity-full", args->replica_identity_full,
                "Replication method: set REPLICA IDENTITY FULL on the source's tables without "
                "a primary key, so they replicate too (this changes the source; without it "
                "they are copied again at cutover)");
  cmd->add_option("--slice-size", args->slice_size,
                  "Tables over 1.5 times this size are copied in slices, in parallel "
                  "(default 1GB)");
  cmd->add_option("--verify", args->verify,
                  "full: every table's rows compared with the source's, contents and count "
                  "(the source's as the copy read them, the target's read back once); counts: "
                  "row counts only, and the report says that contents were not compared")
      ->check(CLI::IsMember({"full", "counts"}))
      ->capture_default_str();
  cmd->add_option("--copy-format", args->copy_format,
                  "auto: the rows of each table whose column types all have a binary form that "
                  "is the same on every server (built-in types, arrays and domains of them) "
                  "travel in COPY's binary form, the others' as text; text: every table's as "
                  "text")
      ->check(CLI::IsMember({"auto", "text"}))
      ->capture_default_str();
  cmd->add_option("--lock-timeout", args->lock_timeout,
                  "Seconds a step may wait for a table lock held by another session, or the "
                  "replication slot for the transactions open on the source; while it waits, "
                  "the sessions it waits for are named every few seconds, past it the database "
                  "fails (resume once they are gone). 0: no limit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--no-schema-trial", args->no_schema_trial,
                "Skip the checks' trial restore of the schema on the target (a failure the "
                "target would raise then comes after the data)");
  cmd->add_flag("--quiet,-q", args->quiet, "No progress lines on standard error");
  cmd->callback([&run, args] { run = [args] { return RunMigrate(*args); }; });
}

}  // namespace pgcourier::cli
