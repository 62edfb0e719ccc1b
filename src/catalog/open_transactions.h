// The transactions open on a server that hold a transaction id: creating a
// logical replication slot waits until every one of them has ended (the slot
// must see each transaction whole), so they are what a slot creation waits
// for, and what `check` warns about when they have been open for long.
// Reading only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

struct OpenTransaction {
  int64_t pid = 0;
  int64_t open_seconds = 0;  // since xact_start
  std::string state;         // "idle in transaction", "active", ... ("prepared" for 2PC)
  std::string user;
  std::string application;
  std::string query;  // the first 100 characters of its last statement, on one line
  std::string gid;    // a prepared transaction's (pid 0); else empty
};

// The transactions of the whole server, other than the caller's session,
// that hold a transaction id and have been open at least `min_open`,
// oldest first, at most `limit`; prepared transactions among them. A query
// the user may not see reads "<insufficient privilege>".
Result<std::vector<OpenTransaction>> ReadOpenTransactions(Connection& conn,
                                                          std::chrono::seconds min_open, int limit,
                                                          Deadline deadline);

// "2m10s", "45s", "3h02m".
std::string FormatOpenTime(int64_t seconds);

// "transaction pid 1234 open 2m10s (psql, user alice, idle in transaction):
// UPDATE ...".
std::string DescribeOpenTransaction(const OpenTransaction& t);

// DescribeOpenTransaction of each, "; "-separated.
std::string DescribeOpenTransactions(const std::vector<OpenTransaction>& transactions);

// How to end each: "pg_terminate_backend(1234)", or for a prepared
// transaction "COMMIT or ROLLBACK PREPARED 'gid'"; comma-separated.
std::string EndTransactionsHint(const std::vector<OpenTransaction>& transactions);

}  // namespace pgcourier
