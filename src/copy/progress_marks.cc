#include "copy/progress_marks.h"

#include <fmt/format.h>

#include "pg/quote.h"
#include "pg/transaction.h"

namespace pgcourier {
namespace {

// Written on the schema when pgcourier makes it: how a later run tells its
// own schema from a user's of the same name.
constexpr const char* kSignature = "pgcourier progress marks; dropped when the migration ends";

std::string Table() { return QualifiedName(kProgressSchema, "steps"); }

// A mark's columns, as MarkAt reads them.
constexpr const char* kMarkColumns = "object, parts, rows, bytes, coalesce(rows_hash, '')";

// The mark in row `r` of `result`, whose columns from `first` on are kMarkColumns.
ProgressMark MarkAt(const QueryResult& result, int r, int first) {
  return {result.GetString(r, first), static_cast<int>(result.GetInt(r, first + 1)),
          result.GetInt(r, first + 2), result.GetInt(r, first + 3), result.GetString(r, first + 4)};
}

}  // namespace

Result<bool> ProgressMarksExist(Connection& target, Deadline deadline) {
  Result<QueryResult> existing = target.ExecParams(
      "SELECT pg_catalog.obj_description(n.oid, 'pg_namespace') FROM pg_catalog.pg_namespace n "
      "WHERE n.nspname = $1",
      {kProgressSchema}, deadline);
  if (!existing.ok()) return existing.status().WithContext("looking for the progress marks");
  if (existing->rows() == 0) return false;
  if (existing->IsNull(0, 0) || existing->GetString(0, 0) != kSignature) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("the target database has a schema named {} that pgcourier did "
                              "not create; pgcourier keeps its progress there",
                              kProgressSchema),
                  fmt::format("rename the schema {} on the source (and drop it on the target), "
                              "or leave it out with --exclude-schema",
                              kProgressSchema));
  }
  return true;
}

Status CreateProgressMarks(Connection& target, Deadline deadline) {
  Result<bool> exists = ProgressMarksExist(target, deadline);
  if (!exists.ok()) return exists.status();
  if (*exists) {
    // Made by an earlier run, perhaps of a pgcourier without the column.
    return target
        .Run("ALTER TABLE " + Table() + " ADD COLUMN IF NOT EXISTS rows_hash text", deadline)
        .WithContext("updating the progress marks on the target");
  }
  const std::string schema = QuoteIdent(kProgressSchema);
  Status created = RunInTransaction(
      target,
      fmt::format(
          "CREATE SCHEMA {0}; COMMENT ON SCHEMA {0} IS {1}; "
          "CREATE TABLE {2} (step text PRIMARY KEY, object text NOT NULL, parts int NOT NULL, "
          "rows bigint NOT NULL, bytes bigint NOT NULL, rows_hash text, "
          "done_at timestamptz NOT NULL DEFAULT now())",
          schema, QuoteLiteral(kSignature), Table()),
      deadline);
  return created.WithContext("creating the progress marks on the target");
}

Result<std::map<std::string, ProgressMark>> ReadProgressMarks(Connection& target,
                                                              Deadline deadline) {
  std::map<std::string, ProgressMark> marks;
  Result<bool> exists = ProgressMarksExist(target, deadline);
  if (!exists.ok()) return exists.status();
  if (!*exists) return marks;
  Result<QueryResult> rows =
      target.Exec("SELECT step, " + std::string(kMarkColumns) + " FROM " + Table(), deadline);
  if (!rows.ok()) return rows.status().WithContext("reading the progress marks");
  for (int r = 0; r < rows->rows(); ++r) marks[rows->GetString(r, 0)] = MarkAt(*rows, r, 1);
  return marks;
}

Result<bool> HasProgressMark(Connection& target, const std::string& step, ProgressMark* mark,
                             Deadline deadline) {
  Result<QueryResult> row = target.ExecParams(
      "SELECT " + std::string(kMarkColumns) + " FROM " + Table() + " WHERE step = $1", {step},
      deadline);
  if (!row.ok()) return row.status().WithContext("reading the progress marks");
  if (row->rows() == 0) return false;
  if (mark != nullptr) *mark = MarkAt(*row, 0, 0);
  return true;
}

std::string InsertProgressMarkSql(const std::string& step, const ProgressMark& mark) {
  return fmt::format(
      "INSERT INTO {} (step, object, parts, rows, bytes, rows_hash) VALUES ({}, {}, {}, {}, {}, "
      "{})",
      Table(), QuoteLiteral(step), QuoteLiteral(mark.object), mark.parts, mark.rows, mark.bytes,
      mark.rows_hash.empty() ? "NULL" : QuoteLiteral(mark.rows_hash));
}

Status ResetTableCopy(Connection& target, const std::string& table, bool partition_tree,
                      Deadline deadline) {
  // One round trip for the whole transaction.
  Status reset = RunInTransaction(
      target,
      fmt::format("TRUNCATE {}{}; DELETE FROM {} WHERE object = {} AND step LIKE 'copy %'",
                  partition_tree ? "" : "ONLY ", table, Table(), QuoteLiteral(table)),
      deadline);
  return reset.WithContext("emptying " + table + " to copy it again");
}

Status DropProgressMarks(Connection& target, Deadline deadline) {
  return target.Run("DROP SCHEMA IF EXISTS " + QuoteIdent(kProgressSchema) + " CASCADE", deadline)
      .WithContext("dropping the progress marks");
}

}  // namespace pgcourier
