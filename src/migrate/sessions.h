// The only way migrate/ connects to a server: every session of a kind gets
// the same settings, sent in the round trip that secures its search_path.
//
//   source          (as every session of pgcourier: ConnectOptions::
//                   timeouts_off) statement_timeout,
//                   idle_in_transaction_session_timeout and (17+)
//                   transaction_timeout off, so that the snapshot's holder
//                   may stay idle in its transaction for the whole move;
//                   default_transaction_read_only off, so
//                   that a database cutover made read-only stays writable
//                   for pgcourier's own objects (reads are in READ ONLY
//                   transactions anyway); lock_timeout.
//   target (load)   the same timeouts off, default_transaction_read_only off
//                   (a rollback makes the target read-only, and its
//                   factory has the servers swapped), lock_timeout, and
//                   bulk loading:
//                   synchronous_commit off (a target crash may lose the last
//                   commits; their progress marks go with them, so the run
//                   redoes exactly those; the final state is committed
//                   synchronously) and maintenance_work_mem for the index
//                   builds, as LoadMaintenanceWorkMem says (none: the
//                   server's own).
//   target (admin)  the timeouts off, default_transaction_read_only off and
//                   lock_timeout only: sessions that
//                   create or drop databases, look for earlier work, or
//                   remove replication objects.
//
// Thread-safe: a factory is immutable once made.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "pg/connection.h"
#include "pg/conninfo.h"
#include "util/cancel.h"

namespace pgcourier {

class SessionFactory {
 public:
  enum class TargetUse { kLoad, kAdmin };

  // `load_maintenance_work_mem`: the load sessions' setting ("" for none).
  SessionFactory(ConnInfo source, ConnInfo target, std::chrono::milliseconds connect_timeout,
                 const CancelToken* cancel, std::chrono::milliseconds lock_timeout,
                 std::string load_maintenance_work_mem = "");

  // A session in `database` of the source. `lock_timeout` replaces the
  // factory's for this session (the data phase waits in shorter rounds).
  Result<std::unique_ptr<Connection>> Source(
      const std::string& database,
      std::optional<std::chrono::milliseconds> lock_timeout = std::nullopt) const;
  // A session in `database` of the target.
  Result<std::unique_ptr<Connection>> Target(
      const std::string& database, TargetUse use = TargetUse::kLoad,
      std::optional<std::chrono::milliseconds> lock_timeout = std::nullopt) const;
  // The source's or target's maintenance database ("postgres"): CREATE and
  // DROP DATABASE, reading pg_database.
  Result<std::unique_ptr<Connection>> SourceServer() const;
  Result<std::unique_ptr<Connection>> TargetServer() const;

  // Before a command's first session in `database` of the side `role`
  // ("source" or "target"): RefuseTransactionPooler (pg/pooler.h) with this
  // factory's timeouts and cancel token.
  Status RefusePooler(const std::string& role, const std::string& database,
                      Status* unreached) const;

  // Connection options without settings, for code that opens sessions of
  // its own kind (a replication connection, the verifier's sessions).
  ConnectOptions BareOptions(const std::string& role) const;

  const ConnInfo& source() const { return source_; }
  const ConnInfo& target() const { return target_; }
  std::chrono::milliseconds connect_timeout() const { return connect_timeout_; }
  const CancelToken* cancel() const { return cancel_; }
  std::chrono::milliseconds lock_timeout() const { return lock_timeout_; }

 private:
  ConnInfo source_;
  ConnInfo target_;
  std::chrono::milliseconds connect_timeout_;
  const CancelToken* cancel_;
  std::chrono::milliseconds lock_timeout_;
  std::string load_maintenance_work_mem_;
};

// maintenance_work_mem for the target's load sessions, `jobs` of which may
// build indexes at once: 512MB, but together no more than the target's
// shared_buffers (a server's total memory is not visible from SQL; servers
// and providers give shared_buffers about a quarter of it, so the builds
// take at most about another quarter); nullopt when the server's own
// setting (`server_bytes`) is as large: then none is sent.
std::optional<int64_t> LoadMaintenanceWorkMem(int64_t shared_buffers_bytes, int64_t server_bytes,
                                              int jobs);
// The same, read from the target `conn`, as a setting's value ("256MB"; ""
// for none, also when the target does not say).
std::string LoadMaintenanceWorkMem(Connection& conn, int jobs);

}  // namespace pgcourier
