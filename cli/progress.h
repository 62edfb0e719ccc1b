// Progress of a migration on standard error: on a terminal, the events scroll
// above a status line that is redrawn in place (phase, bytes done of the
// total, rate, ETA); elsewhere, plain timestamped lines for logs; with
// --log-format json, one JSON object a line (cli/log_output.h).
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "log_output.h"
#include "migrate/migration.h"

namespace pgcourier::cli {

class ProgressPrinter {
 public:
  // `live`: draw the status line (standard error is a terminal; never in
  // JSON form).
  explicit ProgressPrinter(bool live) : live_(live && CurrentLogFormat() == LogFormat::kText) {}
  ProgressPrinter(const ProgressPrinter&) = delete;
  ProgressPrinter& operator=(const ProgressPrinter&) = delete;

  // Thread-safe: copy workers report from several threads.
  void Print(const ProgressEvent& event);
  // Clears the status line, so the summary starts on a clean line.
  void Finish();

 private:
  using Clock = std::chrono::steady_clock;
  std::string StatusLine(const ProgressEvent& event);

  std::mutex mu_;
  bool live_;
  bool drawn_ = false;
  std::string phase_;
  Clock::time_point phase_started_ = Clock::now();
};

}  // namespace pgcourier::cli
