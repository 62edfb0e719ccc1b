// An application writing to the source while a test migrates, replicates
// and cuts over:
//
//   SourceWriter writer(source_->ConnString("shop"), [](int round) {
//     return fmt::format("INSERT INTO public.t VALUES ({})", round);
//   });
//   writer.WaitForWrites(20);
//   ... migrate ...
//   writer.Stop();
//
// One session of its own runs the round's SQL (rounds 1, 2, ...) every 5 ms
// on a thread, until Stop() or until a statement fails (cutover stopped the
// source's writes): then `on_refused` runs on that thread with the error.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "util/status.h"

namespace pgcourier::testing {

class SourceWriter {
 public:
  using RoundSql = std::function<std::string(int round)>;
  using OnRefused = std::function<void(const Status& refused)>;

  SourceWriter(std::string conninfo, RoundSql round_sql, OnRefused on_refused = {});
  ~SourceWriter();  // Stop()
  SourceWriter(const SourceWriter&) = delete;
  SourceWriter& operator=(const SourceWriter&) = delete;

  // Rounds committed so far.
  int writes() const { return writes_; }
  // Waits until writes() reaches `count`; a failure (not fatal) when it has
  // not within a minute, or the writer stopped short of it.
  void WaitForWrites(int count) const;
  // Ends the writing and waits for the thread.
  void Stop();

 private:
  void Loop();

  const std::string conninfo_;
  const RoundSql round_sql_;
  const OnRefused on_refused_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ended_{false};
  std::atomic<int> writes_{0};
  std::thread thread_;
};

}  // namespace pgcourier::testing
