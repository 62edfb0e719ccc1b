// What the data phase of a move copies from one database: the tables with
// storage, their columns, and the objects whose contents pg_dump's schema
// leaves out (sequence values, large objects, materialized view contents).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "catalog/object_filter.h"
#include "catalog/partition_trees.h"
#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

// An index of a table built by pgcourier as soon as the table's data is in,
// and the constraint (primary key, unique, exclusion) it backs, if any.
struct IndexToBuild {
  uint32_t index_oid = 0;       // on the source: names the pg_restore list entry
  uint32_t constraint_oid = 0;  // 0 when the index backs no constraint
  std::string schema;
  std::string name;
  std::string definition;  // pg_get_indexdef
  // For a constraint: "p", "u" or "x"; its name and, for an exclusion
  // constraint (which cannot use an existing index), its full definition.
  std::string constraint_type;
  std::string constraint_name;
  std::string constraint_definition;  // pg_get_constraintdef
  bool deferrable = false;
  bool initially_deferred = false;
  // Table properties pg_dump restores with the index: CLUSTER ON and
  // REPLICA IDENTITY USING INDEX.
  bool clustered = false;
  bool replica_identity = false;
};

struct TableToCopy {
  std::string schema;
  std::string name;
  int64_t bytes = 0;  // pg_table_size: heap and TOAST, the work to move
  // The planner's estimate of its rows: pg_class.reltuples scaled to the
  // heap's pages now, as the planner does; -1 when there is none (a table
  // never vacuumed or analyzed that has pages).
  int64_t estimated_rows = -1;
  // Stored columns in attribute order, quoted; generated columns are left
  // out (the target computes them).
  std::string column_list;
  // Whether it has generated columns, which column_list leaves out.
  bool generated_columns = false;
  bool unlogged = false;
  // Logical replication can carry its changes: a logged table with a
  // replica identity (a primary key, a chosen index, or FULL). Others are
  // never published (their UPDATE and DELETE would start to fail on the
  // source) and are copied again at cutover.
  bool replicable = false;
  // A NOT NULL integer column with a unique index (the primary key, usually):
  // a large table is split into ranges of it. Empty when there is none.
  std::string split_column;
  std::vector<IndexToBuild> indexes;
  // A partition tree loaded through its topmost root (catalog/
  // partition_trees.h): this entry is the root, and its rows are those of
  // `partitions`, the source's leaf tables, each copied into the root on the
  // target, which puts every row in the partition its own hash names there.
  // `bytes` is theirs, `replicable` says all of them are, `unlogged` that one
  // is; their indexes are left to pg_restore. Empty for any other table.
  std::vector<PartitionLeaf> partitions;
  std::string through_root_reason;  // RootLoadedTree::reason
  // Its rows travel in COPY's binary form: the type of every column (a
  // domain's base type, an array's element type) is built in (OID below
  // 10000, the same on every server), has binary send and receive, and a
  // binary form that is the same on 13 to 18 and names no object by its OID
  // (not the reg* types) and no encoding of its own (not xml, whose binary
  // input takes UTF-8 whatever the session's encoding); not tsquery (a 13
  // source's binary tsquery is refused by 18's input: "malformed tsquery")
  // nor tsvector, the other text search type. Else the rows travel
  // as text, and `text_reason` says why: "column m is of type public.mood",
  // or "--copy-format text". For a tree loaded through its root: all of
  // its partitions.
  bool binary = false;
  std::string text_reason;
  bool through_root() const { return !partitions.empty(); }
  std::string QualifiedName() const;
  std::string Display() const { return schema + "." + name; }
};

// What a report says of a tree loaded through its root: "loaded through the
// root public.t (4 partitions): public.t is hash partitioned on type
// public.mood, whose hash can differ on the target".
std::string LoadedThroughRootNote(const TableToCopy& table);

struct SequenceToSet {
  std::string schema;
  std::string name;
};

struct MaterializedView {
  std::string schema;
  std::string name;
  bool populated = false;
};

struct CopyCatalog {
  std::vector<TableToCopy> tables;  // largest first
  std::vector<SequenceToSet> sequences;
  std::vector<MaterializedView> materialized_views;
  std::vector<uint32_t> large_objects;  // OIDs
  int64_t total_bytes = 0;
};

// Has every table of `catalog` copied as text, `reason` saying why.
void CopyAllAsText(CopyCatalog& catalog, const std::string& reason);

// Reads the catalog of the connected database (at whatever snapshot its
// transaction has). Leaves out system schemas, objects of extensions, and
// what `filter` leaves out: tables it excludes and tables whose data it
// excludes (their indexes are then left to pg_restore), sequences and
// materialized views of excluded schemas, and the identity sequences of
// excluded tables (pg_dump leaves those out with their table; a serial
// column's sequence it keeps, as a sequence of its own, and so does this).
// Large objects belong to no schema and are always copied. The leaves of a
// tree loaded through its root are one entry, the root's (left out with the
// root's data; a leaf whose data is excluded is left out of its parts).
Result<CopyCatalog> ReadCopyCatalog(Connection& conn, const ObjectFilter& filter,
                                    Deadline deadline);

}  // namespace pgcourier
