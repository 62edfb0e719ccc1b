// Partition trees whose rows must be loaded through their topmost root.
//
// A hash partition holds the rows whose key hashes to its remainder. The
// hash of some keys depends on the server, not only on the value: an enum's
// hash is the hash of its label's OID (the target's OIDs differ), a type or
// operator class the user made can hash however its functions do, and a
// nondeterministic collation hashes through the ICU library's sort key. A row
// of such a table may then belong to another partition on the target, and
// loading a source partition into the same-named target partition fails
// ("new row for relation ... violates partition constraint"). pg_dump
// (16+) loads such trees through their root for the same reason; its rule
// (hash partitioning with enum_ops) is the narrowest case of this one.
#pragma once

#include <string>
#include <vector>

#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

// One leaf table (relkind 'r') of a tree.
struct PartitionLeaf {
  std::string schema;
  std::string name;
  // Logical replication can carry its changes (TableToCopy::replicable);
  // set by ReadCopyCatalog.
  bool replicable = false;
  std::string QualifiedName() const;
  std::string Display() const { return schema + "." + name; }
};

struct RootLoadedTree {
  // The topmost partitioned table: where the tree's rows are loaded.
  std::string schema;
  std::string name;
  // Why: "public.hashed_enum is hash partitioned on type public.mood"; one
  // level of the tree is enough (any level can be, the root need not be).
  std::string reason;
  // The root's stored columns in attribute order, quoted (generated ones
  // left out).
  std::string column_list;
  std::vector<PartitionLeaf> leaves;  // ordinary tables only, by name
  std::string QualifiedName() const;
  std::string Display() const { return schema + "." + name; }
};

// The trees of the connected database (at its transaction's snapshot) in
// which some partitioned table, at any level, is hash partitioned on a key
// whose hash may differ between servers: a column of a type that is not
// built in (an enum, a domain, composite, array or range over one, any type
// the user made), an expression of a polymorphic operator class (enum_ops,
// array_ops, range_ops, ...), an operator class that is not built in, or a
// nondeterministic collation. Built in means an OID below 16384
// (FirstNormalObjectId). Trees of system schemas and extensions are left
// out. By root name.
Result<std::vector<RootLoadedTree>> ReadRootLoadedTrees(Connection& conn,
                                                        Deadline deadline = Deadline::Never());

}  // namespace pgcourier
