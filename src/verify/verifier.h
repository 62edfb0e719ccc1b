// Proof that nothing was lost: per table row count and a content checksum
// computed on the server (no row travels to pgcourier), sequence values, and
// the schema objects present, compared between source and target.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "catalog/object_filter.h"
#include "pg/connection.h"
#include "pg/conninfo.h"
#include "pg/transaction.h"
#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier {

struct TableVerification {
  std::string schema;
  std::string name;
  int64_t source_rows = -1;
  int64_t target_rows = -1;
  // The rows' checksums: the decimal sum of the server-side checksum query,
  // or, for a table compared right after migrate copied it, the hex digest
  // of copy/row_hash.h (the source's from the rows the copy relayed).
  std::string source_checksum;
  std::string target_checksum;
  std::string error;  // set when the table could not be read on one side
  // The rows of a whole partition tree loaded through its root
  // (catalog/partition_trees.h), compared at the root: its partitions hold
  // different rows on each side by design.
  bool partition_tree = false;
  // Set for an extension's configuration table (catalog/extension_config.h):
  // the extension's name. Its rows compared are those the extension's
  // condition selects (the source's condition, on both sides).
  std::string extension;
  // Only the row counts were compared (migrate --verify counts): the
  // checksums are empty.
  bool counts_only = false;
  bool match() const {
    return error.empty() && source_rows == target_rows && source_checksum == target_checksum;
  }
};

struct SequenceVerification {
  std::string schema;
  std::string name;
  std::optional<int64_t> source_last_value;  // nullopt: not yet called (is_called = false)
  std::optional<int64_t> target_last_value;
  // Set when the sequence could not be read on one side, or is missing on the
  // target ("missing on the target"; it is then also listed in the schema
  // comparison of kind "sequence").
  std::string error;
  bool match() const { return error.empty() && source_last_value == target_last_value; }
};

// Objects of one kind (tables, views, indexes, constraints, functions, ...)
// by name, present on the source and missing on the target (or extra there).
struct SchemaVerification {
  std::string kind;
  int64_t source_count = 0;
  int64_t target_count = 0;
  std::vector<std::string> missing_on_target;
  std::vector<std::string> extra_on_target;
  bool match() const { return missing_on_target.empty() && extra_on_target.empty(); }
};

// One property of the database compared between the servers
// (verify/database_properties.h, verify/large_objects.h): a setting of the
// database or of a role in it, its comment, connection limit or grants, the
// number of large objects, or what differs in one of them. Values are text;
// "" is absent. A property that cannot be on the target (a setting of a role
// the target does not have) is left out, with the reason: no mismatch, but
// listed.
struct PropertyVerification {
  std::string property;  // "setting search_path", "role app: setting work_mem", "comment", ...
  std::string source_value;
  std::string target_value;
  std::string left_out;  // why it was not compared, e.g. "no such role on the target"
  bool match() const { return !left_out.empty() || source_value == target_value; }
};

struct DatabaseVerification {
  std::string source_database;
  std::string target_database;
  std::vector<TableVerification> tables;
  std::vector<SequenceVerification> sequences;
  std::vector<SchemaVerification> schema;
  std::vector<PropertyVerification> properties;
  int Mismatches() const;
  bool ok() const { return Mismatches() == 0; }
};

struct VerifyOptions {
  int jobs = 4;  // tables checksummed in parallel, on each side
  // When set, the source is read at this exported snapshot
  // (pg_export_snapshot() of a transaction that is still open), so a live
  // source is compared as it was when the copy was taken.
  std::optional<std::string> source_snapshot;
  // Likewise for the target: a cutover compares both sides as they were at
  // the switch moment, while the target already takes the applications'
  // writes.
  std::optional<std::string> target_snapshot;
  // Objects left out on both sides (schemas, e.g. provider-only ones, and
  // tables), and tables compared by schema only (see VerifyDatabase).
  ObjectFilter filter;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  const CancelToken* cancel = nullptr;
  // How long a read waits for a lock that another session holds (an open
  // transaction's LOCK TABLE, a DDL): every session's lock_timeout (0: no
  // limit). A read that waits longer fails the whole verification (never a
  // difference), naming the side, the table and the sessions holding the
  // lock, with the hint to end them and then `after_lock_wait`.
  std::chrono::milliseconds lock_timeout{std::chrono::minutes(10)};
  std::string after_lock_wait = "run pgcourier verify again";
  // Extensions not compared: the provider-only ones the move leaves out
  // (ProviderOnlyExtensions), which the source may have and the target not.
  std::vector<std::string> left_out_extensions;
  // Compare sequence values (as they are now). Off for a bulk copy that
  // replication will bring up to date: its sequences are synced at cutover,
  // and compared then.
  bool sequences = true;
  // Compare the owners of large objects (a move with --preserve-owners keeps
  // them), and the grants on the database and its large objects
  // (--preserve-acl).
  bool owners = false;
  bool grants = false;
  // Tables already compared (by TableChecksums, right after their copy):
  // taken as they are, not read again.
  std::vector<TableVerification> compared_tables;
  // Sequences already compared (CompareSequences, at a cutover's switch
  // moment, before the target took writes): taken as they are, not read
  // again (sequence values are not transactional, so no snapshot could
  // read them as they were).
  std::optional<std::vector<SequenceVerification>> compared_sequences;
};

