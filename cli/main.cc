// pgcourier: moves PostgreSQL databases between servers and providers.
#include <CLI/CLI.hpp>
#include <functional>
#include <string>

#include "check_command.h"
#include "cli_support.h"
#include "cutover_command.h"
#include "log_output.h"
#include "migrate_command.h"
#include "status_command.h"
#include "sync_schema_command.h"
#include "verify_command.h"

namespace {

// The log form asked for, read before the arguments are parsed: a parse
// error is said in that form too.
pgcourier::cli::LogFormat LogFormatAskedFor(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--log-format" && i + 1 < argc && std::string(argv[i + 1]) == "json") ||
        arg == "--log-format=json") {
      return pgcourier::cli::LogFormat::kJson;
    }
  }
  return pgcourier::cli::LogFormat::kText;
}

}  // namespace

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
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "text: timestamped lines; json: one JSON object a line (time, level, command, "
                 "database, phase, object, message, hint), and nothing else on stderr")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  // --log-level and --log-format may also follow the command's name.
  app.fallthrough();

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
    if (e.get_exit_code() != 0 && LogFormatAskedFor(argc, argv) == LogFormat::kJson) {
      ScrubPasswordsFromArgv(argc, argv);
      SetLogFormat(LogFormat::kJson, "");
      LogError("", e.what(), "see pgcourier --help, or pgcourier COMMAND --help");
      return kExitUsage;
    }
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  ScrubPasswordsFromArgv(argc, argv);

  const std::vector<CLI::App*> commands = app.get_subcommands();
  SetLogFormat(log_format == "json" ? LogFormat::kJson : LogFormat::kText,
               commands.empty() ? "" : commands.front()->get_name());
  InstallLogger(log_level);

  InstallInterruptHandlers();
  return run ? run() : kExitUsage;
}
