#include "copy/extension_config.h"

#include "copy/progress_marks.h"
#include "pg/copy.h"
#include "pg/transaction.h"

namespace pgcourier {
namespace {

// Streams the rows `table`'s condition selects from the source into the
// target's open COPY; returns the rows stored.
Result<int64_t> CopyRows(Connection& source, Connection& target,
                         const ExtensionConfigTable& table) {
  Result<CopyInStream> in = CopyInStream::Start(
      target, "COPY " + table.QualifiedName() + " (" + table.column_list + ") FROM STDIN");
  if (!in.ok()) return in.status();
  Result<CopyOutStream> out =
      CopyOutStream::Start(source, "COPY (" + table.SelectSql() + ") TO STDOUT");
  if (!out.ok()) {
    in->Abort("source failed");
    return out.status();
  }
  std::string_view chunk;
  for (;;) {
    Result<bool> more = out->Next(&chunk);
    if (!more.ok()) {
      in->Abort("source failed");
      return more.status();
    }
    if (!*more) break;
    Status written = in->Write(chunk);
    if (!written.ok()) {
      in->Abort("target failed");
      return written;
    }
  }
  return in->Finish();
}

Status SetSequence(Connection& source, Connection& target, const ExtensionConfigTable& seq) {
  Result<QueryResult> value =
      source.Exec("SELECT last_value, is_called FROM " + seq.QualifiedName());
  if (!value.ok()) return value.status();
  return target
      .ExecParams("SELECT pg_catalog.setval($1::regclass, $2::bigint, $3::bool)",
                  {seq.QualifiedName(), value->GetString(0, 0), value->GetString(0, 1)})
      .status();
}

Result<ExtensionConfigCopied> CopyInTransaction(Connection& at_snapshot, Connection& target,
                                                const std::vector<ExtensionConfigTable>& tables,
                                                const std::optional<std::string>& mark) {
  ExtensionConfigCopied copied;
  Result<Transaction> txn = Transaction::Begin(target);
  if (!txn.ok()) return txn.status();
  // Referencing tables first.
  for (size_t i = tables.size(); i-- > 0;) {
    const ExtensionConfigTable& t = tables[i];
    if (t.sequence) continue;
    std::string sql = "DELETE FROM ONLY " + t.QualifiedName();
    if (!t.condition.empty()) sql += " " + t.condition;
    Status deleted = target.Run(sql);
    if (!deleted.ok()) {
      return deleted.WithContext("emptying " + t.QualifiedName() + " (configuration of " +
                                 t.extension + ")");
    }
  }
  for (const auto& t : tables) {
    const std::string what = t.QualifiedName() + " (configuration of " + t.extension + ")";
    if (t.sequence) {
      PGC_RETURN_IF_ERROR(SetSequence(at_snapshot, target, t).WithContext("setting " + what));
      ++copied.sequences;
      continue;
    }
    Result<int64_t> rows = CopyRows(at_snapshot, target, t);
    if (!rows.ok()) return rows.status().WithContext("copying " + what);
    ++copied.tables;
    copied.rows += *rows;
  }
  if (mark) {
    PGC_RETURN_IF_ERROR(target.Run(InsertProgressMarkSql(*mark, {*mark, 1, copied.rows, 0, ""})));
  }
  PGC_RETURN_IF_ERROR(txn->Commit());
  return copied;
}

}  // namespace

Result<ExtensionConfigCopied> CopyExtensionConfig(Connection& at_snapshot, Connection& target,
                                                  const std::vector<ExtensionConfigTable>& tables,
                                                  const std::optional<std::string>& mark) {
  if (tables.empty()) return ExtensionConfigCopied{};
  // Local to the snapshot's transaction, and put back after the copy.
  Result<QueryResult> before = at_snapshot.Exec(
      "SELECT pg_catalog.current_setting('row_security'), "
      "pg_catalog.set_config('row_security', 'off', true)");
  if (!before.ok()) return before.status();
  Result<ExtensionConfigCopied> copied = CopyInTransaction(at_snapshot, target, tables, mark);
  Status restored = at_snapshot
                        .ExecParams("SELECT pg_catalog.set_config('row_security', $1, true)",
                                    {before->GetString(0, 0)})
                        .status();
  if (!copied.ok()) return copied.status();
  if (!restored.ok()) return restored;
  return copied;
}

}  // namespace pgcourier
