#include "schema/script_restore.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <string>
#include <utility>

namespace pgcourier {
namespace {

constexpr const char* kSavepoint = "pgcourier_restore";

// pg_restore sets it once, in the script's preamble.
bool SetsClientEncoding(const ScriptEntry& entry) {
  return entry.sql.find("client_encoding") != std::string::npos;
}

// One past the last entry of the chunk that starts at `begin`.
size_t ChunkEnd(const std::vector<ScriptEntry>& entries, size_t begin) {
  if (SetsClientEncoding(entries[begin])) return begin + 1;
  size_t end = begin;
  size_t bytes = 0;
  while (end < entries.size() && end - begin < kScriptChunkEntries) {
    const ScriptEntry& entry = entries[end];
    if (end > begin &&
        (SetsClientEncoding(entry) || bytes + entry.sql.size() > kScriptChunkBytes)) {
      break;
    }
    bytes += entry.sql.size();
    ++end;
  }
  return end;
}

// The server refused a statement (as opposed to a lost connection, a
// deadline or a cancellation, after which nothing more is sent).
bool Refused(const Status& status) {
  return status.code() != StatusCode::kCancelled && status.code() != StatusCode::kTimeout &&
         status.code() != StatusCode::kConnectionFailed;
}

}  // namespace

Result<ScriptRun> RunScriptEntries(Connection& conn, const std::vector<ScriptEntry>& entries,
                                   Deadline deadline) {
  ScriptRun run;
  const std::string savepoint = std::string("SAVEPOINT ") + kSavepoint + ";\n";
  const std::string release = std::string("RELEASE SAVEPOINT ") + kSavepoint;
  for (size_t begin = 0; begin < entries.size();) {
    const size_t end = ChunkEnd(entries, begin);
    // Each entry's statements end with a semicolon; the line break ends a
    // comment that closes an entry.
    std::string chunk = savepoint;
    for (size_t i = begin; i < end; ++i) chunk += entries[i].sql + "\n";
    chunk += release;
    ++run.round_trips;
    Status sent = conn.Run(chunk, deadline);
    if (!sent.ok() && !Refused(sent)) return sent;
    if (!sent.ok()) {
      // Which entry: the chunk again, one entry at a time.
      PGC_RETURN_IF_ERROR(conn.Run(std::string("ROLLBACK TO SAVEPOINT ") + kSavepoint, deadline));
      ++run.round_trips;
      for (size_t i = begin; i < end; ++i) {
        ++run.round_trips;
        Status one = conn.Run(entries[i].sql, deadline);
        if (one.ok()) continue;
        if (!Refused(one)) return one;
        run.failed = static_cast<int>(i);
        run.error = std::move(one);
        return run;
      }
      // Every entry passed on its own: the chunk is in.
      PGC_RETURN_IF_ERROR(conn.Run(release, deadline));
      ++run.round_trips;
    }
    begin = end;
  }
  return run;
}

std::string StatementExcerpt(const std::string& sql) {
  size_t start = 0;
  while (start < sql.size()) {
    size_t end = sql.find('\n', start);
    if (end == std::string::npos) end = sql.size();
    std::string line = sql.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line.rfind("--", 0) == 0 || line.rfind("SET ", 0) == 0 ||
        line.rfind("SELECT pg_catalog.set_config", 0) == 0) {
      continue;
    }
    if (line.size() > 160) line = line.substr(0, 157) + "...";
    return line;
  }
  return {};
}

Status EntryRefused(const ScriptEntry& entry, const Status& error) {
  const std::string statement = StatementExcerpt(entry.sql);
  return Status(error.code(),
                "the target refused " + entry.Describe() + ": " + error.message() +
                    (error.sqlstate().empty() ? "" : " (SQLSTATE " + error.sqlstate() + ")") +
                    (statement.empty() ? "" : "; statement: " + statement),
                error.hint(), error.sqlstate());
}

Status RestorePreDataThrough(const SchemaTools& tools, Connection& target,
                             const ConnInfo& target_db, const std::string& archive,
                             const std::string& list_path, const RestorePolicy& policy) {
  Result<std::string> script = RestoreScript(tools, archive, list_path, policy, "pre-data");
  if (!script.ok()) return script.status();
  Result<std::vector<ScriptEntry>> entries = ParseRestoreScript(*script);
  if (!entries.ok()) {
    // Something pgcourier does not send itself: pg_restore runs it.
    spdlog::debug("pre-data restored by pg_restore: {}", entries.status().ToString());
    return RestoreSection(tools, target_db, archive, list_path, "pre-data", 1, policy);
  }
  PGC_RETURN_IF_ERROR(target.Run("BEGIN"));
  Result<ScriptRun> ran = RunScriptEntries(target, *entries, Deadline::Never());
  if (!ran.ok() || ran->failed >= 0) {
    (void)target.RunIgnoringCancel("ROLLBACK", Deadline::After(std::chrono::minutes(1)));
    if (!ran.ok()) return ran.status();
    return EntryRefused((*entries)[static_cast<size_t>(ran->failed)], ran->error);
  }
  spdlog::debug("pre-data: {} entries in {} round trips", entries->size(), ran->round_trips);
  return target.Run("COMMIT");
}

}  // namespace pgcourier
