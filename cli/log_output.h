// Everything pgcourier writes on standard error (progress events, the
// library's diagnostics through spdlog, errors) goes through here, in one of
// two forms: text (the default: timestamped lines for people) or JSON
// (`--log-format json`: one object a line for log pipelines, docs/logs.md).
// In JSON form nothing else reaches standard error: spdlog's default logger
// writes through the same encoder, and child processes' output is captured
// by the core (util/process.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace pgcourier::cli {

enum class LogFormat { kText, kJson };

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// One event or diagnostic. Empty strings are absent (null in JSON).
struct LogLine {
  LogLevel level = LogLevel::kInfo;
  std::string database = {};  // the source database it is about
  std::string phase = {};     // "check", "snapshot", "data", "cutover", ...
  std::string object = {};    // a table, index or check's object
  std::string message = {};
  std::string hint = {};  // what to do, for a warning or an error
  int64_t done = 0;       // units done of `total` in the phase
  int64_t total = 0;      // 0: no progress figures on this line
};

// "2026-12-02T14:03:15.123Z": RFC 3339, UTC, milliseconds.
std::string Rfc3339Millis(std::chrono::system_clock::time_point at);

// The line as one JSON object and a newline, fields in a stable order:
// time, level, command, database, phase, object, message, hint (and done,
// total when total > 0). Passwords of connection strings in any field are
// masked (util/redact.h).
std::string JsonLogLine(const LogLine& line, const std::string& command,
                        std::chrono::system_clock::time_point at);

// The form chosen on the command line and the subcommand that runs, set
// once by main before any line is written.
void SetLogFormat(LogFormat format, std::string command);
LogFormat CurrentLogFormat();

// Replaces spdlog's default logger with one writing to standard error in
// the current form, at `level` ("trace" ... "off").
void InstallLogger(const std::string& level);

// Writes a line in JSON form on standard error, whole (one write).
// Thread-safe. Call only in JSON form; text lines are each caller's own.
void WriteJsonLog(const LogLine& line);

// Writes a text line on standard error as it is, passwords masked.
void WriteTextLog(const std::string& text);

}  // namespace pgcourier::cli
