// The vocabulary of a recorded migration: the states of a run, of a
// database and of a step, the kinds of steps, the migration methods, and
// the sides of a move. Each is an enum in the code and the same lower-case
// text in the work directory's store and in every JSON and text output
// ("copying", "replication", ...), so the stored and printed forms never
// change with the code.
#pragma once

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

namespace pgcourier {

enum class Method { kAuto, kReplication, kCopy };
enum class RunState { kRunning, kSyncing, kDone, kFailed, kCancelled };
enum class DatabaseState {
  kPending,    // not started (the run stopped first)
  kSchema,     // snapshot, target database, pre-data
  kCopying,    // the data phase
  kIndexing,   // sequences, materialized views, ANALYZE
  kVerifying,  // the final verification
  kSyncing,    // copied and verified, replicating until cutover
  kCutover,    // a cutover is running (or was interrupted)
  kDone,
  kFailed,
  kCancelled,
};
enum class StepKind { kPhase, kCopy, kIndex, kCompare };
enum class StepState { kPending, kRunning, kDone, kFailed };
enum class ChangeState { kMade, kUndone };
enum class Side { kSource, kTarget };
// The way back of a database cut over with --keep-rollback (StoredRollback):
// recorded before its objects are made (prepared), the old source following
// the new primary (following), switched back by `pgcourier rollback`
// (rolled back), its objects dropped (removed).
enum class RollbackState { kPrepared, kFollowing, kRolledBack, kRemoved };

// The stored and printed text of a value: "auto", "running", "copying", ...
const char* Name(Method value);
const char* Name(RunState value);
const char* Name(DatabaseState value);
const char* Name(StepKind value);
const char* Name(StepState value);
const char* Name(ChangeState value);
const char* Name(Side value);
const char* Name(RollbackState value);

// The value of a text, std::nullopt when it names none.
template <typename E>
std::optional<E> ParseName(std::string_view text);
template <>
std::optional<Method> ParseName(std::string_view text);
template <>
std::optional<RunState> ParseName(std::string_view text);
template <>
std::optional<DatabaseState> ParseName(std::string_view text);
template <>
std::optional<StepKind> ParseName(std::string_view text);
template <>
std::optional<StepState> ParseName(std::string_view text);
template <>
std::optional<ChangeState> ParseName(std::string_view text);
template <>
std::optional<Side> ParseName(std::string_view text);
template <>
std::optional<RollbackState> ParseName(std::string_view text);

// What the next `migrate --resume` leaves alone: done, or replicating (the
// cutover finishes it).
bool FinishedForMigrate(DatabaseState state);

// A database whose replication is set up (cutover may finish it).
bool Replicating(DatabaseState state);

// The state a run ends in, from its databases' states: failed when any
// failed, else cancelled when any was, else syncing when any replicates,
// else done.
RunState EndState(const std::vector<DatabaseState>& databases);

// JSON and fmt write a value as its Name().
template <typename E>
concept NamedState = requires(E e) {
  { Name(e) } -> std::same_as<const char*>;
};
template <NamedState E>
void to_json(nlohmann::json& j, E value) {
  j = Name(value);
}

}  // namespace pgcourier

template <pgcourier::NamedState E>
struct fmt::formatter<E> : fmt::formatter<std::string_view> {
  auto format(E value, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(Name(value), ctx);  // found by ADL
  }
};
