#include "cutover_command.h"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli_support.h"
#include "log_output.h"
#include "migrate/cleanup.h"
#include "migrate/cutover.h"
#include "migrate/migration.h"
#include "progress.h"
#include "report/cutover_report.h"

namespace pgcourier::cli {
namespace {

struct CutoverArgs {
  std::string dir = "pgcourier-work";
  std::string source;
  std::string target;
  double timeout = 300;
  bool stop_source_writes = false;
  bool keep_rollback = false;
  int jobs = 2;
  bool json = false;
  bool quiet = false;
};

std::string FromEnv(const std::string& value, const char* name) {
  if (!value.empty()) return value;
  const char* env = std::getenv(name);
  return env != nullptr ? env : "";
}

// In JSON form a database that failed is a log line too, with its hint (the
// text form leaves it to the report on standard output).
void LogFailures(const char* phase, const CutoverOutcome& outcome) {
  if (CurrentLogFormat() != LogFormat::kJson) return;
  for (const auto& db : outcome.databases) {
    if (db.state != CutoverState::kFailed && db.state != CutoverState::kCancelled) continue;
    LogLine line;
    line.level = LogLevel::kError;
    line.database = db.name;
    line.phase = phase;
    line.message = db.error;
    line.hint = db.hint;
    WriteJsonLog(line);
  }
}

int RunCutover(const CutoverArgs& args) {
  CutoverOptions options;
  options.work_dir = args.dir;
  options.source = FromEnv(args.source, "PGCOURIER_SOURCE");
  options.target = FromEnv(args.target, "PGCOURIER_TARGET");
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(args.timeout * 1000));
  options.stop_source_writes = args.stop_source_writes;
  options.keep_rollback = args.keep_rollback;
  options.jobs = args.jobs;
  options.cancel = &InterruptToken();
  ProgressPrinter progress(false);
  if (!args.quiet) options.on_progress = [&progress](const ProgressEvent& e) { progress.Print(e); };
  Result<CutoverOutcome> outcome = Cutover(options);
  progress.Finish();
  if (!outcome.ok()) return ReportError("cutover", outcome.status());
  LogFailures("cutover", *outcome);
  PrintOut(args.json ? CutoverToJson(*outcome).dump(2) + "\n" : RenderCutoverText(*outcome));
  if (InterruptToken().cancelled()) return kExitCancelled;
  return outcome->ok() ? kExitOk : kExitBlocked;
}

int RunRollback(const CutoverArgs& args) {
  CutoverOptions options;
  options.work_dir = args.dir;
  options.source = FromEnv(args.source, "PGCOURIER_SOURCE");
  options.target = FromEnv(args.target, "PGCOURIER_TARGET");
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(args.timeout * 1000));
  options.jobs = args.jobs;
  options.cancel = &InterruptToken();
  ProgressPrinter progress(false);
  if (!args.quiet) options.on_progress = [&progress](const ProgressEvent& e) { progress.Print(e); };
  Result<CutoverOutcome> outcome = Rollback(options);
  progress.Finish();
  if (!outcome.ok()) return ReportError("rollback", outcome.status());
  LogFailures("rollback", *outcome);
  PrintOut(args.json ? RollbackToJson(*outcome).dump(2) + "\n" : RenderRollbackText(*outcome));
  if (InterruptToken().cancelled()) return kExitCancelled;
  return outcome->ok() ? kExitOk : kExitBlocked;
}

int RunCleanup(const CutoverArgs& args) {
  CleanupOptions options;
  options.work_dir = args.dir;
  options.source = FromEnv(args.source, "PGCOURIER_SOURCE");
  options.target = FromEnv(args.target, "PGCOURIER_TARGET");
  options.cancel = &InterruptToken();
  Result<CleanupOutcome> outcome = Cleanup(options);
  if (!outcome.ok()) return ReportError("cleanup", outcome.status());
  PrintOut(args.json ? CleanupToJson(*outcome).dump(2) + "\n" : RenderCleanupText(*outcome));
  return outcome->ok() ? kExitOk : kExitBlocked;
}

void AddCommon(CLI::App* cmd, CutoverArgs& args) {
  cmd->add_option("--dir", args.dir, "Work directory of the migration")->capture_default_str();
  cmd->add_option("--source", args.source,
                  "The migration's source again, with its password (default: as recorded, the "
                  "password from PGPASSWORD or .pgpass)");
  cmd->add_option("--target", args.target, "The migration's target again, with its password");
  cmd->add_flag("--json", args.json, "JSON on standard output");
}

}  // namespace

void AddCutoverCommands(CLI::App& app, std::function<int()>& run) {
  auto cut = std::make_shared<CutoverArgs>();
  CLI::App* cmd = app.add_subcommand(
      "cutover",
      "Finishes the databases that replicate: waits until the target has applied every change, "
      "syncs sequences, copies what replication does not carry and holds a snapshot of both "
      "sides (the switch moment: writes may go to the target from then on), removes the "
      "publication, slot and subscription, and verifies everything at the switch moment's "
      "snapshots.");
  AddCommon(cmd, *cut);
  cmd->add_option("--timeout", cut->timeout, "Seconds to wait for the target to catch up")
      ->capture_default_str();
  cmd->add_flag("--stop-source-writes", cut->stop_source_writes,
                "First make the source databases read-only for new transactions (prints how "
                "to undo it)");
  cmd->add_flag("--keep-rollback", cut->keep_rollback,
                "Keep a way back (with --stop-source-writes): the old source follows the new "
                "primary (a publication and slot on the target, a subscription on the source) "
                "until pgcourier rollback or cleanup; checked before the source is touched");
  cmd->add_option("--jobs,-j", cut->jobs, "Parallel sessions for the verification")
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", cut->quiet, "No progress lines on standard error");
  cmd->callback([&run, cut] { run = [cut] { return RunCutover(*cut); }; });

  auto back = std::make_shared<CutoverArgs>();
  CLI::App* rollback = app.add_subcommand(
      "rollback",
      "Switches back to the old source after cutover --keep-rollback, without losing the "
      "writes made on the target: refused when the way back is broken; makes the target "
      "read-only, waits until the old source has applied everything, copies back sequences "
      "and what replication does not carry, makes the old source writable again, removes the "
      "way back and verifies at the switch moment's snapshots.");
  AddCommon(rollback, *back);
  rollback->add_option("--timeout", back->timeout, "Seconds to wait for the old source to catch up")
      ->capture_default_str();
  rollback->add_option("--jobs,-j", back->jobs, "Parallel sessions for the verification")
      ->capture_default_str();
  rollback->add_flag("--quiet,-q", back->quiet, "No progress lines on standard error");
  rollback->callback([&run, back] { run = [back] { return RunRollback(*back); }; });

  auto clean = std::make_shared<CutoverArgs>();
  CLI::App* cleanup = app.add_subcommand(
      "cleanup",
      "Removes every replication object this migration made (subscriptions, slots, "
      "publications) on both sides; safe to run at any time, and again.");
  AddCommon(cleanup, *clean);
  cleanup->callback([&run, clean] { run = [clean] { return RunCleanup(*clean); }; });
}

}  // namespace pgcourier::cli
