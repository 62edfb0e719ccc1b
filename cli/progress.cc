#include "progress.h"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "util/size.h"

namespace pgcourier::cli {
namespace {

void Write(const std::string& text) { WriteTextLog(text); }

LogLevel LevelOf(ProgressEvent::Level level) {
  switch (level) {
    case ProgressEvent::Level::kWarning:
      return LogLevel::kWarn;
    case ProgressEvent::Level::kError:
      return LogLevel::kError;
    case ProgressEvent::Level::kInfo:
      break;
  }
  return LogLevel::kInfo;
}

std::string Duration(double seconds) {
  auto s = static_cast<int64_t>(seconds);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

std::string ProgressPrinter::StatusLine(const ProgressEvent& event) {
  std::string line = fmt::format("{} {}", event.database, event.phase);
  if (event.total <= 0) return line;
  double elapsed = std::chrono::duration<double>(Clock::now() - phase_started_).count();
  double fraction = static_cast<double>(event.done) / static_cast<double>(event.total);
  line += fmt::format("  {} / {} ({:.0f}%)", FormatBytes(event.done), FormatBytes(event.total),
                      fraction * 100);
  if (elapsed > 0.5 && event.done > 0) {
    double rate = static_cast<double>(event.done) / elapsed;
    line += fmt::format("  {}/s", FormatBytes(static_cast<int64_t>(rate)));
    if (event.done < event.total) {
      line += "  ETA " + Duration(static_cast<double>(event.total - event.done) / rate);
    }
  }
  return line;
}

void ProgressPrinter::Print(const ProgressEvent& event) {
  if (CurrentLogFormat() == LogFormat::kJson) {
    LogLine line{LevelOf(event.level), event.database, event.phase, event.object,
                 event.message,        event.hint,     event.done,  event.total};
    WriteJsonLog(line);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (event.phase != phase_) {
    phase_ = event.phase;
    phase_started_ = Clock::now();
  }
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  std::string where = event.database.empty() ? "" : event.database + " ";
  const std::string message =
      (event.level == ProgressEvent::Level::kWarning ? "WARNING: " : "") + event.message;
  if (!live_) {
    Write(fmt::format("{:%Y-%m-%dT%H:%M:%S}Z {}{}: {}\n", now, where, event.phase, message));
    return;
  }
  // Clear the status line, print the event above it, draw it again.
  Write(fmt::format("\r\033[K{:%H:%M:%S} {}{}: {}\n", now, where, event.phase, message));
  Write("\033[7m" + StatusLine(event) + "\033[0m");
  drawn_ = true;
}

void ProgressPrinter::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (live_ && drawn_) Write("\r\033[K");
  drawn_ = false;
}

}  // namespace pgcourier::cli
