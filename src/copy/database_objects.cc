#include "copy/database_objects.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "catalog/acl.h"
#include "catalog/user_objects.h"
#include "copy/progress_marks.h"
#include "pg/quote.h"
#include "pg/transaction.h"

namespace pgcourier {

namespace {

// One large object's comment, owner and grants on the source.
struct LargeObjectMeta {
  std::optional<std::string> comment;
  std::string owner;
  std::vector<AclGrant> grants;
};

Result<std::map<uint32_t, LargeObjectMeta>> ReadLargeObjectMeta(Connection& at_snapshot,
                                                                bool grants) {
  std::map<uint32_t, LargeObjectMeta> out;
  Result<QueryResult> rows = at_snapshot.Exec(
      "SELECT m.oid, pg_catalog.obj_description(m.oid, 'pg_largeobject'), "
      "pg_catalog.pg_get_userbyid(m.lomowner) FROM pg_catalog.pg_largeobject_metadata m");
  if (!rows.ok()) return rows.status().WithContext("reading the large objects' owners");
  for (int r = 0; r < rows->rows(); ++r) {
    LargeObjectMeta& meta = out[static_cast<uint32_t>(rows->GetInt(r, 0))];
    meta.comment = rows->GetOptional(r, 1);
    meta.owner = rows->GetString(r, 2);
  }
  if (!grants) return out;
  Result<QueryResult> acl = at_snapshot.Exec(
      GrantRowsSql("m.oid", "m.lomacl", "m.lomowner", "pg_catalog.pg_largeobject_metadata m"));
  if (!acl.ok()) return acl.status().WithContext("reading the large objects' grants");
  for (int r = 0; r < acl->rows(); ++r) {
    out[static_cast<uint32_t>(acl->GetInt(r, 0))].grants.push_back(ReadGrant(*acl, r, 1));
  }
  return out;
}

// Comment, grants, then owner (the grants are made as their owner, the
// target user, before it gives the object away).
Status WriteLargeObjectMeta(Connection& target, uint32_t oid, const LargeObjectMeta& meta,
                            const LargeObjectPolicy& policy, const std::set<std::string>& present,
                            std::set<std::string>* missing) {
  const std::string object = fmt::format("LARGE OBJECT {}", oid);
  if (meta.comment) {
    PGC_RETURN_IF_ERROR(target.Run("COMMENT ON " + object + " IS " + QuoteLiteral(*meta.comment)));
  }
  if (policy.grants && !meta.grants.empty()) {
    for (const std::string& statement :
         GrantStatements(object, "CURRENT_USER", meta.grants, present, missing)) {
      PGC_RETURN_IF_ERROR(target.Run(statement));
    }
  }
  if (policy.owners) {
    if (present.count(meta.owner) == 0) {
      missing->insert(meta.owner);
    } else {
      PGC_RETURN_IF_ERROR(target.Run("ALTER " + object + " OWNER TO " + QuoteIdent(meta.owner)));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<LargeObjectsCopied> CopyLargeObjects(Connection& at_snapshot, Connection& target,
                                            const std::vector<uint32_t>& oids,
                                            const LargeObjectPolicy& policy) {
  LargeObjectsCopied copied;
  Result<std::map<uint32_t, LargeObjectMeta>> metas =
      ReadLargeObjectMeta(at_snapshot, policy.grants);
  if (!metas.ok()) return metas.status();
  std::set<std::string> present;
  if (policy.owners || policy.grants) {
    Result<QueryResult> roles = target.Exec("SELECT rolname FROM pg_catalog.pg_roles");
    if (!roles.ok()) return roles.status().WithContext("reading the target's roles");
    for (int r = 0; r < roles->rows(); ++r) present.insert(roles->GetString(r, 0));
  }
  std::set<std::string> missing;
  Result<Transaction> transaction = Transaction::Begin(target);
  if (!transaction.ok()) return transaction.status();
  for (uint32_t oid : oids) {
    Result<QueryResult> data =
        at_snapshot.ExecParams("SELECT lo_get($1::oid)", {std::to_string(oid)});
    if (!data.ok()) return data.status().WithContext(fmt::format("reading large object {}", oid));
    Status written = target
                         .ExecParams("SELECT lo_from_bytea($1::oid, $2::bytea)",
                                     {std::to_string(oid), data->GetString(0, 0)})
                         .status();
    if (!written.ok()) return written.WithContext(fmt::format("writing large object {}", oid));
    copied.bytes += static_cast<int64_t>(data->Get(0, 0).size() / 2);
    auto meta = metas->find(oid);
    if (meta == metas->end()) continue;
    Status described = WriteLargeObjectMeta(target, oid, meta->second, policy, present, &missing);
    if (!described.ok()) {
      Status error = described.WithContext(fmt::format("large object {}", oid));
      if (policy.owners) {
        error = error.WithHint(
            "to give large objects their owners, the target user must be a superuser or a "
            "member of the owners' roles");
      }
      return error;
    }
  }
  copied.count = static_cast<int64_t>(oids.size());
  if (!missing.empty()) {
    copied.notes.push_back(
        fmt::format("large objects' owners and grants to {} not copied: no such role on the target",
                    fmt::join(missing, ", ")));
  }
  PGC_RETURN_IF_ERROR(target.Run(InsertProgressMarkSql(
      kLargeObjectsStep, {kLargeObjectsStep, 1, copied.count, copied.bytes, ""})));
  PGC_RETURN_IF_ERROR(transaction->Commit());
  return copied;
}

namespace {

// Sequences read and set, and relations analyzed, per statement: bounded,
// since every sequence in a statement is locked until its transaction ends.
constexpr size_t kObjectsPerStatement = 500;

struct SequenceValue {
  std::string last_value;
  std::string is_called;  // "t" / "f"
};

// The source's values of sequences [begin, end) in one round trip.
Status ReadSequenceValues(Connection& at_snapshot, const std::vector<SequenceToSet>& sequences,
                          size_t begin, size_t end, std::vector<SequenceValue>& values) {
  std::string sql;
  for (size_t i = begin; i < end; ++i) {
    if (!sql.empty()) sql += " UNION ALL ";
    sql += fmt::format("SELECT {}, last_value, is_called FROM {}", i,
                       QualifiedName(sequences[i].schema, sequences[i].name));
  }
  Result<QueryResult> rows = at_snapshot.Exec(sql);
  if (!rows.ok()) {
    // The server's error names the sequence (permission denied for
    // sequence ..., relation ... does not exist).
    return rows.status().WithContext(
        end - begin == 1
            ? "reading sequence " + QualifiedName(sequences[begin].schema, sequences[begin].name)
            : fmt::format("reading {} sequences", end - begin));
  }
  for (int r = 0; r < rows->rows(); ++r) {
    const auto i = static_cast<size_t>(rows->GetInt(r, 0));
    values[i] = {rows->GetString(r, 1), rows->GetString(r, 2)};
  }
  return Status::Ok();
}

// setval of sequences [begin, end) on the target in one statement.
Status SetSequenceValues(Connection& target, const std::vector<SequenceToSet>& sequences,
                         const std::vector<SequenceValue>& values, size_t begin, size_t end) {
  std::string rows;
  for (size_t i = begin; i < end; ++i) {
    if (!rows.empty()) rows += ", ";
    rows += fmt::format("({}::pg_catalog.regclass, {}::pg_catalog.int8, {}::pg_catalog.bool)",
                        QuoteLiteral(QualifiedName(sequences[i].schema, sequences[i].name)),
                        QuoteLiteral(values[i].last_value), QuoteLiteral(values[i].is_called));
  }
  return target.Run("SELECT pg_catalog.setval(v.seq, v.value, v.called) FROM (VALUES " + rows +
                    ") AS v(seq, value, called)");
}

}  // namespace

Result<int64_t> SetSequences(Connection& at_snapshot, Connection& target,
                             const std::vector<SequenceToSet>& sequences) {
  std::vector<SequenceValue> values(sequences.size());
  for (size_t begin = 0; begin < sequences.size(); begin += kObjectsPerStatement) {
    const size_t end = std::min(sequences.size(), begin + kObjectsPerStatement);
    PGC_RETURN_IF_ERROR(ReadSequenceValues(at_snapshot, sequences, begin, end, values));
  }
  for (size_t begin = 0; begin < sequences.size(); begin += kObjectsPerStatement) {
    const size_t end = std::min(sequences.size(), begin + kObjectsPerStatement);
    Status set = SetSequenceValues(target, sequences, values, begin, end);
    if (set.ok()) continue;
    if (set.code() != StatusCode::kServerError) return set;
    // Each statement is its own transaction, so nothing of the batch was
    // set: one at a time names the sequence the target refuses.
    for (size_t i = begin; i < end; ++i) {
      Status one = SetSequenceValues(target, sequences, values, i, i + 1);
      if (!one.ok()) {
        return one.WithContext("setting sequence " +
                               QualifiedName(sequences[i].schema, sequences[i].name));
      }
    }
  }
  return static_cast<int64_t>(sequences.size());
}

Result<int64_t> RefreshMaterializedViews(Connection& target,
                                         const std::vector<MaterializedView>& views) {
  std::vector<const MaterializedView*> pending;
  for (const auto& mv : views) {
    if (mv.populated) pending.push_back(&mv);
  }
  int64_t refreshed_count = 0;
  while (!pending.empty()) {
    std::vector<const MaterializedView*> failed;
    Status last_error;
    for (const auto* mv : pending) {
      Status refreshed =
          target.Run("REFRESH MATERIALIZED VIEW " + QualifiedName(mv->schema, mv->name));
      if (refreshed.ok()) {
        ++refreshed_count;
      } else if (refreshed.sqlstate() == "55000") {  // reads one not yet populated
        failed.push_back(mv);
        last_error = refreshed;
      } else {
        return refreshed.WithContext("refreshing " + mv->schema + "." + mv->name);
      }
    }
    if (failed.size() == pending.size()) return last_error;
    pending = std::move(failed);
  }
  return refreshed_count;
}

Status AnalyzeRemaining(Connection& target) {
  Result<QueryResult> rest = target.Exec(
      std::string("SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) FROM pg_class c "
                  "JOIN pg_namespace n ON n.oid = c.relnamespace "
                  "WHERE (c.relkind = 'p' OR (c.relkind = 'm' AND c.relispopulated)) AND ") +
      sql::UserRelation());
  if (!rest.ok()) return rest.status().WithContext("listing what is left to analyze");
  // One statement names many (ANALYZE takes each in its own transaction
  // outside a transaction block), in bounded lists.
  std::string list;
  for (int r = 0; r < rest->rows(); ++r) {
    list += (list.empty() ? "" : ", ") + rest->GetString(r, 0);
    if ((r + 1) % static_cast<int>(kObjectsPerStatement) == 0 || r + 1 == rest->rows()) {
      PGC_RETURN_IF_ERROR(target.Run("ANALYZE " + list));
      list.clear();
    }
  }
  return Status::Ok();
}

}  // namespace pgcourier
