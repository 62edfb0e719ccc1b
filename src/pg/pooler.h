// Finding a connection pooler (PgBouncer, Supavisor, Neon's `-pooler`
// endpoint) between pgcourier and a server, before any session sets
// anything there.
//
// A pooler answers with a backend key of its own (PQbackendPID differs from
// pg_backend_pid()). Then a second client opens a transaction while the
// first is idle: in transaction (or statement) mode the first client's
// server session goes back to the pool and is handed on, so the first
// client's next statement runs on another server session or waits for one;
// in session mode it keeps its own. Without that key, a few transactions in
// a row must still run on one server session.
#pragma once

#include <chrono>
#include <string>

#include "pg/connection.h"
#include "pg/conninfo.h"
#include "util/status.h"

namespace pgcourier {

enum class PoolerMode { kNone, kSession, kTransaction };

struct PoolerProbe {
  PoolerMode mode = PoolerMode::kNone;
  // Session mode: a second client got no server session while the first
  // held one (a pool of one, or full).
  bool pool_exhausted = false;
  // What was seen, for the check's detail ("backend pid 812, then 815").
  std::string evidence;
};

// Probes the server `info` names with sessions that set nothing (no
// search_path, formats or timeouts: nothing a pooler could keep) and run
// only `SELECT pg_catalog.pg_backend_pid()` and an empty transaction.
// `options` gives the timeouts and the cancel token; its settings are not
// used. `wait` bounds how long a client waiting for a server session is
// waited for. Errors are the connection's.
Result<PoolerProbe> ProbePooler(const ConnInfo& info, ConnectOptions options,
                                std::chrono::milliseconds wait = std::chrono::seconds(5));

// The problem with a pooler in transaction or statement mode in front of
// the side `role` ("source" or "target"), `evidence` being the probe's: the
// detail of check's source.pooler / target.pooler failure, and the error of
// every command that refuses such a pooler.
std::string TransactionPoolerMessage(const std::string& role, const std::string& evidence);

// For a command about to connect to the side `role` at `info` (verify,
// status, cutover, cleanup): probes it (ProbePooler, with `options`' timeouts
// and cancel token) and refuses a pooler in transaction or statement mode
// with kFailedPrecondition, TransactionPoolerMessage and
// DirectConnectionHint: pgcourier's sessions keep settings and snapshots
// across transactions, and a setting made through such a pooler would stay
// on a server session other clients get. Ok when there is no pooler or one
// in session mode. A probe that cannot connect is Ok too, with
// `*unreached` set to the connection's error: the command's own session
// would meet it, so the caller takes it as that session's failure instead
// of connecting again. kCancelled when cancelled.
Status RefuseTransactionPooler(const ConnInfo& info, const std::string& role,
                               const ConnectOptions& options, Status* unreached);

// What to connect to instead of the pooler `info` names, as a sentence
// without any secret: Neon's host without `-pooler`, Supabase's
// db.<project>.supabase.co on port 5432, else the server's own address.
std::string DirectConnectionHint(const ConnInfo& info);

}  // namespace pgcourier
