#include "replication/health.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "catalog/copy_catalog.h"
#include "pg/quote.h"
#include "util/cancel.h"

namespace pgcourier {
namespace {

struct Column {
  std::string name;
  std::string type;
  bool not_null = false;
  std::string default_expr;  // or the generation expression
  bool generated = false;
  bool inherited = false;  // from the parent of a partition
};

struct Relation {
  std::string schema;
  std::string name;
  bool partitioned = false;
  bool partition = false;
  std::string parent_schema;
  std::string parent_name;
  std::string bound;         // FOR VALUES ... / DEFAULT
  std::string partition_by;  // of a partitioned table
  std::string primary_key;   // PRIMARY KEY (...)
  bool covered = false;      // published itself or through an ancestor
  int depth = 0;             // ancestors
  std::vector<Column> columns;
  std::string Key() const { return schema + "." + name; }
  std::string Qualified() const { return QualifiedName(schema, name); }
};

// Every user table (plain and partitioned) with its columns; `publication`
// non-empty: whether the publication covers each one. `definitions`: the
// expressions too (defaults, partition bounds and keys, the primary key),
// which the DDL needs on the source only; the functions that print them
// lock the table, which on the target may be held by a session the
// replication waits for.
Result<std::map<std::string, Relation>> ReadRelations(Connection& conn,
                                                      const std::string& publication,
                                                      bool definitions) {
  const std::string covered =
      publication.empty()
          ? "false"
          : "EXISTS (SELECT 1 FROM (SELECT c.oid AS relid UNION "
            "SELECT relid::oid FROM pg_catalog.pg_partition_ancestors(c.oid)) x "
            "JOIN pg_catalog.pg_class c2 ON c2.oid = x.relid "
            "JOIN pg_catalog.pg_namespace n2 ON n2.oid = c2.relnamespace "
            "JOIN pg_catalog.pg_publication_tables pt ON pt.schemaname = n2.nspname "
            "AND pt.tablename = c2.relname WHERE pt.pubname = $1)";
  const std::string bound =
      definitions ? "coalesce(pg_catalog.pg_get_expr(c.relpartbound, c.oid), '')" : "''";
  const std::string partition_key =
      definitions ? "CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) ELSE '' END"
                  : "''";
  const std::string primary_key =
      definitions ? "coalesce((SELECT pg_catalog.pg_get_constraintdef(k.oid) FROM "
                    "pg_catalog.pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p'), '')"
                  : "''";
  const std::string default_expr =
      definitions ? "coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')" : "''";
  const std::string sql = fmt::format(
      "SELECT n.nspname, c.relname, c.relkind = 'p', c.relispartition, pn.nspname, p.relname, "
      "{1}, {2}, {3}, {0}, "
      "(SELECT count(*) FROM pg_catalog.pg_partition_ancestors(c.oid)), "
      "a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, "
      "{4}, a.attgenerated <> '', "
      "a.attinhcount > 0 "
      "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "LEFT JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid AND c.relispartition "
      "LEFT JOIN pg_catalog.pg_class p ON p.oid = i.inhparent "
      "LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace "
      "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
      "AND NOT a.attisdropped "
      "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
      "WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' "
      "AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> '_pgcourier' "
      "ORDER BY 1, 2, a.attnum",
      covered, bound, partition_key, primary_key, default_expr);
  Result<QueryResult> rows =
      publication.empty() ? conn.Exec(sql) : conn.ExecParams(sql, {publication});
  if (!rows.ok()) return rows.status().WithContext("reading the tables and their columns");
  std::map<std::string, Relation> out;
  for (int r = 0; r < rows->rows(); ++r) {
    const std::string key = rows->GetString(r, 0) + "." + rows->GetString(r, 1);
    auto [it, fresh] = out.try_emplace(key);
    Relation& rel = it->second;
    if (fresh) {
      rel.schema = rows->GetString(r, 0);
      rel.name = rows->GetString(r, 1);
      rel.partitioned = rows->GetBool(r, 2);
      rel.partition = rows->GetBool(r, 3);
      rel.parent_schema = rows->GetString(r, 4);
      rel.parent_name = rows->GetString(r, 5);
      rel.bound = rows->GetString(r, 6);
      rel.partition_by = rows->GetString(r, 7);
      rel.primary_key = rows->GetString(r, 8);
      rel.covered = rows->GetBool(r, 9);
      rel.depth = static_cast<int>(rows->GetInt(r, 10));
    }
    if (rows->IsNull(r, 11)) continue;
    rel.columns.push_back({rows->GetString(r, 11), rows->GetString(r, 12), rows->GetBool(r, 13),
                           rows->GetString(r, 14), rows->GetBool(r, 15), rows->GetBool(r, 16)});
  }
  return out;
}

std::string ColumnDefinition(const Column& c) {
  std::string out = QuoteIdent(c.name) + " " + c.type;
  if (c.generated) {
    out += " GENERATED ALWAYS AS (" + c.default_expr + ") STORED";
  } else if (!c.default_expr.empty()) {
    out += " DEFAULT " + c.default_expr;
  }
  if (c.not_null) out += " NOT NULL";
  return out;
}

const Column* FindColumn(const Relation& rel, const std::string& name) {
  for (const auto& c : rel.columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string Joined(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += separator;
    out += p;
  }
  return out;
}

}  // namespace

const char* Name(SchemaDrift::Kind kind) {
  switch (kind) {
    case SchemaDrift::Kind::kColumnAdded:
      return "column_added";
    case SchemaDrift::Kind::kColumnDropped:
      return "column_dropped";
    case SchemaDrift::Kind::kColumnType:
      return "column_type";
    case SchemaDrift::Kind::kTableMissing:
      return "table_missing";
    case SchemaDrift::Kind::kPartitionMissing:
      return "partition_missing";
    case SchemaDrift::Kind::kNotPublished:
      break;
  }
  return "not_published";
}

std::string ReplicationHealth::Error() const { return Joined(problems, "; "); }
std::string ReplicationHealth::Hint() const { return Joined(hints, "; "); }

Result<std::optional<ErrorCounts>> ReadErrorCounts(Connection& target,
                                                   const std::string& subscription) {
  if (target.server_version() < 150000) return std::optional<ErrorCounts>();
  Result<QueryResult> counts = target.ExecParams(
      "SELECT st.apply_error_count, st.sync_error_count FROM pg_catalog.pg_stat_subscription_stats "
      "st JOIN pg_catalog.pg_subscription s ON s.oid = st.subid WHERE s.subname = $1 AND "
      "s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = "
      "pg_catalog.current_database())",
      {subscription});
  if (!counts.ok()) return counts.status().WithContext("reading the subscription's error counts");
  if (counts->rows() == 0) return std::optional<ErrorCounts>(ErrorCounts{});
  return std::optional<ErrorCounts>(ErrorCounts{counts->GetInt(0, 0), counts->GetInt(0, 1)});
}

Result<std::vector<SchemaDrift>> ReadSchemaDrift(Connection& source, Connection& target,
                                                 const ReplicationNames& names,
                                                 const ObjectFilter& filter) {
  Result<CopyCatalog> catalog = ReadCopyCatalog(source, filter, Deadline::Never());
  if (!catalog.ok()) return catalog.status().WithContext("reading the source's tables");
  Result<std::map<std::string, Relation>> on_source =
      ReadRelations(source, names.publication, true);
  if (!on_source.ok()) return on_source.status();
  Result<std::map<std::string, Relation>> on_target = ReadRelations(target, "", false);
  if (!on_target.ok()) return on_target.status();
  // The tables the move covers, their partitioned ancestors, and whether
  // replication can carry them.
  std::map<std::string, bool> scope;
  for (const auto& t : catalog->tables) {
    scope[t.schema + "." + t.name] = t.replicable;
    for (const auto& leaf : t.partitions) scope[leaf.schema + "." + leaf.name] = t.replicable;
  }
  std::vector<const Relation*> ordered;
  std::set<std::string> added;
  for (const auto& entry : scope) {
    auto rel = on_source->find(entry.first);
    while (rel != on_source->end() && added.insert(rel->first).second) {
      ordered.push_back(&rel->second);
      if (!rel->second.partition) break;
      rel = on_source->find(rel->second.parent_schema + "." + rel->second.parent_name);
    }
  }
  // Parents before their partitions.
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const Relation* a, const Relation* b) { return a->depth < b->depth; });
  std::vector<SchemaDrift> drift;
  for (const Relation* rel : ordered) {
    auto there = on_target->find(rel->Key());
    auto in_scope = scope.find(rel->Key());
    const bool replicable = in_scope != scope.end() && in_scope->second;
    if (there == on_target->end()) {
      SchemaDrift d;
      d.table = rel->Key();
      d.additive = true;
      if (rel->partition) {
        d.kind = SchemaDrift::Kind::kPartitionMissing;
        d.detail = fmt::format("the partition {} of {}.{} ({}) is on the source, not on the target",
                               rel->Key(), rel->parent_schema, rel->parent_name, rel->bound);
        d.target_ddl = fmt::format("CREATE TABLE {} PARTITION OF {} {}", rel->Qualified(),
                                   QualifiedName(rel->parent_schema, rel->parent_name), rel->bound);
      } else {
        d.kind = SchemaDrift::Kind::kTableMissing;
        d.detail = "the table " + rel->Key() + " is on the source, not on the target";
        std::vector<std::string> parts;
        for (const auto& c : rel->columns) parts.push_back(ColumnDefinition(c));
        if (!rel->primary_key.empty()) parts.push_back(rel->primary_key);
        d.target_ddl = fmt::format("CREATE TABLE {} ({}){}", rel->Qualified(), Joined(parts, ", "),
                                   rel->partitioned ? " PARTITION BY " + rel->partition_by : "");
      }
      if (!rel->partitioned && !rel->covered) {
        if (replicable) {
          d.detail += ", and outside the publication " + names.publication;
          d.source_ddl = "ALTER PUBLICATION " + QuoteIdent(names.publication) + " ADD TABLE ONLY " +
                         rel->Qualified();
        } else {
          d.detail += " (no replica identity: cutover copies its rows)";
        }
      }
      d.target_ddl += ";";
      if (!d.source_ddl.empty()) d.source_ddl += ";";
      drift.push_back(std::move(d));
      continue;
    }
    for (const auto& c : rel->columns) {
      if (rel->partition && c.inherited) continue;  // its parent's
      const Column* other = FindColumn(there->second, c.name);
      if (other == nullptr) {
        drift.push_back(
            {SchemaDrift::Kind::kColumnAdded, rel->Key(),
             fmt::format("the column {} ({}) of {} is on the source, not on the target", c.name,
                         c.type, rel->Key()),
             fmt::format("ALTER TABLE {} ADD COLUMN {};", rel->Qualified(), ColumnDefinition(c)),
             "", true});
      } else if (other->type != c.type) {
        drift.push_back({SchemaDrift::Kind::kColumnType, rel->Key(),
                         fmt::format("the column {} of {} is {} on the source, {} on the target",
                                     c.name, rel->Key(), c.type, other->type),
                         fmt::format("ALTER TABLE {} ALTER COLUMN {} TYPE {};", rel->Qualified(),
                                     QuoteIdent(c.name), c.type),
                         "", false});
      }
    }
    for (const auto& c : there->second.columns) {
      if (there->second.partition && c.inherited) continue;
      if (FindColumn(*rel, c.name) != nullptr) continue;
      drift.push_back(
          {SchemaDrift::Kind::kColumnDropped, rel->Key(),
           fmt::format("the column {} of {} is on the target, no longer on the source", c.name,
                       rel->Key()),
           fmt::format("ALTER TABLE {} DROP COLUMN {};", rel->Qualified(), QuoteIdent(c.name)), "",
           false});
    }
  }
  return drift;
}

