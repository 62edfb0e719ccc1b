// The replication method's objects and their life: per database a
// publication and a logical replication slot on the source, made so that the
// bulk copy reads exactly the slot's starting point (the slot's exported
// snapshot), and a subscription on the target that streams every change made
// after it, without copying again. Every object carries the run's id in its
// name, so two migrations never touch each other's objects, and cleanup can
// always find and remove what this run made, on both sides.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pg/connection.h"
#include "pg/conninfo.h"
#include "replication/slot.h"
#include "util/status.h"

namespace pgcourier {

struct ReplicationNames {
  std::string publication;   // on the source database
  std::string slot;          // on the source cluster
  std::string subscription;  // on the target database
  // On the source database: the tables without replica identity, published
  // for inserts and truncates only (see StartReplication). Empty in names
  // built by hand, which then have none.
  std::string append_publication;
};

// Records a change pgcourier is about to make to a server besides its
// replication objects (here: installing the aiven_extras extension), with the
// SQL that undoes it; called before the change, which an error stops.
using RecordChangeFn = std::function<Status(const std::string& object, const std::string& undo)>;

// The names of database number `index` (its position in the run) of run
// `run_id` (hex).
ReplicationNames NamesFor(const std::string& run_id, int index);

// Whether `name` has the form of a publication (or subscription) of some
// pgcourier run ("pgcourier_" and a run id, for the append-only publication
// followed by "_append"): pgcourier's own, never the user's, whichever run
// made it.
bool IsRunObjectName(const std::string& name);

// The source side of a zero-gap start: the publication of `tables` (quoted,
// qualified; those with a primary key or replica identity), then the slot,
// created on a replication connection that exports its snapshot. The
// snapshot is imported and exported again on `holder` (a connection to the
// database, whose transaction then keeps it), so the replication connection
// can close. Returns the snapshot id to copy at.
//
// `append_only` (quoted, qualified): tables without replica identity, which
// replication cannot update or delete in. They are published in a
// publication of their own (`names.append_publication`) WITH (publish =
// 'insert, truncate'): their inserts and truncates reach the target, and
// the application's UPDATE and DELETE on them still succeed on the source
// (PostgreSQL refuses those only for tables published for updates or
// deletes). An update or delete there is not carried: cutover finds out
// whether one happened and copies such a table again (migrate/cutover.h).
// None is made when `append_only` is empty, or when the user publishes
// through aiven_extras (then cutover copies those tables again). The slot's creation waits
// for the transactions open on the source, named and bounded as `slot_wait`
// says (replication/slot.h; `holder` reads them meanwhile).
//
// A user who may not publish the tables (not their owner; SQLSTATE 42501)
// publishes them through Aiven's aiven_extras extension when the server
// offers it, installing it first when needed (recorded through
// `record_change`, so cleanup removes it).
//
// `via_partition_root`: some of `tables` are roots of partition trees loaded
// through their root (catalog/partition_trees.h). The publication is then
// made WITH (publish_via_partition_root = true), so that a change to one of
// their partitions reaches the target as a change to the root, which puts
// the row where its hash says on the target (applied to the same-named
// partition, it could break that partition's constraint). Tables listed
// without their root are published as themselves all the same. aiven_extras
// cannot set that option: a kFailedPrecondition then, with --method copy as
// the hint.
Result<std::string> StartReplication(const ConnInfo& source_db, Connection& holder,
                                     const ReplicationNames& names,
                                     const std::vector<std::string>& tables,
                                     const std::vector<std::string>& append_only,
                                     const ConnectOptions& connect,
                                     const RecordChangeFn& record_change, const SlotWait& slot_wait,
                                     bool via_partition_root = false);

// The options of a subscription that help it keep up with a busy source, as
// chosen for one database, and recorded in the run.
//   - binary = true: values travel in their binary form (no text output and
//     input on each side) when both servers are 14+ and every published
//     column's type (and an array's element type) has binary send and
//     receive functions (pg_type.typsend/typreceive), and no type of an
//     extension whose version differs between the servers (its binary form
//     could differ). Else off, with the reason in `why`.
//   - streaming: "parallel" on a 16+ target (large transactions applied by
//     parallel workers while they stream), "on" on 14 and 15 (streamed
//     before they commit, applied at commit), "" (off) on a 13 side.
//   - via aiven_extras, whose function takes no options: both off.
struct SubscriptionOptions {
  bool binary = false;
  std::string streaming;
  std::string why;  // why binary is off, when it is
  // "binary = true, streaming = parallel"; "binary = false (why), ..."
  std::string Text() const;
};

// Chooses the options for the subscription of `names.publication`; `source`
// is a session in the source database at any point after the publication was
// made.
Result<SubscriptionOptions> ChooseSubscriptionOptions(Connection& target, Connection& source,
                                                      const ReplicationNames& names);

// The subscription on the target (its current database), using the existing
// slot and copying nothing: changes after the snapshot stream in. It
// subscribes to the append-only publication too when the source has it
// (not through aiven_extras, whose function takes one publication). `source`
// is a live connection to the source database, whose effective parameters
// (with the password) the subscription connects with; `given` is the source
// as the user gave it (files such as sslrootcert are passed on only when it
// names them).
//
// A user who may not create subscriptions (SQLSTATE 42501: not a superuser,
// and before 16 no pg_create_subscription) creates it through aiven_extras
// when the server offers it, as StartReplication does. Made `with` the
// options (ChooseSubscriptionOptions); returns those it was made with.
Result<SubscriptionOptions> CreateSubscription(Connection& target, Connection& source,
                                               const ConnInfo& given, const ReplicationNames& names,
                                               const RecordChangeFn& record_change,
                                               const SubscriptionOptions& with);

struct ReplicationLag {
  bool slot_exists = false;
  bool slot_active = false;
  bool subscription_exists = false;
  std::string source_lsn;       // pg_current_wal_lsn() now
  std::string confirmed_lsn;    // the slot's confirmed_flush_lsn
  int64_t lag_bytes = -1;       // source_lsn - confirmed_lsn
  int64_t retained_bytes = -1;  // WAL the slot keeps on the source
  double lag_seconds = -1;      // since the subscriber's last message
  // Per table on the target: its sync state (pg_subscription_rel: i, d, s,
  // r); every one "r" (ready) when in sync.
  std::vector<std::pair<std::string, std::string>> tables;
  bool AllReady() const;
};

// Reads where replication stands. Either connection may be null (that side
// is then not read).
Result<ReplicationLag> ReadLag(Connection* source, Connection* target,
                               const ReplicationNames& names);

// Waits until the slot's confirmed position reaches `lsn` (the target has
// applied everything up to it), or the deadline. `check`, when given, is
// called every `check_every` while waiting; its error ends the wait (a
// replication that broke: waiting cannot help).
Status WaitApplied(Connection& source, const ReplicationNames& names, const std::string& lsn,
                   Deadline deadline, const CancelToken* cancel,
                   const std::function<Status()>& check = nullptr,
                   std::chrono::milliseconds check_every = std::chrono::seconds(5));

// Removes the subscription (target), slot and publications (source) when they
// exist, and returns what it removed; also a publication of the same name on
// the target (one that came in with the schema of an earlier version). The subscription is detached
// from its slot first, so it can be dropped when the source is unreachable. Safe on any partial
// state and idempotent; either connection may be null.
//
// A subscription made through aiven_extras (owned by the extension's
// superuser) is disabled and dropped through it too; aiven_extras drops its
// slot in the same call, over the subscription's own connection, so that
// needs the source reachable.
Result<std::vector<std::string>> DropReplication(Connection* source, Connection* target,
                                                 const ReplicationNames& names);

}  // namespace pgcourier
