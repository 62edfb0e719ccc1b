#include "app.h"

#include "check_command.h"
#include "cutover_command.h"
#include "migrate_command.h"
#include "status_command.h"
#include "sync_schema_command.h"
#include "verify_command.h"
#include "version.h"

namespace pgcourier::cli {

std::unique_ptr<CommandLine> MakeCommandLine() {
  auto line = std::make_unique<CommandLine>();
  CLI::App& app = line->app;
  app.name("pgcourier");
  app.description(
      "pgcourier moves PostgreSQL databases from one server or provider to another, safely and "
      "with proof that nothing was lost.");
  app.require_subcommand(1);
  app.set_version_flag("--version", VersionLine());
  app.add_option("--log-level", line->log_level, "debug, info, warn or error (to stderr)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.add_option("--log-format", line->log_format,
                 "text: timestamped lines; json: one JSON object a line (time, level, command, "
                 "database, phase, object, message, hint), and nothing else on stderr")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  // --log-level and --log-format may also follow the command's name.
  app.fallthrough();

  AddCheckCommand(app, line->run);
  AddMigrateCommand(app, line->run);
  AddVerifyCommand(app, line->run);
  AddCutoverCommands(app, line->run);
  AddStatusCommand(app, line->run);
  AddSyncSchemaCommand(app, line->run);
  return line;
}

}  // namespace pgcourier::cli
