#include "copy/table_copy.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "copy/progress_marks.h"
#include "pg/copy.h"
#include "pg/quote.h"
#include "pg/transaction.h"

namespace pgcourier {

std::string Slice::Condition(const TableToCopy& table) const {
  if (kind == Kind::kKeys) {
    return fmt::format("{} BETWEEN {} AND {}", QuoteIdent(table.split_column), first, last);
  }
  std::string condition = fmt::format("ctid >= '({},0)'::pg_catalog.tid", first);
  if (last >= 0) condition += fmt::format(" AND ctid < '({},0)'::pg_catalog.tid", last);
  return condition;
}

std::string Slice::Display() const {
  if (kind == Kind::kPartition) return "[partition " + partition + "]";
  if (kind == Kind::kKeys) return fmt::format("[keys {}..{}]", first, last);
  if (last < 0) return fmt::format("[blocks {}..end]", first);
  return fmt::format("[blocks {}..{})", first, last);
}

std::string CopyStepName(const TableToCopy& table, const std::optional<Slice>& slice) {
  std::string step = "copy " + table.QualifiedName();
  if (slice) step += " " + slice->Display();
  return step;
}

std::string IndexStepName(const IndexToBuild& index) {
  return "index " + QualifiedName(index.schema, index.name);
}

namespace {

// The statements of one copy: what runs first in the target transaction, the
// target's COPY, and the source's COPYs, whose rows follow one another.
struct CopyStatements {
  std::string target_first;
  std::string target_copy;
  std::vector<std::string> source_copies;
};

CopyStatements Statements(const TableToCopy& table, const std::optional<Slice>& slice) {
  const std::string name = table.QualifiedName();
  const std::string columns = table.column_list.empty() ? "" : " (" + table.column_list + ")";
  CopyStatements out;
  if (table.through_root()) {
    // The root routes every row to its partition on the target.
    out.target_copy = "COPY " + name + columns + " FROM STDIN";
    if (slice) {
      out.source_copies.push_back("COPY " + slice->partition + columns + " TO STDOUT");
      return out;
    }
    out.target_first = "TRUNCATE " + name;
    for (const auto& leaf : table.partitions) {
      out.source_copies.push_back("COPY " + leaf.QualifiedName() + columns + " TO STDOUT");
    }
    return out;
  }
  if (slice) {
    out.source_copies.push_back("COPY (SELECT " + table.column_list + " FROM ONLY " + name +
                                " WHERE " + slice->Condition(table) + ") TO STDOUT");
    out.target_copy = "COPY " + name + columns + " FROM STDIN";
    return out;
  }
  // FREEZE writes the rows already frozen (no later anti-wraparound rewrite
  // on the target); it needs the TRUNCATE in the same transaction.
  out.target_first = "TRUNCATE ONLY " + name;
  out.source_copies.push_back("COPY " + name + columns + " TO STDOUT");
  out.target_copy = "COPY " + name + columns + " FROM STDIN WITH (FREEZE)";
  return out;
}

// Moves the rows of one source COPY into `in`. COPY ... TO STDOUT yields one
// message per row; the target is sent batches of rows instead (a COPY stream
// may be cut anywhere), which saves the server a message per row. A row
// larger than the batch goes alone. On failure `in` is aborted. With `sent`
// the source COPY was sent already (Connection::SendCopy).
Status Pump(Connection& source, const std::string& source_copy, bool sent, CopyInStream& in,
            TableCopyStats& stats, Deadline deadline, const CopyProgress& progress) {
  Result<CopyOutStream> out = sent ? CopyOutStream::Await(source, deadline)
                                   : CopyOutStream::Start(source, source_copy, deadline);
  if (!out.ok()) {
    in.Abort("source failed");
    return out.status();
  }
  constexpr size_t kBatchBytes = 256 * 1024;
  std::string batch;
  batch.reserve(kBatchBytes);
  auto send = [&](std::string_view data) -> Status {
    Status written = in.Write(data, deadline);
    if (!written.ok()) in.Abort("target failed");
    return written;
  };
  using Clock = std::chrono::steady_clock;
  auto told = Clock::now();
  std::string_view chunk;
  for (;;) {
    Result<bool> more = out->Next(&chunk, deadline);
    if (!more.ok()) {
      in.Abort("source failed");
      return more.status();
    }
    if (!*more) break;
    stats.bytes += static_cast<int64_t>(chunk.size());
    stats.hash.AddRow(chunk);
    stats.largest_row = std::max(stats.largest_row, static_cast<int64_t>(chunk.size()));
    ++stats.rows;
    if (batch.size() + chunk.size() > kBatchBytes && !batch.empty()) {
      PGC_RETURN_IF_ERROR(send(batch));
      batch.clear();
      if (progress && Clock::now() - told >= std::chrono::seconds(1)) {
        told = Clock::now();
        progress(stats.rows, stats.bytes);
      }
    }
    if (chunk.size() >= kBatchBytes) {
      // In batch-sized pieces: handed over whole, a row of large values
      // (200 MB of text for a 100 MB bytea) would be copied into libpq's
      // send buffer, which never shrinks, on top of the row itself.
      for (size_t at = 0; at < chunk.size(); at += kBatchBytes) {
        PGC_RETURN_IF_ERROR(send(chunk.substr(at, kBatchBytes)));
      }
    } else {
      batch.append(chunk);
    }
  }
  if (!batch.empty()) PGC_RETURN_IF_ERROR(send(batch));
  return Status::Ok();
}

}  // namespace

Result<LoadedCopy> LoadTable(Connection& source, Connection& target, const TableToCopy& table,
                             const std::optional<Slice>& slice, int parts, const std::string& mark,
                             Deadline deadline, const QuietTriggers& quiet,
                             const CopyProgress& progress) {
  CopyStatements statements = Statements(table, slice);
  std::string what = table.Display();
  if (slice) what += " " + slice->Display();

  // The rows' text (and the names in the statements) come in the source
  // session's encoding. Both sessions pin their own database's, which is
  // the same when pgcourier created the target; a target database in
  // another encoding converts from the source's, from here on.
  if (!source.client_encoding().empty() && source.client_encoding() != target.client_encoding()) {
    Status set =
        target.Run("SET client_encoding = " + QuoteLiteral(source.client_encoding()), deadline);
    if (!set.ok()) return set.WithContext("copying " + what);
  }
  // Sent with the BEGIN too, before the TRUNCATE: what keeps the target's
  // triggers quiet.
  if (!quiet.before.empty()) {
    statements.target_first =
        quiet.before + (statements.target_first.empty() ? "" : "; " + statements.target_first);
  }

  // On every failure below, the streams end first (an unfinished COPY is
  // aborted), then the target transaction rolls back, as they are destroyed.
  auto fail = [&](const Status& status) -> Result<LoadedCopy> {
    return status.WithContext("copying " + what);
  };

  // BEGIN, target_first and the COPY in one round trip, which overlaps the
  // source's first COPY's: both are sent before either start is waited for.
  LoadedCopy loaded{Transaction::BegunBy(target), {}, {}};
  std::string start = BeginStatement({}) + "; ";
  if (!statements.target_first.empty()) start += statements.target_first + "; ";
  // Every form of copy reads at least one source COPY (Statements).
  Status sent = source.SendCopy(statements.source_copies.front(), deadline);
  if (!sent.ok()) return fail(sent);
  Result<CopyInStream> in = CopyInStream::Start(target, start + statements.target_copy, deadline);
  if (!in.ok()) {
    // The source's COPY is cancelled and drained as its stream ends.
    (void)CopyOutStream::Await(source, deadline);
    return fail(in.status());
  }
  TableCopyStats& stats = loaded.stats;
  for (size_t i = 0; i < statements.source_copies.size(); ++i) {
    Status pumped =
        Pump(source, statements.source_copies[i], i == 0, *in, stats, deadline, progress);
    if (!pumped.ok()) return fail(pumped);
  }
  Result<int64_t> stored = in->Finish(deadline);
  if (!stored.ok()) return fail(stored.status());
  stats.rows = *stored;
  stats.encoding = source.client_encoding();
  loaded.last_statements = InsertProgressMarkSql(
      mark, {table.QualifiedName(), parts, *stored, stats.bytes, stats.hash.Digest()});
  if (!quiet.after.empty()) loaded.last_statements = quiet.after + "; " + loaded.last_statements;
  return loaded;
}

Result<TableCopyStats> CopyTable(Connection& source, Connection& target, const TableToCopy& table,
                                 const std::optional<Slice>& slice, int parts,
                                 const std::string& mark, Deadline deadline,
                                 const QuietTriggers& quiet, const CopyProgress& progress) {
  auto started = std::chrono::steady_clock::now();
  Result<LoadedCopy> loaded =
      LoadTable(source, target, table, slice, parts, mark, deadline, quiet, progress);
  if (!loaded.ok()) return loaded.status();
  // The mark and the COMMIT in one round trip.
  Status committed = loaded->transaction.Commit(loaded->last_statements, deadline);
  if (!committed.ok()) {
    return committed.WithContext("copying " + table.Display() +
                                 (slice ? " " + slice->Display() : std::string()));
  }
  TableCopyStats stats = std::move(loaded->stats);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

Result<RowSetHash> HashTargetRows(Connection& target, const TableToCopy& table,
                                  const std::string& encoding, Deadline deadline,
                                  std::string_view first_statements) {
  if (!encoding.empty() && target.client_encoding() != encoding) {
    PGC_RETURN_IF_ERROR(target.Run("SET client_encoding = " + QuoteLiteral(encoding), deadline));
  }
  const std::string name = table.QualifiedName();
  std::string sql;
  if (table.through_root()) {
    // COPY cannot read a partitioned table itself.
    sql = "COPY (SELECT " + table.column_list + " FROM " + name + ") TO STDOUT";
  } else {
    sql = "COPY " + name + (table.column_list.empty() ? "" : " (" + table.column_list + ")") +
          " TO STDOUT";
  }
  if (!first_statements.empty()) sql = std::string(first_statements) + "; " + sql;
  Result<CopyOutStream> out = CopyOutStream::Start(target, sql, deadline);
  if (!out.ok()) return out.status();
  RowSetHash hash;
  std::string_view row;
  for (;;) {
    Result<bool> more = out->Next(&row, deadline);
    if (!more.ok()) return more.status();
    if (!*more) break;
    hash.AddRow(row);
  }
  return hash;
}

namespace {

// An index's statements: the index (or the exclusion constraint that makes
// it), its constraint, CLUSTER ON, REPLICA IDENTITY and its progress mark.
std::vector<std::string> IndexStatements(const TableToCopy& table, const IndexToBuild& index) {
  const std::string alter = "ALTER TABLE ONLY " + table.QualifiedName() + " ADD CONSTRAINT " +
                            QuoteIdent(index.constraint_name) + " ";
  std::vector<std::string> statements;
  if (index.constraint_type == "x") {
    statements.push_back(alter + index.constraint_definition);
  } else {
    statements.push_back(index.definition);
    if (index.constraint_type == "p" || index.constraint_type == "u") {
      std::string sql = alter + (index.constraint_type == "p" ? "PRIMARY KEY" : "UNIQUE") +
                        " USING INDEX " + QuoteIdent(index.name);
      if (index.deferrable) sql += " DEFERRABLE";
      if (index.initially_deferred) sql += " INITIALLY DEFERRED";
      statements.push_back(std::move(sql));
    }
  }
  // An index that backs a constraint takes the constraint's name.
  const std::string name =
      QuoteIdent(index.constraint_name.empty() ? index.name : index.constraint_name);
  if (index.clustered) {
    statements.push_back("ALTER TABLE ONLY " + table.QualifiedName() + " CLUSTER ON " + name);
  }
  if (index.replica_identity) {
    statements.push_back("ALTER TABLE ONLY " + table.QualifiedName() +
                         " REPLICA IDENTITY USING INDEX " + name);
  }
  statements.push_back(
      InsertProgressMarkSql(IndexStepName(index), {table.QualifiedName(), 1, 0, 0, ""}));
  return statements;
}

std::string Joined(const std::vector<std::string>& statements) {
  std::string sql;
  for (const auto& statement : statements) sql += (sql.empty() ? "" : "; ") + statement;
  return sql;
}

}  // namespace

std::string IndexBuildSql(const TableToCopy& table, const IndexToBuild& index) {
  return Joined(IndexStatements(table, index));
}

Status BuildIndex(Connection& target, const TableToCopy& table, const IndexToBuild& index,
                  Deadline deadline) {
  const std::vector<std::string> statements = IndexStatements(table, index);
  // A build that alters the table (a constraint, CLUSTER ON, REPLICA
  // IDENTITY) takes the lock that serializes such builds on one table first:
  // two of them each holding CREATE INDEX's SHARE lock and waiting for
  // ALTER TABLE's ACCESS EXCLUSIVE would deadlock. Plain index builds still
  // run side by side.
  std::string sql = Joined(statements);
  if (statements.size() > 2) {
    sql = "LOCK TABLE ONLY " + table.QualifiedName() + " IN SHARE ROW EXCLUSIVE MODE; " + sql;
  }
  // The statements in the BEGIN's round trip, the COMMIT in a second one,
  // sent only once the build succeeded: a build whose pgcourier is gone (a
  // killed run) never commits behind the back of the run that resumes it.
  // On failure the transaction rolls back as it goes out of scope.
  Result<Transaction> txn = Transaction::Begin(target, {}, sql, deadline);
  Status built = txn.status();
  if (built.ok()) built = txn->Commit(deadline);
  return built.WithContext("building index " + index.schema + "." + index.name);
}

}  // namespace pgcourier
