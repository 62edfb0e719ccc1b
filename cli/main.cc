// pgcourier: moves PostgreSQL databases between servers and providers.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "app.h"
#include "cli_support.h"

int main(int argc, char** argv) {
  using namespace pgcourier::cli;  // NOLINT(google-build-using-namespace)
  std::unique_ptr<CommandLine> line = MakeCommandLine();
  try {
    line->app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = line->app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  ScrubPasswordsFromArgv(argc, argv);

  auto logger = spdlog::stderr_color_mt("pgcourier");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(line->log_level));

  InstallInterruptHandlers();
  return line->run ? line->run() : kExitUsage;
}