// The slot's WAL (13+): lost is broken, unreserved a warning.
Status ReadSlotWal(Connection& source, const ReplicationNames& names, const std::string& work_dir,
                   ReplicationHealth& h) {
  Result<QueryResult> slot = source.ExecParams(
      "SELECT coalesce(wal_status, ''), coalesce(safe_wal_size, -1) FROM "
      "pg_catalog.pg_replication_slots WHERE slot_name = $1",
      {names.slot});
  if (!slot.ok()) return slot.status().WithContext("reading the replication slot");
  if (slot->rows() > 0) {
    h.wal_status = slot->GetString(0, 0);
    h.safe_wal_size = slot->GetInt(0, 1, -1);
  }
  if (h.wal_status == "lost") {
    h.problems.push_back("the replication slot " + names.slot +
                         " on the source is lost (wal_status lost): the source removed WAL the "
                         "target had not received, so changes since are gone");
    h.hints.push_back("run pgcourier cleanup --dir " + work_dir +
                      ", then move the database again, with max_slot_wal_keep_size on the source "
                      "raised or -1 (unlimited)");
  } else if (h.wal_status == "unreserved") {
    h.warnings.push_back(fmt::format(
        "the slot {} is past max_slot_wal_keep_size (wal_status unreserved): the source may "
        "remove WAL it needs at its next checkpoint, breaking the replication; raise "
        "max_slot_wal_keep_size on the source or run cutover now",
        names.slot));
  }

  // The subscription: enabled, its apply worker, its error counters.
  return Status::Ok();
}

