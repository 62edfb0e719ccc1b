#include "log_output.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

#include "util/redact.h"

namespace pgcourier::cli {
namespace {

LogFormat g_format = LogFormat::kText;
std::string g_command;  // NOLINT(runtime/string): set once before any thread starts

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

nlohmann::ordered_json MaskedOrNull(const std::string& text) {
  if (text.empty()) return nullptr;
  return MaskPasswords(text);
}

void WriteWhole(const std::string& text) {
  // One fwrite per line: stdio locks the stream for the call, so lines of
  // different threads never interleave.
  std::fwrite(text.data(), 1, text.size(), stderr);
}

// spdlog's lines in JSON form, through the same encoder as every other line.
class JsonSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    LogLine line;
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug:
        line.level = LogLevel::kDebug;
        break;
      case spdlog::level::info:
        line.level = LogLevel::kInfo;
        break;
      case spdlog::level::warn:
        line.level = LogLevel::kWarn;
        break;
      default:
        line.level = LogLevel::kError;
        break;
    }
    line.message.assign(msg.payload.data(), msg.payload.size());
    WriteWhole(JsonLogLine(line, g_command, msg.time));
  }
  void flush_() override { std::fflush(stderr); }
};

}  // namespace

std::string Rfc3339Millis(std::chrono::system_clock::time_point at) {
  auto millis = std::chrono::time_point_cast<std::chrono::milliseconds>(at);
  auto seconds = std::chrono::time_point_cast<std::chrono::seconds>(millis);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", seconds, (millis - seconds).count());
}

std::string JsonLogLine(const LogLine& line, const std::string& command,
                        std::chrono::system_clock::time_point at) {
  nlohmann::ordered_json out;
  out["time"] = Rfc3339Millis(at);
  out["level"] = LevelName(line.level);
  out["command"] = command.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(command);
  out["database"] = MaskedOrNull(line.database);
  out["phase"] = MaskedOrNull(line.phase);
  out["object"] = MaskedOrNull(line.object);
  out["message"] = MaskPasswords(line.message);
  out["hint"] = MaskedOrNull(line.hint);
  if (line.total > 0) {
    out["done"] = line.done;
    out["total"] = line.total;
  }
  // Server messages may hold bytes that are not UTF-8 (a LATIN1 database's
  // errors): replaced, never a reason to lose the line.
  return out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

void SetLogFormat(LogFormat format, std::string command) {
  g_format = format;
  g_command = std::move(command);
}

LogFormat CurrentLogFormat() { return g_format; }

void InstallLogger(const std::string& level) {
  std::shared_ptr<spdlog::logger> logger;
  if (g_format == LogFormat::kJson) {
    logger = std::make_shared<spdlog::logger>("pgcourier", std::make_shared<JsonSink>());
  } else {
    logger = spdlog::stderr_color_mt("pgcourier");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

void WriteJsonLog(const LogLine& line) {
  WriteWhole(JsonLogLine(line, g_command, std::chrono::system_clock::now()));
}

void WriteTextLog(const std::string& text) { WriteWhole(MaskPasswords(text)); }

}  // namespace pgcourier::cli
