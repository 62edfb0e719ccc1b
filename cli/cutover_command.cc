#include "cutover_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_support.h"
#include "migrate/cleanup.h"
#include "migrate/cutover.h"
#include "migrate/migration.h"
#include "progress.h"
#include "report/verify_report.h"

namespace pgcourier::cli {
namespace {

struct CutoverArgs {
  std::string dir = "pgcourier-work";
  std::string source;
  std::string target;
  double timeout = 300;
  bool stop_source_writes = false;
  int jobs = 2;
  bool json = false;
  bool quiet = false;
};

std::string FromEnv(const std::string& value, const char* name) {
  if (!value.empty()) return value;
  const char* env = std::getenv(name);
  return env != nullptr ? env : "";
}

int RunCutover(const CutoverArgs& args) {
  CutoverOptions options;
  options.work_dir = args.dir;
  options.source = FromEnv(args.source, "PGCOURIER_SOURCE");
  options.target = FromEnv(args.target, "PGCOURIER_TARGET");
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(args.timeout * 1000));
  options.stop_source_writes = args.stop_source_writes;
  options.jobs = args.jobs;
  options.cancel = &InterruptToken();
  ProgressPrinter progress(false);
  if (!args.quiet) options.on_progress = [&progress](const ProgressEvent& e) { progress.Print(e); };
  Result<CutoverOutcome> outcome = Cutover(options);
  progress.Finish();
  if (!outcome.ok()) return ReportError("cutover", outcome.status());
  nlohmann::json dbs = nlohmann::json::array();
  std::string text;
  for (const auto& db : outcome->databases) {
    nlohmann::json verification = nullptr;
    if (db.verification) verification = VerifyToJson({*db.verification})["databases"][0];
    dbs.push_back({{"dbname", db.name},
                   {"target_dbname", db.target_name},
                   {"status", db.state},
                   {"error", db.error.empty() ? nlohmann::json() : nlohmann::json(db.error)},
                   {"hint", db.hint.empty() ? nlohmann::json() : nlohmann::json(db.hint)},
                   {"writes_stopped_seconds", db.writes_stopped_seconds},
                   {"undo", db.undo.empty() ? nlohmann::json() : nlohmann::json(db.undo)},
                   {"tables_recopied", db.tables_recopied},
                   {"sequences", db.sequences},
                   {"removed", db.removed},
                   {"verification", verification}});
    text += fmt::format("\n{}: {}\n", db.name, db.state);
    if (!db.error.empty()) text += "  error: " + db.error + "\n";
    if (!db.hint.empty()) text += "  -> " + db.hint + "\n";
    if (db.state == "done") {
      text += fmt::format(
          "  writes stopped for {:.1f} s; {} sequence(s) synced, {} table(s) not replicated "
          "copied again\n",
          db.writes_stopped_seconds, db.sequences, db.tables_recopied);
      for (const auto& r : db.removed) text += "  removed " + r + "\n";
      if (db.verification) text += RenderVerifyDatabaseText(*db.verification);
    }
    if (!db.undo.empty()) text += "  the source is read-only; to undo: " + db.undo + "\n";
  }
  text += outcome->ok() ? "\nDONE: the target has everything; point the application at it.\n"
                        : "\nINCOMPLETE: see above; replication of the others goes on.\n";
  if (args.json) {
    PrintOut(nlohmann::json(
                 {{"format", "pgcourier.cutover/1"}, {"ok", outcome->ok()}, {"databases", dbs}})
                 .dump(2) +
             "\n");
  } else {
    PrintOut(text);
  }
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
  if (args.json) {
    PrintOut(nlohmann::json({{"format", "pgcourier.cleanup/1"},
                             {"ok", outcome->ok()},
                             {"removed", outcome->removed},
                             {"undone", outcome->undone},
                             {"problems", outcome->problems}})
                 .dump(2) +
             "\n");
  } else {
    std::string text;
    for (const auto& r : outcome->removed) text += "removed " + r + "\n";
    for (const auto& u : outcome->undone) text += "undone " + u + "\n";
    for (const auto& p : outcome->problems) text += "NOT REMOVED: " + p + "\n";
    if (outcome->removed.empty() && outcome->undone.empty() && outcome->problems.empty()) {
      text += "nothing to remove: no replication object or change of this migration remains\n";
    }
    PrintOut(text);
  }
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
      "syncs sequences, copies what replication does not carry, verifies, and removes the "
      "publication, slot and subscription.");
  AddCommon(cmd, *cut);
  cmd->add_option("--timeout", cut->timeout, "Seconds to wait for the target to catch up")
      ->capture_default_str();
  cmd->add_flag("--stop-source-writes", cut->stop_source_writes,
                "First make the source databases read-only for new transactions (prints how "
                "to undo it)");
  cmd->add_option("--jobs,-j", cut->jobs, "Parallel sessions for the verification")
      ->capture_default_str();
  cmd->add_flag("--quiet,-q", cut->quiet, "No progress lines on standard error");
  cmd->callback([&run, cut] { run = [cut] { return RunCutover(*cut); }; });

  auto clean = std::make_shared<CutoverArgs>();
  CLI::App* cleanup = app.add_subcommand(
      "cleanup",
      "Removes every replication object this migration made (subscriptions, slots, "
      "publications) on both sides; safe to run at any time, and again.");
  AddCommon(cleanup, *clean);
  cleanup->callback([&run, clean] { run = [clean] { return RunCleanup(*clean); }; });
}

}  // namespace pgcourier::cli
