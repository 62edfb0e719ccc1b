// A restore script's entries (schema/restore_script.h) sent to a server
// through one of pgcourier's sessions, in few round trips: pg_restore
// connected to the server sends each statement on its own and waits for its
// answer, which over a distant link costs more than the statements
// themselves. The SQL is still pg_restore's (`pg_restore --file=-`, which
// needs no connection); nothing in it is interpreted or rewritten.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "pg/conninfo.h"
#include "schema/restore_script.h"
#include "schema/schema_dump.h"
#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier {

// At most this many entries, and about this many bytes (an entry larger
// than that goes alone), per query string.
inline constexpr size_t kScriptChunkEntries = 100;
inline constexpr size_t kScriptChunkBytes = 1 << 20;

// What became of the entries RunScriptEntries sent.
struct ScriptRun {
  int failed = -1;  // the index of the entry the server refused; -1: none
  Status error = Status::Ok();
  int round_trips = 0;  // query strings sent
};

// Sends `entries` over `conn`, which must be inside a transaction block:
// chunks of at most kScriptChunkEntries entries (and about kScriptChunkBytes),
// each one query string "SAVEPOINT ...; <entries> RELEASE SAVEPOINT ...", so
// one round trip. An entry that sets client_encoding is sent on its own: the
// server decodes a query string in the encoding in force when it arrives.
// When the server refuses a chunk, the transaction is rolled back to the
// chunk's savepoint and the chunk's entries are sent again one at a time:
// the first one refused, with its error, is the outcome, and the transaction
// is then aborted (the caller rolls it back). Failures that are not a
// refusal (a lost connection, the deadline, cancellation) are the result's
// error.
Result<ScriptRun> RunScriptEntries(Connection& conn, const std::vector<ScriptEntry>& entries,
                                   Deadline deadline);

// The error of a restore that stopped at `entry`: the object, the server's
// message and SQLSTATE (its hint kept), and the statement's first line.
Status EntryRefused(const ScriptEntry& entry, const Status& error);

// The first statement line of `sql`, past comments and pg_restore's SET
// lines, at most 160 characters: what the server refused.
std::string StatementExcerpt(const std::string& sql);

// The pre-data section restored through `target`, a session of the target
// database outside any transaction: the script pg_restore writes for the
// section's entries of `list_path` (with `policy`'s --no-owner /
// --no-privileges), sent with RunScriptEntries inside one transaction that
// is committed at the end, so all of it or nothing is restored, as with
// `pg_restore --single-transaction --exit-on-error`. The first entry refused
// ends it, rolled back, with EntryRefused's error. A script holding a psql
// meta-command other than \restrict / \unrestrict is restored by pg_restore
// itself instead (RestoreSection into `target_db`). The session keeps the
// script's SET commands: give it one that is closed after.
Status RestorePreDataThrough(const SchemaTools& tools, Connection& target,
                             const ConnInfo& target_db, const std::string& archive,
                             const std::string& list_path, const RestorePolicy& policy);

}  // namespace pgcourier
