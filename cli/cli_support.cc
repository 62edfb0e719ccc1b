#include "cli_support.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "log_output.h"
#include "util/redact.h"

namespace pgcourier::cli {

CancelToken& InterruptToken() {
  static CancelToken token;
  return token;
}

namespace {
std::atomic<int> g_interrupts{0};

void OnInterrupt(int signal) {
  if (g_interrupts.fetch_add(1) > 0) {
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  InterruptToken().Cancel();
}
}  // namespace

void InstallInterruptHandlers() {
  (void)InterruptToken();  // create before any signal can arrive
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

void AddServerOptions(CLI::App* cmd, ServerArgs& args) {
  cmd->add_option("--source", args.source,
                  "Source connection string (URI or key=value, as libpq takes them; default "
                  "$PGCOURIER_SOURCE). Naming a database selects only that one.");
  cmd->add_option("--target", args.target, "Target connection string (default $PGCOURIER_TARGET).");
  cmd->add_option("--jobs,-j", args.jobs, "Parallel jobs (connections per server)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--databases", args.databases,
                  "Databases to include (glob patterns; repeatable). Default: all.");
  cmd->add_option("--exclude-database", args.exclude_databases,
                  "Databases to leave out (glob patterns; repeatable).");
  cmd->add_option("--pg-bindir", args.pg_bindirs,
                  "Directory with pg_dump/pg_restore to prefer (repeatable).");
  cmd->add_option("--connect-timeout", args.connect_timeout,
                  "Seconds to keep trying to connect (serverless servers may be asleep)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--json", args.json, "Machine-readable output on standard output");
}

void AddFilterOptions(CLI::App* cmd, ObjectFilter& filter) {
  cmd->add_option("--include-schema", filter.include_schemas,
                  "Schemas to include (glob patterns, case-sensitive; repeatable). Default: all.");
  cmd->add_option("--exclude-schema", filter.exclude_schemas,
                  "Schemas to leave out, schema and data (glob patterns; repeatable).");
  cmd->add_option("--include-table", filter.include_tables,
                  "Tables to include, as schema.table glob patterns (public.*, sales.orders_20*; "
                  "repeatable); other tables are left out. Default: all.");
  cmd->add_option("--exclude-table", filter.exclude_tables,
                  "Tables to leave out, definition and rows (schema.table glob patterns; "
                  "repeatable).");
  cmd->add_option("--exclude-table-data", filter.exclude_table_data,
                  "Tables whose rows are left out; their definition is kept (schema.table glob "
                  "patterns; repeatable).");
}

bool FillCheckOptions(const char* command, const ServerArgs& args, CheckOptions& options,
                      bool servers_required) {
  auto from_env = [](const std::string& value, const char* name) {
    if (!value.empty()) return value;
    const char* env = std::getenv(name);
    return std::string(env != nullptr ? env : "");
  };
  options.source = from_env(args.source, "PGCOURIER_SOURCE");
  options.target = from_env(args.target, "PGCOURIER_TARGET");
  if (servers_required && (options.source.empty() || options.target.empty())) {
    LogError(command,
             "both --source and --target are needed (or PGCOURIER_SOURCE and PGCOURIER_TARGET in "
             "the environment)");
    return false;
  }
  options.jobs = args.jobs;
  options.pg_bindirs = args.pg_bindirs;
  options.include_databases = args.databases;
  options.exclude_databases = args.exclude_databases;
  options.connect_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(args.connect_timeout * 1000));
  options.cancel = &InterruptToken();
  return true;
}

void LogError(const char* command, const std::string& message, const std::string& hint) {
  if (CurrentLogFormat() == LogFormat::kJson) {
    LogLine line;
    line.level = LogLevel::kError;
    line.message = message;
    line.hint = hint;
    WriteJsonLog(line);
    return;
  }
  std::string text = std::string("pgcourier ") + command + ": " + message + "\n";
  if (!hint.empty()) text += "  hint: " + hint + "\n";
  WriteTextLog(text);
}

int ReportError(const char* command, const Status& error) {
  if (error.code() == StatusCode::kCancelled) {
    LogError(command, "cancelled");
    return kExitCancelled;
  }
  LogError(command, error.message(), error.hint());
  return error.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitBlocked;
}

void PrintOut(const std::string& text) { std::fwrite(text.data(), 1, text.size(), stdout); }

void ScrubPasswordsFromArgv(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string masked = MaskPasswords(argv[i]);
    if (masked.size() == std::strlen(argv[i])) std::memcpy(argv[i], masked.data(), masked.size());
  }
}

}  // namespace pgcourier::cli
