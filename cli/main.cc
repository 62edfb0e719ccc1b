// pgcourier: moves PostgreSQL databases between servers and providers.
#include <CLI/CLI.hpp>
#include <string>

#include "app.h"
#include "cli_support.h"
#include "log_output.h"

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
  std::unique_ptr<CommandLine> line = MakeCommandLine();
  try {
    line->app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0 && LogFormatAskedFor(argc, argv) == LogFormat::kJson) {
      ScrubPasswordsFromArgv(argc, argv);
      SetLogFormat(LogFormat::kJson, "");
      LogError("", e.what(), "see pgcourier --help, or pgcourier COMMAND --help");
      return kExitUsage;
    }
    int code = line->app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  ScrubPasswordsFromArgv(argc, argv);

  const std::vector<CLI::App*> commands = line->app.get_subcommands();
  SetLogFormat(line->log_format == "json" ? LogFormat::kJson : LogFormat::kText,
               commands.empty() ? "" : commands.front()->get_name());
  InstallLogger(line->log_level);

  InstallInterruptHandlers();
  return line->run ? line->run() : kExitUsage;
}
