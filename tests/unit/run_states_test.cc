// The states' names are the store's and the JSON's text: they must never
// change with the code.
#include "state/run_states.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace pgcourier {
namespace {

template <typename E>
void ExpectRoundTrip(const std::vector<std::pair<E, std::string>>& all) {
  for (const auto& [value, name] : all) {
    EXPECT_EQ(std::string(Name(value)), name);
    EXPECT_EQ(ParseName<E>(name), value) << name;
    EXPECT_EQ(nlohmann::json(value), nlohmann::json(name));
    EXPECT_EQ(fmt::format("{}", value), name);
  }
  EXPECT_FALSE(ParseName<E>("no such state").has_value());
  EXPECT_FALSE(ParseName<E>("").has_value());
}

TEST(RunStatesTest, NamesAreTheStoredText) {
  ExpectRoundTrip<DatabaseState>({{DatabaseState::kPending, "pending"},
                                  {DatabaseState::kSchema, "schema"},
                                  {DatabaseState::kCopying, "copying"},
                                  {DatabaseState::kIndexing, "indexing"},
                                  {DatabaseState::kVerifying, "verifying"},
                                  {DatabaseState::kSyncing, "syncing"},
                                  {DatabaseState::kCutover, "cutover"},
                                  {DatabaseState::kDone, "done"},
                                  {DatabaseState::kFailed, "failed"},
                                  {DatabaseState::kCancelled, "cancelled"}});
  ExpectRoundTrip<RunState>({{RunState::kRunning, "running"},
                             {RunState::kSyncing, "syncing"},
                             {RunState::kDone, "done"},
                             {RunState::kFailed, "failed"},
                             {RunState::kCancelled, "cancelled"}});
  ExpectRoundTrip<Method>(
      {{Method::kAuto, "auto"}, {Method::kReplication, "replication"}, {Method::kCopy, "copy"}});
  ExpectRoundTrip<StepKind>({{StepKind::kPhase, "phase"},
                             {StepKind::kCopy, "copy"},
                             {StepKind::kIndex, "index"},
                             {StepKind::kCompare, "compare"}});
  ExpectRoundTrip<StepState>({{StepState::kPending, "pending"},
                              {StepState::kRunning, "running"},
                              {StepState::kDone, "done"},
                              {StepState::kFailed, "failed"}});
  ExpectRoundTrip<ChangeState>({{ChangeState::kMade, "made"}, {ChangeState::kUndone, "undone"}});
  ExpectRoundTrip<Side>({{Side::kSource, "source"}, {Side::kTarget, "target"}});
}

TEST(RunStatesTest, WhatResumeLeavesAlone) {
  EXPECT_TRUE(FinishedForMigrate(DatabaseState::kDone));
  EXPECT_TRUE(FinishedForMigrate(DatabaseState::kSyncing));
  EXPECT_TRUE(FinishedForMigrate(DatabaseState::kCutover));
  for (DatabaseState s : {DatabaseState::kPending, DatabaseState::kSchema, DatabaseState::kCopying,
                          DatabaseState::kIndexing, DatabaseState::kVerifying,
                          DatabaseState::kFailed, DatabaseState::kCancelled}) {
    EXPECT_FALSE(FinishedForMigrate(s)) << Name(s);
    EXPECT_FALSE(Replicating(s)) << Name(s);
  }
  EXPECT_TRUE(Replicating(DatabaseState::kSyncing));
  EXPECT_TRUE(Replicating(DatabaseState::kCutover));
  EXPECT_FALSE(Replicating(DatabaseState::kDone));
}

TEST(RunStatesTest, EndStateOfARun) {
  using D = DatabaseState;
  EXPECT_EQ(EndState({}), RunState::kDone);
  EXPECT_EQ(EndState({D::kDone, D::kDone}), RunState::kDone);
  EXPECT_EQ(EndState({D::kDone, D::kSyncing}), RunState::kSyncing);
  EXPECT_EQ(EndState({D::kSyncing, D::kCancelled}), RunState::kCancelled);
  EXPECT_EQ(EndState({D::kCancelled, D::kSyncing}), RunState::kCancelled);
  EXPECT_EQ(EndState({D::kCancelled, D::kFailed, D::kSyncing}), RunState::kFailed);
  EXPECT_EQ(EndState({D::kFailed, D::kDone}), RunState::kFailed);
}

}  // namespace
}  // namespace pgcourier
