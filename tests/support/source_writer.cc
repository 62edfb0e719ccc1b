#include "source_writer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <utility>

#include "pg/connection.h"
#include "pg/conninfo.h"

namespace pgcourier::testing {

SourceWriter::SourceWriter(std::string conninfo, RoundSql round_sql, OnRefused on_refused)
    : conninfo_(std::move(conninfo)),
      round_sql_(std::move(round_sql)),
      on_refused_(std::move(on_refused)),
      thread_([this] { Loop(); }) {}

SourceWriter::~SourceWriter() { Stop(); }

void SourceWriter::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void SourceWriter::WaitForWrites(int count) const {
  const auto until = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (writes_ < count) {
    if (ended_ || std::chrono::steady_clock::now() > until) {
      ADD_FAILURE() << "the writer stopped at " << writes_ << " writes, short of " << count;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void SourceWriter::Loop() {
  Result<ConnInfo> info = ConnInfo::Parse(conninfo_);
  Result<std::unique_ptr<Connection>> conn =
      info.ok() ? Connection::Connect(*info, {})
                : Result<std::unique_ptr<Connection>>(info.status());
  if (!conn.ok()) {
    ADD_FAILURE() << "the writer's session: " << conn.status().ToString();
    ended_ = true;
    return;
  }
  for (int round = 1; !stop_; ++round) {
    Status written = (*conn)->Run(round_sql_(round));
    if (!written.ok()) {
      if (on_refused_) on_refused_(written);
      break;
    }
    ++writes_;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ended_ = true;
}

}  // namespace pgcourier::testing