Result<ReplicationHealth> ReadHealth(Connection& source, Connection& target,
                                     const ReplicationNames& names, const ObjectFilter& filter,
                                     const ErrorCounts& baseline, const std::string& work_dir,
                                     bool sample_worker) {
  ReplicationHealth h;
  h.baseline = baseline;
  PGC_RETURN_IF_ERROR(ReadSlotWal(source, names, work_dir, h));

  // Errors past the baseline are a worker that keeps failing only while
  // they go on: the apply worker missing from a sample, or the counters
  // rising during the reading. One that failed once (a lost connection)
  // and runs again is a warning.
  Result<std::optional<ErrorCounts>> first = ReadErrorCounts(target, names.subscription);
  if (!first.ok()) return first.status();
  const bool past_baseline =
      *first && ((*first)->apply > baseline.apply || (*first)->sync > baseline.sync);
  bool exists = false;
  bool steady = true;  // the apply worker in every sample
  const int samples = sample_worker ? 5 : 1;
  for (int i = 0; i < samples; ++i) {
    if (i > 0) SleepFor(std::chrono::milliseconds(250), nullptr);
    Result<QueryResult> sub = target.ExecParams(
        "SELECT s.subenabled, EXISTS (SELECT 1 FROM pg_catalog.pg_stat_subscription st WHERE "
        "st.subid = s.oid AND st.relid IS NULL AND st.pid IS NOT NULL) FROM "
        "pg_catalog.pg_subscription s WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM "
        "pg_catalog.pg_database WHERE datname = pg_catalog.current_database())",
        {names.subscription});
    if (!sub.ok()) return sub.status().WithContext("reading the subscription");
    if (sub->rows() == 0) break;
    exists = true;
    h.subscription_enabled = sub->GetBool(0, 0);
    const bool seen = sub->GetBool(0, 1);
    h.apply_worker = h.apply_worker || seen;
    steady = steady && seen;
    if (!h.subscription_enabled) break;
    if (h.apply_worker && !past_baseline) break;
  }
  Result<std::optional<ErrorCounts>> counts = ReadErrorCounts(target, names.subscription);
  if (!counts.ok()) return counts.status();
  h.errors = *counts;
  const bool rising =
      *first && *counts && ((*counts)->apply > (*first)->apply || (*counts)->sync > (*first)->sync);

  Result<QueryResult> rels = target.ExecParams(
      "SELECT r.srrelid::regclass::text, r.srsubstate::text FROM pg_catalog.pg_subscription_rel r "
      "JOIN pg_catalog.pg_subscription s ON s.oid = r.srsubid WHERE s.subname = $1 AND "
      "r.srsubstate <> 'r' ORDER BY 1",
      {names.subscription});
  if (!rels.ok()) return rels.status().WithContext("reading the subscription's tables");
  for (int r = 0; r < rels->rows(); ++r) {
    h.not_ready.push_back(rels->GetString(r, 0) + " (" + rels->GetString(r, 1) + ")");
  }

  Result<std::vector<SchemaDrift>> drift = ReadSchemaDrift(source, target, names, filter);
  if (!drift.ok()) return drift.status();
  h.drift = std::move(*drift);

  if (!h.drift.empty()) {
    std::vector<std::string> details;
    std::vector<std::string> ddl;
    bool additive = true;
    for (const auto& d : h.drift) {
      details.push_back(d.detail);
      if (!d.target_ddl.empty()) ddl.push_back("on the target: " + d.target_ddl);
      if (!d.source_ddl.empty()) ddl.push_back("on the source: " + d.source_ddl);
      additive = additive && d.additive;
    }
    h.problems.push_back("the schemas differ: " + Joined(details, "; "));
    std::string hint = Joined(ddl, " ");
    if (additive) {
      hint += " (pgcourier sync-schema --dir " + work_dir +
              " --apply runs these and has the subscription copy new tables)";
    } else {
      hint += " (after checking that this is what you want; pgcourier sync-schema --dir " +
              work_dir + " --apply runs only what adds)";
    }
    h.hints.push_back(hint);
  }
  if (exists && !h.subscription_enabled) {
    h.problems.push_back("the subscription " + names.subscription + " on the target is disabled");
    h.hints.push_back("on the target: ALTER SUBSCRIPTION " + QuoteIdent(names.subscription) +
                      " ENABLE;");
  }
  const bool new_errors =
      h.errors && (h.errors->apply > baseline.apply || h.errors->sync > baseline.sync);
  if (new_errors && steady && !rising) {
    h.warnings.push_back(fmt::format(
        "{} apply and {} table synchronization error(s) on the target since the baseline; the "
        "apply worker runs again (a passing failure, e.g. a lost connection)",
        h.errors->apply - baseline.apply, h.errors->sync - baseline.sync));
  } else if (new_errors) {
    h.problems.push_back(
        fmt::format("the subscription's workers on the target keep failing: {} apply and {} table "
                    "synchronization error(s) since {}",
                    h.errors->apply - baseline.apply, h.errors->sync - baseline.sync,
                    baseline.apply + baseline.sync > 0 ? "the last schema change was applied"
                                                       : "the subscription was made"));
    if (h.drift.empty()) {
      h.hints.push_back(
          "the target server's log says why (lines of the logical replication apply worker); "
          "after fixing it, pgcourier sync-schema --dir " +
          work_dir + " --apply checks again and counts errors from then on");
    }
  } else if (exists && h.subscription_enabled && !h.apply_worker) {
    h.problems.push_back("no apply worker runs for the subscription " + names.subscription +
                         " on the target: it keeps failing or cannot start");
    h.hints.emplace_back(
        "the target server's log says why (lines of the logical replication apply worker; "
        "max_logical_replication_workers may be too low)");
  }
  return h;
}

}  // namespace pgcourier
