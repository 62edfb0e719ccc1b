#include "copy/database_objects.h"

#include <fmt/format.h>

#include <string>

#include "catalog/user_objects.h"
#include "copy/progress_marks.h"
#include "pg/quote.h"
#include "pg/transaction.h"

namespace pgcourier {

Result<LargeObjectsCopied> CopyLargeObjects(Connection& at_snapshot, Connection& target,
                                            const std::vector<uint32_t>& oids) {
  LargeObjectsCopied copied;
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
  }
  copied.count = static_cast<int64_t>(oids.size());
  PGC_RETURN_IF_ERROR(target.Run(InsertProgressMarkSql(
      kLargeObjectsStep, {kLargeObjectsStep, 1, copied.count, copied.bytes})));
  PGC_RETURN_IF_ERROR(transaction->Commit());
  return copied;
}

Result<int64_t> SetSequences(Connection& at_snapshot, Connection& target,
                             const std::vector<SequenceToSet>& sequences) {
  for (const auto& seq : sequences) {
    std::string name = QualifiedName(seq.schema, seq.name);
    Result<QueryResult> value = at_snapshot.Exec("SELECT last_value, is_called FROM " + name);
    if (!value.ok()) return value.status().WithContext("reading sequence " + name);
    Status set = target
                     .ExecParams("SELECT pg_catalog.setval($1::regclass, $2::bigint, $3::bool)",
                                 {name, value->GetString(0, 0), value->GetString(0, 1)})
                     .status();
    if (!set.ok()) return set.WithContext("setting sequence " + name);
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
  for (int r = 0; r < rest->rows(); ++r) {
    PGC_RETURN_IF_ERROR(target.Run("ANALYZE " + rest->GetString(r, 0)));
  }
  return Status::Ok();
}

}  // namespace pgcourier