// Compares one database on the source with one on the target. `source` and
// `target` name the databases to compare. Errors are connection failures,
// cancellation and a lock not had within options.lock_timeout
// (kFailedPrecondition: which side, which table, the sessions holding it);
// differences are reported in the result, never as an error.
//
// Both sides are read in read-only repeatable read transactions with the
// value formats every session pins (PinnedFormatSettings in pg/session_settings.h) and
// row_security off, every session of a side at
// one snapshot (options.source_snapshot / target_snapshot, else one the
// side's first session exports).
// Compared, outside system schemas, extension members and what
// options.filter leaves out (its schemas, and its tables with their indexes,
// constraints, triggers, policies and identity sequences; the filter is
// checked against the source at its snapshot, and one whose include patterns
// select nothing is an error, kInvalidArgument):
//   - tables: ordinary tables and partitions (not partitioned parents, which
//     hold no rows; FROM ONLY, so an inheritance parent does not count its
//     children) and materialized views populated on the source; a
//     partition tree loaded through its root (ReadRootLoadedTrees on the
//     source) is one table, its root, read with its partitions
//     (partition_tree), and its partitions are not compared one by one; per side
//     count(*) and the sum of hashtextextended(row text) as numeric. `error`
//     is "missing on the target", "not populated on the target", or the
//     server's refusal prefixed "source: " / "target: " (no privilege, row
//     level security; a lock timeout is an error of the call instead). Tables
//     whose data options.filter excludes are not in `tables` at all (their
//     rows are not compared); their definition is, in the schema comparison.
//   - sequences: last_value, read as it is now (sequences are not
//     transactional, so a live source can be ahead of the snapshot).
//   - extensions' configuration tables (pg_extension_config_dump; those the
//     move carries, ReadExtensionConfig): in `tables` with `extension` set,
//     the count and checksum of the rows the source's condition selects,
//     read with that condition on both sides; their configuration sequences
//     in `sequences` (when options.sequences).
//   - schema: object names per kind ("schema", "table", "view",
//     "materialized view", "foreign table", "sequence", "index",
//     "constraint", "function", "trigger", "policy", "type", "extension").
//     A missing table or sequence is also listed here under its kind.
//   - properties: the database's settings, the settings of roles in it, its
//     comment, connection limit and (options.grants) grants
//     (verify/database_properties.h); its large objects' number, data,
//     comments and (options.owners, options.grants) owners and grants
//     (verify/large_objects.h).
Result<DatabaseVerification> VerifyDatabase(const ConnInfo& source, const ConnInfo& target,
                                            const VerifyOptions& options);

// The sequence comparison of VerifyDatabase alone (with the extensions'
// configuration sequences), read as the sequences are now: quick enough to
// run while a cutover's writes are stopped, so that VerifyDatabase can
// compare the rest later, at snapshots, and take these
// (VerifyOptions::compared_sequences).
Result<std::vector<SequenceVerification>> CompareSequences(const ConnInfo& source,
                                                           const ConnInfo& target,
                                                           const VerifyOptions& options);

// Compares single tables, one at a time, as soon as each is loaded: the same
// row count and checksum as VerifyDatabase, on a pair of sessions prepared
// the same way. The source session reads at `source_snapshot` for its whole
// life; on the target every comparison takes a fresh snapshot (it sees what
// was committed before it began). Both sides of a table are read at once.
class TableChecksums {
 public:
  // Both sessions wait at most `lock_timeout` for a lock (0: no limit).
  static Result<std::unique_ptr<TableChecksums>> Open(const ConnInfo& source,
                                                      const std::string& source_snapshot,
                                                      const ConnInfo& target,
                                                      std::chrono::milliseconds connect_timeout,
                                                      std::chrono::milliseconds lock_timeout,
                                                      const CancelToken* cancel);
  ~TableChecksums();
  TableChecksums(const TableChecksums&) = delete;
  TableChecksums& operator=(const TableChecksums&) = delete;

  // Differences and a side's refusal to read the table are in the result;
  // errors are lost connections, cancellation and a lock not had within
  // the lock_timeout (IsLockTimeout, with the side as context).
  // With `partition_tree`, `name` is the root of a tree loaded through it,
  // read with all its partitions.
  Result<TableVerification> Compare(const std::string& schema, const std::string& name,
                                    bool partition_tree = false);

 private:
  TableChecksums(std::unique_ptr<Connection> source, Transaction source_txn,
                 std::unique_ptr<Connection> target);
  std::unique_ptr<Connection> source_;
  std::unique_ptr<Connection> target_;
  // The source's transaction at the snapshot, for the object's whole life;
  // declared last, so it ends before source_ closes.
  std::optional<Transaction> source_txn_;
};

}  // namespace pgcourier
