#include "verify/verifier.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>

#include "catalog/extension_config.h"
#include "catalog/lock_holders.h"
#include "catalog/partition_trees.h"
#include "catalog/user_objects.h"
#include "pg/connection.h"
#include "pg/quote.h"
#include "pg/transaction.h"
#include "verify/database_properties.h"
#include "verify/large_objects.h"
#include "verify/verify_session.h"

namespace pgcourier {

int DatabaseVerification::Mismatches() const {
  int count = 0;
  for (const auto& t : tables) count += t.match() ? 0 : 1;
  for (const auto& s : sequences) count += s.match() ? 0 : 1;
  for (const auto& k : schema) count += k.match() ? 0 : 1;
  for (const auto& p : properties) count += p.match() ? 0 : 1;
  return count;
}

namespace {

using verify_internal::ConnectSession;
using verify_internal::ExplainLockTimeout;
using verify_internal::GuardedRead;
using verify_internal::OpenSession;
using verify_internal::Read;
using verify_internal::ReadOptions;
using verify_internal::Session;
using verify_internal::SessionSpec;
using verify_internal::ShareSnapshot;
using verify_internal::VerifyRun;

constexpr const char* kMissingOnTarget = "missing on the target";

// "AND the object was not made as part of another one" (deptype 'i').
std::string NotInternal(const char* catalog, const char* oid) {
  return std::string(" AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '") + catalog +
         "'::regclass AND d.objid = " + oid + " AND d.deptype = 'i')";
}

// The name of the table `c` (a pg_class row) when it is one the object
// filter's table patterns apply to, else NULL.
constexpr const char* kFilteredTable = "CASE WHEN c.relkind IN ('r', 'p') THEN c.relname END";

// The table whose identity column the sequence `c` belongs to, else NULL.
// Such a sequence goes with its table; a serial column's sequence (OWNED
// BY) does not: pg_dump keeps it when the table is left out.
constexpr const char* kIdentityTable =
    "(SELECT t.relname FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid "
    "WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
    "AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i' LIMIT 1)";

std::string RelationsOfKinds(const char* kinds, const char* table) {
  return std::string("SELECT n.nspname, n.nspname || '.' || c.relname, ") + table +
         " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN (" +
         kinds + ") AND" + sql::kUserSchema + sql::NotExtensionMember("pg_class", "c.oid");
}

struct SchemaKind {
  std::string kind;
  // Returns (schema, display name, table) rows. The object is left out when
  // the filter excludes its schema, or the table it belongs to (the third
  // column, NULL for objects of no table).
  std::string sql;
};

// One catalog query per kind, for a server of `server_version`
// (server_version_num). The kinds are the same for every version.
std::vector<SchemaKind> SchemaKinds(int server_version) {
  const std::string tables_not_in_extensions = sql::NotExtensionMember("pg_class", "c.oid");
  std::vector<SchemaKind> kinds;
  kinds.push_back({"schema", std::string("SELECT n.nspname, n.nspname, NULL FROM pg_namespace n "
                                         "WHERE") +
                                 sql::kUserSchema +
                                 sql::NotExtensionMember("pg_namespace", "n.oid")});
  kinds.push_back({"table", RelationsOfKinds("'r', 'p'", "c.relname")});
  kinds.push_back({"view", RelationsOfKinds("'v'", "NULL")});
  kinds.push_back({"materialized view", RelationsOfKinds("'m'", "NULL")});
  kinds.push_back({"foreign table", RelationsOfKinds("'f'", "NULL")});
  kinds.push_back({"sequence", RelationsOfKinds("'S'", kIdentityTable)});
  kinds.push_back(
      {"index", std::string("SELECT n.nspname, n.nspname || '.' || ic.relname, ") + kFilteredTable +
                    std::string(" FROM pg_index i "
                                "JOIN pg_class ic ON ic.oid = i.indexrelid "
                                "JOIN pg_class c ON c.oid = i.indrelid "
                                "JOIN pg_namespace n ON n.oid = ic.relnamespace WHERE") +
                    sql::kUserSchema + tables_not_in_extensions +
                    sql::NotExtensionMember("pg_class", "ic.oid")});
  // NOT NULL constraints are catalogued from 18 on only: left out, so an
  // older source compares with a newer target. The clones of a partitioned
  // table's constraints (on its partitions, and of a foreign key once per
  // referenced partition) are left out too: 18 names a foreign key's clones
  // after the constraint (fk_1, fk_2, ...), older servers after its columns
  // (t_col_fkey1, ...).
  // Compared are the constraints that were created (conparentid = 0).
  kinds.push_back(
      {"constraint", std::string("SELECT n.nspname, n.nspname || '.' || c.relname || '.' || "
                                 "con.conname || ' (' || con.contype::text || ')', ") +
                         kFilteredTable +
                         std::string(" FROM pg_constraint con "
                                     "JOIN pg_class c ON c.oid = con.conrelid "
                                     "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                     "WHERE con.conrelid <> 0 AND con.conparentid = 0 "
                                     "AND con.contype <> 'n' AND") +
                         sql::kUserSchema + tables_not_in_extensions});
  // Functions made with a type (the constructors of range and multirange
  // types) belong to the type. A procedure's identity spells its IN
  // arguments' mode from 14 on ("IN from_id integer"), not before: the mode
  // is dropped on both sides (as it is for functions on every version).
  kinds.push_back(
      {"function", std::string("SELECT n.nspname, n.nspname || '.' || p.proname || '(' || "
                               "CASE WHEN p.prokind = 'p' THEN substr(replace(', ' || "
                               "pg_get_function_identity_arguments(p.oid), ', IN ', ', '), 3) "
                               "ELSE pg_get_function_identity_arguments(p.oid) END || ')', NULL "
                               "FROM pg_proc p "
                               "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE") +
                       sql::kUserSchema + sql::NotExtensionMember("pg_proc", "p.oid") +
                       NotInternal("pg_proc", "p.oid")});
  // The clones of a partitioned table's trigger on its partitions are
  // internal before 13 and ordinary (with tgparentid) from 13 on: compare the
  // triggers that were created, not their clones.
  kinds.push_back({"trigger", std::string("SELECT n.nspname, n.nspname || '.' || c.relname || "
                                          "'.' || t.tgname, ") +
                                  kFilteredTable +
                                  std::string(" FROM pg_trigger t "
                                              "JOIN pg_class c ON c.oid = t.tgrelid "
                                              "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                              "WHERE NOT t.tgisinternal") +
                                  (server_version >= 130000 ? " AND t.tgparentid = 0" : "") +
                                  " AND" + sql::kUserSchema + tables_not_in_extensions});
  kinds.push_back(
      {"policy", std::string("SELECT n.nspname, n.nspname || '.' || c.relname || '.' || "
                             "pol.polname, ") +
                     kFilteredTable +
                     std::string(" FROM pg_policy pol "
                                 "JOIN pg_class c ON c.oid = pol.polrelid "
                                 "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE") +
                     sql::kUserSchema + tables_not_in_extensions});
  // Not objects of their own: the row types of tables, array types (typtype
  // 'b') and the multirange types that 14 and later make with every range
  // type (internal to the range type, so a 13 source compares with a newer
  // target).
  kinds.push_back(
      {"type", std::string("SELECT n.nspname, n.nspname || '.' || t.typname, NULL FROM pg_type t "
                           "JOIN pg_namespace n ON n.oid = t.typnamespace "
                           "WHERE t.typtype IN ('c', 'd', 'e', 'r', 'm') "
                           "AND (t.typtype <> 'c' OR EXISTS (SELECT 1 FROM pg_class c "
                           "WHERE c.oid = t.typrelid AND c.relkind = 'c')) AND") +
                   sql::kUserSchema + sql::NotExtensionMember("pg_type", "t.oid") +
                   NotInternal("pg_type", "t.oid")});
  kinds.push_back({"extension",
                   "SELECT n.nspname, e.extname, NULL FROM pg_extension e "
                   "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'"});
  return kinds;
}

struct RelationKey {
  std::string schema;
  std::string name;
  bool operator<(const RelationKey& other) const {
    return std::tie(schema, name) < std::tie(other.schema, other.name);
  }
};

struct RelationInfo {
  char kind = 'r';
  bool populated = true;
  int64_t size = 0;
  bool partition_tree = false;  // the root of a tree compared whole
};

// Tables, partitioned tables and materialized views of the user, outside the
// excluded schemas, without the excluded tables.
Result<std::map<RelationKey, RelationInfo>> ReadRelations(Connection& conn,
                                                          const ObjectFilter& filter) {
  Result<QueryResult> rows =
      conn.Exec(std::string("SELECT n.nspname, c.relname, c.relkind, c.relispopulated, "
                            "pg_relation_size(c.oid) FROM pg_class c "
                            "JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE c.relkind IN ('r', 'p', 'm') AND") +
                sql::kUserSchema + sql::NotExtensionMember("pg_class", "c.oid"));
  if (!rows.ok()) return rows.status();
  std::map<RelationKey, RelationInfo> out;
  for (int r = 0; r < rows->rows(); ++r) {
    std::string schema = rows->GetString(r, 0);
    std::string name = rows->GetString(r, 1);
    std::string_view kind = rows->Get(r, 2);
    const char relkind = kind.empty() ? 'r' : kind[0];
    if (relkind == 'm' ? filter.ExcludesSchema(schema) : filter.ExcludesTable(schema, name)) {
      continue;
    }
    out[{std::move(schema), std::move(name)}] = {relkind, rows->GetBool(r, 3), rows->GetInt(r, 4)};
  }
  return out;
}

// Sequences of the user, outside the excluded schemas, without the identity
// sequences of excluded tables.
Result<std::set<RelationKey>> ReadSequences(Connection& conn, const ObjectFilter& filter) {
  Result<QueryResult> rows = conn.Exec(
      std::string("SELECT n.nspname, c.relname, ") + kIdentityTable +
      " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND" +
      sql::kUserSchema + sql::NotExtensionMember("pg_class", "c.oid"));
  if (!rows.ok()) return rows.status();
  std::set<RelationKey> out;
  for (int r = 0; r < rows->rows(); ++r) {
    std::string schema = rows->GetString(r, 0);
    if (filter.ExcludesSchema(schema)) continue;
    if (!rows->IsNull(r, 2) && filter.ExcludesTable(schema, rows->GetString(r, 2))) continue;
    out.insert({std::move(schema), rows->GetString(r, 1)});
  }
  return out;
}

// The sequence's value, nullopt when not yet called; a server's refusal in
// *error.
Result<std::optional<int64_t>> ReadSequenceValue(Connection& conn, const RelationKey& seq,
                                                 std::string* error) {
  Result<Read> read =
      GuardedRead(conn, "SELECT last_value, is_called FROM " + QualifiedName(seq.schema, seq.name));
  if (!read.ok()) return read.status();
  if (!read->result) {
    *error = read->error;
    return std::optional<int64_t>();
  }
  if (!read->result->GetBool(0, 1)) return std::optional<int64_t>();
  return std::optional<int64_t>(read->result->GetInt(0, 0));
}

// One sequence's value as read on one side: nullopt when not yet called;
// the server's refusal in `error`.
struct SequenceRead {
  std::optional<int64_t> value;
  std::string error;
};

// Sequences per query: every one read is locked until the session's
// transaction ends.
constexpr size_t kSequenceBatch = 500;

// The values of `sequences` on one side: one guarded read per batch of
// kSequenceBatch, so the round trips do not grow with their number. A batch
// the server refuses is read again one sequence at a time, so that each
// refusal is said of its own sequence, as before.
Result<std::vector<SequenceRead>> ReadSequenceValues(Connection& conn,
                                                     const std::vector<RelationKey>& sequences) {
  std::vector<SequenceRead> out(sequences.size());
  for (size_t begin = 0; begin < sequences.size(); begin += kSequenceBatch) {
    const size_t end = std::min(sequences.size(), begin + kSequenceBatch);
    std::string sql;
    for (size_t i = begin; i < end; ++i) {
      if (!sql.empty()) sql += " UNION ALL ";
      sql += "SELECT " + std::to_string(i) + ", last_value, is_called FROM " +
             QualifiedName(sequences[i].schema, sequences[i].name);
    }
    Result<Read> read = GuardedRead(conn, sql);
    if (!read.ok()) return read.status();
    if (read->result) {
      for (int r = 0; r < read->result->rows(); ++r) {
        const auto i = static_cast<size_t>(read->result->GetInt(r, 0));
        if (read->result->GetBool(r, 2)) out[i].value = read->result->GetInt(r, 1);
      }
      continue;
    }
    for (size_t i = begin; i < end; ++i) {
      Result<std::optional<int64_t>> one = ReadSequenceValue(conn, sequences[i], &out[i].error);
      if (!one.ok()) return one.status();
      out[i].value = *one;
    }
  }
  return out;
}

// Names of every schema kind on one side, sorted.
Result<std::vector<std::vector<std::string>>> ReadSchemaNames(
    Connection& conn, const std::vector<SchemaKind>& kinds, const ObjectFilter& filter,
    const std::vector<std::string>& left_out_extensions) {
  std::vector<std::vector<std::string>> out;
  for (const auto& kind : kinds) {
    Result<QueryResult> rows = conn.Exec(kind.sql);
    if (!rows.ok()) return rows.status().WithContext("reading the " + kind.kind + " names");
    std::vector<std::string> names;
    for (int r = 0; r < rows->rows(); ++r) {
      const std::string schema = rows->GetString(r, 0);
      if (filter.ExcludesSchema(schema)) continue;
      if (!rows->IsNull(r, 2) && filter.ExcludesTable(schema, rows->GetString(r, 2))) continue;
      std::string name = rows->GetString(r, 1);
      if (kind.kind == "extension" &&
          std::find(left_out_extensions.begin(), left_out_extensions.end(), name) !=
              left_out_extensions.end()) {
        continue;
      }
      names.push_back(std::move(name));
    }
    std::sort(names.begin(), names.end());
    out.push_back(std::move(names));
  }
  return out;
}

// One side's result for one table.
struct Checksum {
  int64_t rows = -1;
  std::string checksum;
  std::string error;
};

// The checksum query of one table: order-independent (a sum), over each
// row's text in the byte order of the "C" collation (so independent of the
// database's collation). sum(bigint) is numeric: it cannot overflow. The
// row is `t.*`, never a bare `t`: in a table with a column named t, that
// names the column, and only it would be compared.
// A partition tree loaded through its root is read at the root, with its
// partitions (not ONLY); the row text is the root's row type on both sides.
std::string ChecksumSql(const RelationKey& table, bool partition_tree) {
  return std::string(
             "SELECT count(*), coalesce(sum(hashtextextended((t.*)::text COLLATE "
             "pg_catalog.\"C\", 0)), 0) FROM ") +
         (partition_tree ? "" : "ONLY ") + QualifiedName(table.schema, table.name) + " AS t";
}

// The checksum of the rows of an extension's configuration table that its
// condition selects: the same sum as ChecksumSql, over the same query on
// both sides (the source's columns and condition).
std::string ConfigChecksumSql(const ExtensionConfigTable& table) {
  return "SELECT count(*), coalesce(sum(hashtextextended((t.*)::text COLLATE pg_catalog.\"C\", "
         "0)), 0) FROM (" +
         table.SelectSql() + ") AS t";
}

// The tables of one side, read by up to `jobs` sessions in parallel, each
// taking the next table from the shared queue. Session 0 is the side's main
// session; the others are opened at the shared snapshot.
struct SideWork {
  VerifyRun* run = nullptr;
  SessionSpec spec;
  std::optional<std::string> snapshot;
  Connection* main = nullptr;
  std::string after_lock_wait;       // VerifyOptions::after_lock_wait
  std::vector<RelationKey> tables;   // by query index
  std::vector<std::string> queries;  // in the order to read; "" = nothing to read
  std::vector<Checksum> results;     // by query index
  std::atomic<size_t> next{0};

  void Worker(int index) {
    std::optional<Session> own;
    Connection* conn = main;
    if (index > 0) {
      if (next.load() >= queries.size()) return;  // nothing left to share
      // An extra session that cannot be had (the server is out of
      // connections, say) is no failure: session 0 reads what is left.
      Result<Session> opened = OpenSession(spec, snapshot);
      if (!opened.ok()) {
        spdlog::debug("verifying with fewer sessions on the {}: {}", spec.role,
                      opened.status().ToString());
        return;
      }
      own = std::move(*opened);
      conn = own->conn.get();
    }
    for (;;) {
      if (run->stopped()) return;
      size_t i = next.fetch_add(1);
      if (i >= queries.size()) return;
      if (queries[i].empty()) continue;
      Result<Read> read = GuardedRead(*conn, queries[i]);
      if (!read.ok()) {
        // Another session holds the table: said with who, before the
        // other sessions are stopped.
        const RelationKey& table = tables[i];
        run->Fail(IsLockTimeout(read.status())
                      ? ExplainLockTimeout(read.status(), {&spec},
                                           "verifying " + table.schema + "." + table.name,
                                           QualifiedName(table.schema, table.name), after_lock_wait)
                      : read.status().WithContext("checksumming on the " + spec.role));
        return;
      }
      Checksum& out = results[i];
      if (read->result) {
        out.rows = read->result->GetInt(0, 0);
        out.checksum = read->result->GetString(0, 1);
      } else {
        out.error = read->error;
      }
    }
  }

  int Workers(int jobs) const {
    auto work = std::count_if(queries.begin(), queries.end(),
                              [](const std::string& q) { return !q.empty(); });
    return static_cast<int>(std::min<int64_t>(std::max(jobs, 1), work));
  }
};

std::vector<SchemaVerification> CompareSchema(const std::vector<SchemaKind>& kinds,
                                              const std::vector<std::vector<std::string>>& source,
                                              const std::vector<std::vector<std::string>>& target) {
  std::vector<SchemaVerification> out;
  for (size_t k = 0; k < kinds.size(); ++k) {
    SchemaVerification v;
    v.kind = kinds[k].kind;
    v.source_count = static_cast<int64_t>(source[k].size());
    v.target_count = static_cast<int64_t>(target[k].size());
    std::set_difference(source[k].begin(), source[k].end(), target[k].begin(), target[k].end(),
                        std::back_inserter(v.missing_on_target));
    std::set_difference(target[k].begin(), target[k].end(), source[k].begin(), source[k].end(),
                        std::back_inserter(v.extra_on_target));
    out.push_back(std::move(v));
  }
  return out;
}

// The one side's checksum of `table`; the server's refusal in `error`.
Status ReadChecksum(Connection& conn, const RelationKey& table, bool partition_tree,
                    Checksum* out) {
  Result<Read> read = GuardedRead(conn, ChecksumSql(table, partition_tree));
  if (!read.ok()) return read.status();
  if (read->result) {
    out->rows = read->result->GetInt(0, 0);
    out->checksum = read->result->GetString(0, 1);
  } else {
    out->error = read->error;
  }
  return Status::Ok();
}

// The relations and sequences of both sides, as the filter leaves them.
struct Catalogs {
  std::map<RelationKey, RelationInfo> source_relations;
  std::map<RelationKey, RelationInfo> target_relations;
  std::set<RelationKey> source_sequences;
  std::set<RelationKey> target_sequences;
  // Partition trees loaded through their root, as the source has them.
  std::set<RelationKey> tree_roots;
  std::set<RelationKey> tree_leaves;
};

Status SourceCatalogContext(const Status& s) { return s.WithContext("reading the source catalog"); }
Status TargetCatalogContext(const Status& s) { return s.WithContext("reading the target catalog"); }

Result<Catalogs> ReadCatalogs(Connection& src_conn, Connection& dst_conn,
                              const ObjectFilter& filter) {
  Catalogs out;
  auto source_relations = ReadRelations(src_conn, filter);
  if (!source_relations.ok()) return SourceCatalogContext(source_relations.status());
  auto target_relations = ReadRelations(dst_conn, filter);
  if (!target_relations.ok()) return TargetCatalogContext(target_relations.status());
  auto source_sequences = ReadSequences(src_conn, filter);
  if (!source_sequences.ok()) return SourceCatalogContext(source_sequences.status());
  auto target_sequences = ReadSequences(dst_conn, filter);
  if (!target_sequences.ok()) return TargetCatalogContext(target_sequences.status());
  out.source_relations = std::move(*source_relations);
  out.target_relations = std::move(*target_relations);
  out.source_sequences = std::move(*source_sequences);
  out.target_sequences = std::move(*target_sequences);
  Result<std::vector<RootLoadedTree>> trees = ReadRootLoadedTrees(src_conn);
  if (!trees.ok()) return SourceCatalogContext(trees.status());
  for (const auto& tree : *trees) {
    out.tree_roots.insert({tree.schema, tree.name});
    for (const auto& leaf : tree.leaves) out.tree_leaves.insert({leaf.schema, leaf.name});
  }
  return out;
}

// The names of every schema kind on both sides, compared.
Result<std::vector<SchemaVerification>> VerifySchema(Connection& src_conn, Connection& dst_conn,
                                                     const VerifyOptions& options) {
  const std::vector<SchemaKind> kinds = SchemaKinds(src_conn.server_version());
  auto source_names = ReadSchemaNames(src_conn, kinds, options.filter, options.left_out_extensions);
  if (!source_names.ok()) return SourceCatalogContext(source_names.status());
  auto target_names = ReadSchemaNames(dst_conn, SchemaKinds(dst_conn.server_version()),
                                      options.filter, options.left_out_extensions);
  if (!target_names.ok()) return TargetCatalogContext(target_names.status());
  return CompareSchema(kinds, *source_names, *target_names);
}

// Sequences. Their values are not transactional: they are read as they
// are now, whatever the snapshot.
Result<std::vector<SequenceVerification>> VerifySequences(Connection& src_conn,
                                                          Connection& dst_conn,
                                                          const Catalogs& catalogs) {
  const std::vector<RelationKey> on_source(catalogs.source_sequences.begin(),
                                           catalogs.source_sequences.end());
  Result<std::vector<SequenceRead>> source = ReadSequenceValues(src_conn, on_source);
  if (!source.ok()) return source.status();
  // The target's: those read on the source and present there.
  std::vector<RelationKey> on_target;
  for (size_t i = 0; i < on_source.size(); ++i) {
    if ((*source)[i].error.empty() && catalogs.target_sequences.count(on_source[i]) != 0) {
      on_target.push_back(on_source[i]);
    }
  }
  Result<std::vector<SequenceRead>> target = ReadSequenceValues(dst_conn, on_target);
  if (!target.ok()) return target.status();
  std::vector<SequenceVerification> out;
  size_t t = 0;
  for (size_t i = 0; i < on_source.size(); ++i) {
    SequenceVerification v;
    v.schema = on_source[i].schema;
    v.name = on_source[i].name;
    v.source_last_value = (*source)[i].value;
    if (!(*source)[i].error.empty()) {
      v.error = "source: " + (*source)[i].error;
    } else if (t < on_target.size() && !(on_target[t] < on_source[i]) &&
               !(on_source[i] < on_target[t])) {
      v.target_last_value = (*target)[t].value;
      if (!(*target)[t].error.empty()) v.error = "target: " + (*target)[t].error;
      ++t;
    } else {
      v.error = kMissingOnTarget;
    }
    out.push_back(std::move(v));
  }
  return out;
}

using TableList = std::vector<std::pair<RelationKey, RelationInfo>>;

// Tables: leaves only (a partitioned table has no rows of its own), and
// materialized views that are populated on the source; not the tables
// whose data the filter excludes. Largest first, so that a big table does
// not start last. The tables the caller compared already go to `done`
// instead.
TableList TablesToChecksum(const Catalogs& catalogs, const VerifyOptions& options,
                           std::vector<TableVerification>* done) {
  std::map<RelationKey, const TableVerification*> compared;
  for (const auto& table : options.compared_tables) compared[{table.schema, table.name}] = &table;
  TableList tables;
  for (auto [key, info] : catalogs.source_relations) {
    info.partition_tree = catalogs.tree_roots.count(key) != 0;
    if (catalogs.tree_leaves.count(key) != 0) continue;  // compared with its root
    if ((info.kind == 'p' && !info.partition_tree) || (info.kind == 'm' && !info.populated)) {
      continue;
    }
    if (info.kind != 'm' && options.filter.ExcludesTableData(key.schema, key.name)) continue;
    auto found = compared.find(key);
    if (found != compared.end()) {
      done->push_back(*found->second);
      continue;
    }
    tables.emplace_back(key, info);
  }
  std::stable_sort(tables.begin(), tables.end(),
                   [](const auto& a, const auto& b) { return a.second.size > b.second.size; });
  return tables;
}

// Gives each side its queries (none where the target lacks the table, or
// has it unpopulated: the reason in `target_errors`).
void PlanChecksums(const TableList& tables, const Catalogs& catalogs, SideWork& source_work,
                   SideWork& target_work, std::vector<std::string>& target_errors) {
  target_errors.assign(tables.size(), "");
  for (size_t i = 0; i < tables.size(); ++i) {
    const RelationKey& key = tables[i].first;
    const bool tree = tables[i].second.partition_tree;
    source_work.queries.push_back(ChecksumSql(key, tree));
    auto found = catalogs.target_relations.find(key);
    std::string sql;
    if (found == catalogs.target_relations.end()) {
      target_errors[i] = kMissingOnTarget;
    } else if (found->second.kind == 'm' && !found->second.populated) {
      target_errors[i] = "not populated on the target";
    } else {
      sql = ChecksumSql(key, tree);
    }
    target_work.queries.push_back(std::move(sql));
    source_work.tables.push_back(key);
    target_work.tables.push_back(key);
  }
  source_work.results.resize(tables.size());
  target_work.results.resize(tables.size());
}

// Runs both sides' workers and waits for them; the failure, if any.
std::optional<Status> RunChecksumWorkers(VerifyRun& run, SideWork& source_work,
                                         SideWork& target_work, int jobs) {
  std::vector<std::thread> threads;
  try {
    for (SideWork* work : {&source_work, &target_work}) {
      for (int w = 0; w < work->Workers(jobs); ++w) {
        threads.emplace_back([work, w] { work->Worker(w); });
      }
    }
  } catch (const std::system_error& e) {
    run.Fail(Status(StatusCode::kIoError, std::string("cannot start a thread: ") + e.what()));
  }
  for (auto& t : threads) t.join();
  return run.Failure();
}

// One TableVerification per table, from both sides' checksums.
void CollectChecksums(const TableList& tables, const SideWork& source_work,
                      const SideWork& target_work, const std::vector<std::string>& target_errors,
                      std::vector<TableVerification>* out) {
  for (size_t i = 0; i < tables.size(); ++i) {
    TableVerification v;
    v.schema = tables[i].first.schema;
    v.name = tables[i].first.name;
    v.partition_tree = tables[i].second.partition_tree;
    const Checksum& s = source_work.results[i];
    const Checksum& t = target_work.results[i];
    v.source_rows = s.rows;
    v.source_checksum = s.checksum;
    v.target_rows = t.rows;
    v.target_checksum = t.checksum;
    if (!s.error.empty()) {
      v.error = "source: " + s.error;
    } else if (!target_errors[i].empty()) {
      v.error = target_errors[i];
    } else if (!t.error.empty()) {
      v.error = "target: " + t.error;
    }
    out->push_back(std::move(v));
  }
}

// The extensions' configuration tables (their selected rows) and
// sequences, read on each side's main session.
// `sequences` and `tables` say which of them.
Status VerifyExtensionConfig(Connection& src_conn, Connection& dst_conn,
                             const VerifyOptions& options, bool tables, bool sequences,
                             DatabaseVerification* result) {
  Result<std::vector<ExtensionConfigTable>> source =
      ReadExtensionConfig(src_conn, options.filter, options.left_out_extensions);
  if (!source.ok()) return SourceCatalogContext(source.status());
  Result<std::vector<ExtensionConfigTable>> target =
      ReadExtensionConfig(dst_conn, options.filter, options.left_out_extensions);
  if (!target.ok()) return TargetCatalogContext(target.status());
  std::set<RelationKey> on_target;
  for (const auto& t : *target) on_target.insert({t.schema, t.name});
  for (const auto& t : *source) {
    const RelationKey key{t.schema, t.name};
    const bool present = on_target.count(key) != 0;
    if (t.sequence) {
      if (!sequences) continue;
      SequenceVerification v;
      v.schema = t.schema;
      v.name = t.name;
      std::string error;
      Result<std::optional<int64_t>> value = ReadSequenceValue(src_conn, key, &error);
      if (!value.ok()) return value.status();
      v.source_last_value = *value;
      if (!error.empty()) {
        v.error = "source: " + error;
      } else if (!present) {
        v.error = kMissingOnTarget;
      } else {
        value = ReadSequenceValue(dst_conn, key, &error);
        if (!value.ok()) return value.status();
        v.target_last_value = *value;
        if (!error.empty()) v.error = "target: " + error;
      }
      result->sequences.push_back(std::move(v));
      continue;
    }
    if (!tables) continue;
    TableVerification v;
    v.schema = t.schema;
    v.name = t.name;
    v.extension = t.extension;
    Result<Read> read = GuardedRead(src_conn, ConfigChecksumSql(t));
    if (!read.ok()) return read.status().WithContext("checksumming on the source");
    if (read->result) {
      v.source_rows = read->result->GetInt(0, 0);
      v.source_checksum = read->result->GetString(0, 1);
    } else {
      v.error = "source: " + read->error;
    }
    if (!present) {
      if (v.error.empty()) v.error = kMissingOnTarget;
    } else {
      read = GuardedRead(dst_conn, ConfigChecksumSql(t));
      if (!read.ok()) return read.status().WithContext("checksumming on the target");
      if (read->result) {
        v.target_rows = read->result->GetInt(0, 0);
        v.target_checksum = read->result->GetString(0, 1);
      } else if (v.error.empty()) {
        v.error = "target: " + read->error;
      }
    }
    result->tables.push_back(std::move(v));
  }
  return Status::Ok();
}

}  // namespace

TableChecksums::TableChecksums(std::unique_ptr<Connection> source, Transaction source_txn,
                               std::unique_ptr<Connection> target)
    : source_(std::move(source)), target_(std::move(target)), source_txn_(std::move(source_txn)) {}

TableChecksums::~TableChecksums() = default;

Result<std::unique_ptr<TableChecksums>> TableChecksums::Open(
    const ConnInfo& source, const std::string& source_snapshot, const ConnInfo& target,
    std::chrono::milliseconds connect_timeout, std::chrono::milliseconds lock_timeout,
    const CancelToken* cancel) {
  Result<Session> src =
      OpenSession({&source, "source", connect_timeout, cancel, lock_timeout}, source_snapshot);
  if (!src.ok()) return src.status();
  // The target's transaction is begun for every table (Compare).
  Result<std::unique_ptr<Connection>> dst =
      ConnectSession({&target, "target", connect_timeout, cancel, lock_timeout});
  if (!dst.ok()) return dst.status();
  return std::unique_ptr<TableChecksums>(
      new TableChecksums(std::move(src->conn), std::move(*src->txn), std::move(*dst)));
}

Result<TableVerification> TableChecksums::Compare(const std::string& schema,
                                                  const std::string& name, bool partition_tree) {
  const RelationKey key{schema, name};
  Checksum source_sum;
  Checksum target_sum;
  Status source_status;
  // The source's scan runs beside the target's, each on its own server.
  std::thread source_side(
      [&] { source_status = ReadChecksum(*source_, key, partition_tree, &source_sum); });
  Result<Transaction> target_txn = Transaction::Begin(*target_, ReadOptions(std::nullopt));
  Status target_status = target_txn.status();
  if (target_status.ok()) {
    target_status = ReadChecksum(*target_, key, partition_tree, &target_sum);
  }
  if (target_status.ok()) target_status = target_txn->Commit();
  source_side.join();
  if (!source_status.ok()) return source_status.WithContext("checksumming on the source");
  if (!target_status.ok()) return target_status.WithContext("checksumming on the target");
  TableVerification v;
  v.schema = schema;
  v.name = name;
  v.source_rows = source_sum.rows;
  v.source_checksum = source_sum.checksum;
  v.target_rows = target_sum.rows;
  v.target_checksum = target_sum.checksum;
  v.partition_tree = partition_tree;
  if (!source_sum.error.empty()) {
    v.error = "source: " + source_sum.error;
  } else if (!target_sum.error.empty()) {
    v.error = "target: " + target_sum.error;
  }
  return v;
}

Result<DatabaseVerification> VerifyDatabase(const ConnInfo& source, const ConnInfo& target,
                                            const VerifyOptions& options) {
  if (options.cancel != nullptr && options.cancel->cancelled()) {
    return Status(StatusCode::kCancelled, "verification cancelled");
  }
  VerifyRun run(options.cancel);
  const ObjectFilter& filter = options.filter;

  SessionSpec source_spec{&source, "source", options.connect_timeout, run.token(),
                          options.lock_timeout};
  SessionSpec target_spec{&target, "target", options.connect_timeout, run.token(),
                          options.lock_timeout};
  // The error to return for `status`; a read of the main sessions that
  // waited too long for a lock, with the sessions holding one on either side.
  auto fail = [&](const Status& status) {
    return run.Explain(ExplainLockTimeout(status, {&source_spec, &target_spec}, "verifying", "",
                                          options.after_lock_wait));
  };
  Result<Session> src = OpenSession(source_spec, options.source_snapshot);
  if (!src.ok()) return fail(src.status());
  Result<Session> dst = OpenSession(target_spec, options.target_snapshot);
  if (!dst.ok()) return fail(dst.status());
  Connection& src_conn = *src->conn;
  Connection& dst_conn = *dst->conn;

  // Every session of a side reads at the same snapshot.
  std::optional<std::string> source_snapshot = options.source_snapshot;
  if (!source_snapshot) {
    Result<std::optional<std::string>> shared = ShareSnapshot(*src);
    if (!shared.ok()) return fail(shared.status().WithContext("exporting a snapshot"));
    source_snapshot = *shared;
  }
  Result<std::optional<std::string>> target_snapshot = options.target_snapshot;
  if (!options.target_snapshot) target_snapshot = ShareSnapshot(*dst);
  if (!target_snapshot.ok()) {
    return fail(target_snapshot.status().WithContext("exporting a snapshot"));
  }

  // A filter whose include patterns select nothing on the source is an
  // error, never an empty comparison that passes.
  Result<ResolvedObjectFilter> resolved = ResolveObjectFilter(src_conn, filter, Deadline::Never());
  if (!resolved.ok()) return fail(resolved.status());

  DatabaseVerification result;
  result.source_database = src_conn.database();
  result.target_database = dst_conn.database();

  Result<Catalogs> catalogs = ReadCatalogs(src_conn, dst_conn, filter);
  if (!catalogs.ok()) return fail(catalogs.status());
  Result<std::vector<SchemaVerification>> schema = VerifySchema(src_conn, dst_conn, options);
  if (!schema.ok()) return fail(schema.status());
  result.schema = std::move(*schema);
  for (auto compare : {CompareDatabaseProperties, CompareLargeObjects}) {
    Result<std::vector<PropertyVerification>> properties = compare(src_conn, dst_conn, options);
    if (!properties.ok()) return fail(properties.status());
    result.properties.insert(result.properties.end(), properties->begin(), properties->end());
  }
  const bool read_sequences = options.sequences && !options.compared_sequences;
  if (options.compared_sequences) result.sequences = *options.compared_sequences;
  if (read_sequences) {
    Result<std::vector<SequenceVerification>> sequences =
        VerifySequences(src_conn, dst_conn, *catalogs);
    if (!sequences.ok()) return fail(sequences.status());
    result.sequences = std::move(*sequences);
  }

  const TableList tables = TablesToChecksum(*catalogs, options, &result.tables);
  SideWork source_work;
  SideWork target_work;
  source_work.run = target_work.run = &run;
  source_work.spec = source_spec;
  target_work.spec = target_spec;
  source_work.snapshot = source_snapshot;
  target_work.snapshot = *target_snapshot;
  source_work.main = &src_conn;
  target_work.main = &dst_conn;
  source_work.after_lock_wait = target_work.after_lock_wait = options.after_lock_wait;
  std::vector<std::string> target_errors;
  PlanChecksums(tables, *catalogs, source_work, target_work, target_errors);
  if (std::optional<Status> failure =
          RunChecksumWorkers(run, source_work, target_work, options.jobs)) {
    return *failure;
  }
  CollectChecksums(tables, source_work, target_work, target_errors, &result.tables);
  Status config = VerifyExtensionConfig(src_conn, dst_conn, options, true, read_sequences, &result);
  if (!config.ok()) return fail(config);

  std::sort(result.tables.begin(), result.tables.end(), [](const auto& a, const auto& b) {
    return std::tie(a.schema, a.name) < std::tie(b.schema, b.name);
  });
  spdlog::debug("verified {} -> {}: {} tables, {} sequences, {} mismatches", result.source_database,
                result.target_database, result.tables.size(), result.sequences.size(),
                result.Mismatches());
  return result;
}

Result<std::vector<SequenceVerification>> CompareSequences(const ConnInfo& source,
                                                           const ConnInfo& target,
                                                           const VerifyOptions& options) {
  VerifyRun run(options.cancel);
  const SessionSpec source_spec{&source, "source", options.connect_timeout, run.token(),
                                options.lock_timeout};
  const SessionSpec target_spec{&target, "target", options.connect_timeout, run.token(),
                                options.lock_timeout};
  auto fail = [&](const Status& status) {
    return run.Explain(ExplainLockTimeout(status, {&source_spec, &target_spec},
                                          "comparing sequences", "", options.after_lock_wait));
  };
  Result<Session> src = OpenSession(source_spec, std::nullopt);
  if (!src.ok()) return fail(src.status());
  Result<Session> dst = OpenSession(target_spec, std::nullopt);
  if (!dst.ok()) return fail(dst.status());
  Result<Catalogs> catalogs = ReadCatalogs(*src->conn, *dst->conn, options.filter);
  if (!catalogs.ok()) return fail(catalogs.status());
  Result<std::vector<SequenceVerification>> sequences =
      VerifySequences(*src->conn, *dst->conn, *catalogs);
  if (!sequences.ok()) return fail(sequences.status());
  DatabaseVerification config;
  Status read = VerifyExtensionConfig(*src->conn, *dst->conn, options, false, true, &config);
  if (!read.ok()) return fail(read);
  sequences->insert(sequences->end(), config.sequences.begin(), config.sequences.end());
  return sequences;
}

}  // namespace pgcourier
