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
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pg/connection.h"
#include "pg/conninfo.h"
#include "replication/slot.h"
#include "util/status.h"

namespace pgcourier {

// The objects of one direction of replication. Forward (the move) the
// publisher is the source and the subscriber the target; on the way back
// (cutover --keep-rollback) the target publishes and the old source
// subscribes. The functions below take the publisher's session as `source`
// and the subscriber's as `target`, whichever direction they serve.
struct ReplicationNames {
  std::string publication;   // in the publisher's database
  std::string slot;          // on the publisher's server
  std::string subscription;  // in the subscriber's database
  // In the publisher's database: the tables without replica identity,
  // published for inserts and truncates only (see StartReplication). Empty
  // on the way back (RollbackNamesFor), which publishes only tables with a
  // replica identity, and in names built by hand, which then have none.
  std::string append_publication;
};

// Records a change pgcourier is about to make to a server besides its
// replication objects (here: installing the aiven_extras extension), with the
// SQL that undoes it; called before the change, which an error stops.
using RecordChangeFn = std::function<Status(const std::string& object, const std::string& undo)>;

// The names of database number `index` (its position in the run) of run
// `run_id` (hex).
ReplicationNames NamesFor(const std::string& run_id, int index);

// The names of the way back of database number `index` of run `run_id`:
// "pgcourier_<run>_back" for the publication (in the target database) and
// the subscription (in the old source database), "pgcourier_<run>_<n>_back"
// for the slot (on the target server). Never those of the move, so that
// removing one direction never touches the other.
ReplicationNames RollbackNamesFor(const std::string& run_id, int index);

// The way back's publisher side, on the new primary (`conn`: a session in
// its database): the publication of `tables` (quoted, qualified, each
// published ONLY itself; WITH (publish_via_partition_root = true) when
// `via_partition_root`), then a logical slot made with
// pg_create_logical_replication_slot (no snapshot is needed: the subscriber
// already has every row), each in a transaction of its own (a slot cannot be
// made in a transaction that wrote). The slot's creation waits for the
// transactions that hold a transaction id on the server; `deadline` bounds
// that wait.
// CREATE PUBLICATION `name` FOR TABLE ONLY `tables` (quoted, qualified), WITH
// (publish_via_partition_root = true) when `via_partition_root`.
std::string PublicationStatement(const std::string& name, const std::vector<std::string>& tables,
                                 bool via_partition_root);

Status CreatePublicationAndSlot(Connection& conn, const ReplicationNames& names,
                                const std::vector<std::string>& tables, bool via_partition_root,
                                Deadline deadline);

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
//     column (BinaryTransferProblem) has on the source a type (and an
//     array's element type) with binary send and receive functions
//     (pg_type.typsend/typreceive), on the target the same type, with
//     binary receive, of the same extension at the same version, or of no
//     extension on both sides (an extension's binary form can change between
//     versions). Else off, with the reason in `why`.
//   - streaming: "parallel" on a 16+ target (large transactions applied by
//     parallel workers while they stream), "on" on 14 and 15 (streamed
//     before they commit, applied at commit), "" (off) on a 13 side.
//   - via aiven_extras, whose function takes no options: both off.
//   - origin = none (the way back, both servers 16+): the subscriber asks
//     only for changes made on the publisher itself, not for those another
//     subscription applied there, so nothing loops.
struct SubscriptionOptions {
  bool binary = false;
  std::string streaming;
  bool origin_none = false;
  std::string why;  // why binary is off, when it is
  // "binary = true, streaming = parallel"; "binary = false (why), ..."
  std::string Text() const;
};

// A published column's type as one server has it.
struct PublishedColumnType {
  std::string schema;  // of the column's table
  std::string table;
  std::string column;
  std::string type;  // format_type
  // Binary functions: on the source send and receive, on the target
  // receive; of the array's element type too.
  bool binary = true;
  std::string extension;  // the extension the type (or element) belongs to; "" none
  std::string extension_version;
};

// Why the published columns cannot travel in binary: `source` holds them as
// the source has them, `target` the same columns (same order) as the target
// has them, std::nullopt where the target lacks the column (not binary's
// concern: the apply fails on it either way). Empty when they can.
std::string BinaryTransferProblem(const std::vector<PublishedColumnType>& source,
                                  const std::vector<std::optional<PublishedColumnType>>& target);

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

// One of DropReplication's lines said for the way back, whose publisher is
// the target and subscriber the source: "... (source)" becomes
// "... (target)" and the other way round.
std::string WayBackSides(std::string removed);

}  // namespace pgcourier
