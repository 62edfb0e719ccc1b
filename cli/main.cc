// pgcourier: moves PostgreSQL databases between servers and providers.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <functional>

#include "check_command.h"
#include "cli_support.h"
#include "cutover_command.h"
#include "migrate_command.h"
#include "status_command.h"
#include "sync_schema_command.h"
#include "verify_command.h"

int main(int argc, char** argv) {
  using namespace pgcourier::cli;  // NOLINT(google-build-using-namespace)
  CLI::App app{
      "pgcourier moves PostgreSQL databases from one server or provider to another, safely and "
      "with proof that nothing was lost.",
      "pgcourier"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "pgcourier 0.1.0");
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "debug, info, warn or error (to stderr)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();

  std::function<int()> run;
  AddCheckCommand(app, run);
  AddMigrateCommand(app, run);
  AddVerifyCommand(app, run);
  AddCutoverCommands(app, run);
  AddStatusCommand(app, run);
  AddSyncSchemaCommand(app, run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  ScrubPasswordsFromArgv(argc, argv);

  auto logger = spdlog::stderr_color_mt("pgcourier");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));

  InstallInterruptHandlers();
  return run ? run() : kExitUsage;
}
