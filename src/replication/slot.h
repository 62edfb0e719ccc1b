// Creating the logical replication slot, a wait that is named and bounded.
// The server makes a logical slot only once every transaction that holds a
// transaction id has ended (the slot must see each one whole): a session
// left idle in a transaction on the source makes the creation wait for as
// long as it stays open. While it waits, the transactions it waits for are
// read from another session and reported; past the limit the creation is
// cancelled, and the server drops the slot it had begun (a slot is
// ephemeral until it is consistent), so nothing is left behind.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "catalog/open_transactions.h"
#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

struct SlotWait {
  // How long the creation may wait; zero: no limit (still reported).
  std::chrono::milliseconds limit{0};
  // How often the transactions it waits for are read and reported.
  std::chrono::milliseconds poll{std::chrono::seconds(3)};
  // Called on the caller's thread after each read that found transactions,
  // with them (oldest first) and how long the creation has waited so far.
  std::function<void(const std::vector<OpenTransaction>&, std::chrono::seconds waited)> on_wait;
  // What to run once the transactions have ended, for the error's hint, e.g.
  // "pgcourier migrate --resume --dir D".
  std::string then;
};

// Creates the logical slot `slot` (pgoutput) over `walsender`, a replication
// connection to the database, exporting its snapshot; returns the
// snapshot's id. `observer` is an ordinary session on the same server, idle,
// on which the waits are read. Past wait.limit: kTimeout naming the
// transactions waited for, with the hint to end them or wait, then
// wait.then.
Result<std::string> CreateLogicalSlot(Connection& walsender, Connection& observer,
                                      const std::string& slot, const SlotWait& wait);

// "waiting for the replication slot: transaction pid 1234 open 2m10s (...)".
std::string DescribeSlotWait(const std::vector<OpenTransaction>& transactions,
                             std::chrono::seconds waited);

}  // namespace pgcourier
