#include "state/run_states.h"

#include <array>
#include <utility>

namespace pgcourier {
namespace {

template <typename E, size_t N>
using NameTable = std::array<std::pair<E, const char*>, N>;

constexpr NameTable<Method, 3> kMethods = {
    {{Method::kAuto, "auto"}, {Method::kReplication, "replication"}, {Method::kCopy, "copy"}}};
constexpr NameTable<RunState, 5> kRunStates = {{{RunState::kRunning, "running"},
                                                {RunState::kSyncing, "syncing"},
                                                {RunState::kDone, "done"},
                                                {RunState::kFailed, "failed"},
                                                {RunState::kCancelled, "cancelled"}}};
constexpr NameTable<DatabaseState, 10> kDatabaseStates = {
    {{DatabaseState::kPending, "pending"},
     {DatabaseState::kSchema, "schema"},
     {DatabaseState::kCopying, "copying"},
     {DatabaseState::kIndexing, "indexing"},
     {DatabaseState::kVerifying, "verifying"},
     {DatabaseState::kSyncing, "syncing"},
     {DatabaseState::kCutover, "cutover"},
     {DatabaseState::kDone, "done"},
     {DatabaseState::kFailed, "failed"},
     {DatabaseState::kCancelled, "cancelled"}}};
constexpr NameTable<StepKind, 4> kStepKinds = {{{StepKind::kPhase, "phase"},
                                                {StepKind::kCopy, "copy"},
                                                {StepKind::kIndex, "index"},
                                                {StepKind::kCompare, "compare"}}};
constexpr NameTable<StepState, 4> kStepStates = {{{StepState::kPending, "pending"},
                                                  {StepState::kRunning, "running"},
                                                  {StepState::kDone, "done"},
                                                  {StepState::kFailed, "failed"}}};
constexpr NameTable<ChangeState, 2> kChangeStates = {
    {{ChangeState::kMade, "made"}, {ChangeState::kUndone, "undone"}}};
constexpr NameTable<Side, 2> kSides = {{{Side::kSource, "source"}, {Side::kTarget, "target"}}};
constexpr NameTable<RollbackState, 4> kRollbackStates = {
    {{RollbackState::kPrepared, "prepared"},
     {RollbackState::kFollowing, "following"},
     {RollbackState::kRolledBack, "rolled back"},
     {RollbackState::kRemoved, "removed"}}};

template <typename E, size_t N>
const char* Lookup(const NameTable<E, N>& table, E value) {
  for (const auto& [e, name] : table) {
    if (e == value) return name;
  }
  return "unknown";
}

template <typename E, size_t N>
std::optional<E> Find(const NameTable<E, N>& table, std::string_view text) {
  for (const auto& [e, name] : table) {
    if (text == name) return e;
  }
  return std::nullopt;
}

}  // namespace

const char* Name(Method value) { return Lookup(kMethods, value); }
const char* Name(RunState value) { return Lookup(kRunStates, value); }
const char* Name(DatabaseState value) { return Lookup(kDatabaseStates, value); }
const char* Name(StepKind value) { return Lookup(kStepKinds, value); }
const char* Name(StepState value) { return Lookup(kStepStates, value); }
const char* Name(ChangeState value) { return Lookup(kChangeStates, value); }
const char* Name(RollbackState value) { return Lookup(kRollbackStates, value); }
const char* Name(Side value) { return Lookup(kSides, value); }

template <>
std::optional<Method> ParseName(std::string_view text) {
  return Find(kMethods, text);
}
template <>
std::optional<RunState> ParseName(std::string_view text) {
  return Find(kRunStates, text);
}
template <>
std::optional<DatabaseState> ParseName(std::string_view text) {
  return Find(kDatabaseStates, text);
}
template <>
std::optional<StepKind> ParseName(std::string_view text) {
  return Find(kStepKinds, text);
}
template <>
std::optional<StepState> ParseName(std::string_view text) {
  return Find(kStepStates, text);
}
template <>
std::optional<ChangeState> ParseName(std::string_view text) {
  return Find(kChangeStates, text);
}
template <>
std::optional<Side> ParseName(std::string_view text) {
  return Find(kSides, text);
}
template <>
std::optional<RollbackState> ParseName(std::string_view text) {
  return Find(kRollbackStates, text);
}

bool FinishedForMigrate(DatabaseState state) {
  return state == DatabaseState::kDone || Replicating(state);
}

bool Replicating(DatabaseState state) {
  return state == DatabaseState::kSyncing || state == DatabaseState::kCutover;
}

RunState EndState(const std::vector<DatabaseState>& databases) {
  RunState end = RunState::kDone;
  for (DatabaseState db : databases) {
    if (db == DatabaseState::kFailed) return RunState::kFailed;
    if (db == DatabaseState::kCancelled) end = RunState::kCancelled;
    if (db == DatabaseState::kSyncing && end == RunState::kDone) end = RunState::kSyncing;
  }
  return end;
}

}  // namespace pgcourier
