#include "copy/table_copy.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "copy/binary_copy.h"
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
  const std::string to = table.binary ? " TO STDOUT (FORMAT binary)" : " TO STDOUT";
  const std::string from = table.binary ? " FROM STDIN (FORMAT binary)" : " FROM STDIN";
  CopyStatements out;
  if (table.through_root()) {
    // The root routes every row to its partition on the target.
    out.target_copy = "COPY " + name + columns + from;
    if (slice) {
      out.source_copies.push_back("COPY " + slice->partition + columns + to);
      return out;
    }
    out.target_first = "TRUNCATE " + name;
    for (const auto& leaf : table.partitions) {
      out.source_copies.push_back("COPY " + leaf.QualifiedName() + columns + to);
    }
    return out;
  }
  if (slice) {
    out.source_copies.push_back("COPY (SELECT " + table.column_list + " FROM ONLY " + name +
                                " WHERE " + slice->Condition(table) + ")" + to);
    out.target_copy = "COPY " + name + columns + from;
    return out;
  }
  // FREEZE writes the rows already frozen (no later anti-wraparound rewrite
  // on the target); it needs the TRUNCATE in the same transaction.
  out.target_first = "TRUNCATE ONLY " + name;
  out.source_copies.push_back("COPY " + name + columns + to);
  out.target_copy = "COPY " + name + columns + " FROM STDIN WITH (FREEZE" +
                    (table.binary ? ", FORMAT binary)" : ")");
  return out;
}

// What goes to the target: the rows of the source's COPYs, each one hashed
// on its way. COPY ... TO STDOUT yields one message per row; the target is
// sent batches of rows instead (a COPY stream may be cut anywhere), which
// saves the server a message per row. A row larger than the batch goes
// alone. In binary form the rows are cut out of each source stream
// (copy/binary_copy.h), and the target gets one header before them and one
// trailer after them, however many source COPYs they come from. On failure
// `in` is aborted.
class Relay {
 public:
  Relay(CopyInStream& in, bool binary, TableCopyStats& stats, Deadline deadline,
        const CopyProgress& progress)
      : in_(in), binary_(binary), stats_(stats), deadline_(deadline), progress_(progress) {
    batch_.reserve(kBatchBytes);
    if (binary_) batch_.append(BinaryCopyHeader());
  }

  // Moves the rows of one source COPY. With `sent` the COPY was sent
  // already (Connection::SendCopy); with `more_follow`, more statements
  // follow it in the string it was sent in.
  Status Pump(Connection& source, const std::string& source_copy, bool sent,
              bool more_follow = false) {
    Result<CopyOutStream> out =
        sent ? CopyOutStream::Await(source, deadline_, more_follow)
             : CopyOutStream::Start(source, source_copy, deadline_, more_follow);
    if (!out.ok()) return SourceFailed(out.status());
    BinaryCopyRows rows;
    std::string_view chunk;
    for (;;) {
      Result<bool> more = out->Next(&chunk, deadline_);
      if (!more.ok()) return SourceFailed(more.status());
      if (!*more) break;
      if (!binary_) {
        PGC_RETURN_IF_ERROR(Row(chunk));
        continue;
      }
      rows.Feed(chunk);
      std::string_view row;
      for (;;) {
        Result<bool> got = rows.Next(&row);
        if (!got.ok()) return SourceFailed(got.status());
        if (!*got) break;
        PGC_RETURN_IF_ERROR(Row(row));
      }
    }
    if (binary_) {
      Status ended = rows.CheckEnded();
      if (!ended.ok()) return SourceFailed(ended);
    }
    return Status::Ok();
  }

  // Sends what is left, and the trailer.
  Status End() {
    if (binary_) batch_.append(BinaryCopyTrailer());
    return batch_.empty() ? Status::Ok() : Send(batch_);
  }

 private:
  static constexpr size_t kBatchBytes = 256 * 1024;

  Status SourceFailed(const Status& status) {
    in_.Abort("source failed");
    return status;
  }

  Status Send(std::string_view data) {
    Status written = in_.Write(data, deadline_);
    if (!written.ok()) in_.Abort("target failed");
    return written;
  }

  Status Row(std::string_view row) {
    stats_.bytes += static_cast<int64_t>(row.size());
    stats_.hash.AddRow(row);
    stats_.largest_row = std::max(stats_.largest_row, static_cast<int64_t>(row.size()));
    ++stats_.rows;  // so far; the target's count replaces it at the end
    if (batch_.size() + row.size() > kBatchBytes && !batch_.empty()) {
      PGC_RETURN_IF_ERROR(Send(batch_));
      batch_.clear();
      if (progress_ && Clock::now() - told_ >= std::chrono::seconds(1)) {
        told_ = Clock::now();
        progress_(stats_.rows, stats_.bytes);
      }
    }
    if (row.size() < kBatchBytes) {
      batch_.append(row);
      return Status::Ok();
    }
    // In batch-sized pieces: handed over whole, a row of large values
    // (200 MB of text for a 100 MB bytea) would be copied into libpq's
    // send buffer, which never shrinks, on top of the row itself.
    for (size_t at = 0; at < row.size(); at += kBatchBytes) {
      PGC_RETURN_IF_ERROR(Send(row.substr(at, kBatchBytes)));
    }
    return Status::Ok();
  }

  CopyInStream& in_;
  const bool binary_;
  TableCopyStats& stats_;
  const Deadline deadline_;
  const CopyProgress& progress_;
  using Clock = std::chrono::steady_clock;
  Clock::time_point told_ = Clock::now();
  std::string batch_;
};

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
  Relay relay(*in, table.binary, stats, deadline, progress);
  for (size_t i = 0; i < statements.source_copies.size(); ++i) {
    Status pumped = relay.Pump(source, statements.source_copies[i], i == 0);
    if (!pumped.ok()) return fail(pumped);
  }
  Status ended = relay.End();
  if (!ended.ok()) return fail(ended);
  Result<int64_t> stored = in->Finish(deadline);
  if (!stored.ok()) return fail(stored.status());
  stats.rows = *stored;
  stats.encoding = source.client_encoding();
  loaded.last_statements = InsertProgressMarkSql(
      mark, {table.QualifiedName(), parts, *stored, stats.bytes, stats.hash.Digest()});
  if (!quiet.after.empty()) loaded.last_statements = quiet.after + "; " + loaded.last_statements;
  return loaded;
}

Result<LoadedBatch> LoadTables(Connection& source, Connection& target,
                               const std::vector<const TableToCopy*>& tables, Deadline deadline,
                               size_t* failed_at) {
  if (tables.empty()) return Status(StatusCode::kInvalidArgument, "no table to copy");
  auto fail = [&](size_t i, const Status& status) -> Result<LoadedBatch> {
    if (failed_at != nullptr) *failed_at = i;
    return status.WithContext("copying " + tables[i]->Display());
  };
  if (!source.client_encoding().empty() && source.client_encoding() != target.client_encoding()) {
    Status set =
        target.Run("SET client_encoding = " + QuoteLiteral(source.client_encoding()), deadline);
    if (!set.ok()) return fail(0, set);
  }
  // Every table's COPY in one string on each side: the source streams them
  // one after the other; the target starts each as the last one ends.
  std::string source_sql;
  std::string target_sql = BeginStatement({});
  for (const TableToCopy* table : tables) {
    CopyStatements statements = Statements(*table, std::nullopt);
    source_sql += (source_sql.empty() ? "" : "; ") + statements.source_copies.front();
    target_sql += "; " + statements.target_first + "; " + statements.target_copy;
  }
  LoadedBatch loaded{Transaction::BegunBy(target), {}, {}};
  loaded.stats.reserve(tables.size());  // each Relay holds its table's
  Status sent = source.SendCopy(source_sql, deadline);
  if (!sent.ok()) return fail(0, sent);
  const bool several = tables.size() > 1;
  Result<CopyInStream> first = CopyInStream::Start(target, target_sql, deadline, several);
  if (!first.ok()) {
    // The source's COPYs are cancelled as the stream ends; the session is
    // dropped by the caller after a failure.
    (void)CopyOutStream::Await(source, deadline, several);
    return fail(0, first.status());
  }
  std::optional<CopyInStream> in;
  in.emplace(std::move(*first));
  const CopyProgress no_progress;  // the Relay holds it by reference
  for (size_t i = 0; i < tables.size(); ++i) {
    const TableToCopy& table = *tables[i];
    const bool more = i + 1 < tables.size();
    if (i > 0) {
      Result<CopyInStream> next = CopyInStream::Await(target, deadline, more);
      if (!next.ok()) return fail(i, next.status());
      in.emplace(std::move(*next));
    }
    TableCopyStats& stats = loaded.stats.emplace_back();
    Relay relay(*in, table.binary, stats, deadline, no_progress);
    Status pumped = relay.Pump(source, {}, /*sent=*/true, more);
    if (!pumped.ok()) return fail(i, pumped);
    Status ended = relay.End();
    if (!ended.ok()) return fail(i, ended);
    Result<int64_t> stored = in->Finish(deadline);
    if (!stored.ok()) return fail(i, stored.status());
    stats.rows = *stored;
    stats.encoding = source.client_encoding();
    loaded.last_statements +=
        (i > 0 ? "; " : "") + InsertProgressMarkSql(CopyStepName(table, std::nullopt),
                                                    {table.QualifiedName(), 1, *stored, stats.bytes,
                                                     stats.hash.Digest()});
  }
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

namespace {

// The target's COPY ... TO STDOUT of `table`, in the form it was copied in.
std::string ReadBackCopy(const TableToCopy& table) {
  const std::string name = table.QualifiedName();
  std::string sql;
  if (table.through_root()) {
    // COPY cannot read a partitioned table itself.
    sql = "COPY (SELECT " + table.column_list + " FROM " + name + ")";
  } else {
    sql = "COPY " + name + (table.column_list.empty() ? "" : " (" + table.column_list + ")");
  }
  return sql + (table.binary ? " TO STDOUT (FORMAT binary)" : " TO STDOUT");
}

Result<RowSetHash> HashStream(CopyOutStream& out, bool binary, Deadline deadline) {
  RowSetHash hash;
  BinaryCopyRows rows;
  std::string_view chunk;
  for (;;) {
    Result<bool> more = out.Next(&chunk, deadline);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (!binary) {
      hash.AddRow(chunk);
      continue;
    }
    rows.Feed(chunk);
    std::string_view row;
    for (;;) {
      Result<bool> got = rows.Next(&row);
      if (!got.ok()) return got.status();
      if (!*got) break;
      hash.AddRow(row);
    }
  }
  if (binary) PGC_RETURN_IF_ERROR(rows.CheckEnded());
  return hash;
}

}  // namespace

Result<std::vector<RowSetHash>> HashTargetRows(Connection& target,
                                               const std::vector<const TableToCopy*>& tables,
                                               const std::string& encoding, Deadline deadline,
                                               std::string_view first_statements) {
  if (tables.empty()) return std::vector<RowSetHash>();
  if (!encoding.empty() && target.client_encoding() != encoding) {
    PGC_RETURN_IF_ERROR(target.Run("SET client_encoding = " + QuoteLiteral(encoding), deadline));
  }
  std::string sql(first_statements);
  for (const TableToCopy* table : tables) {
    sql += (sql.empty() ? "" : "; ") + ReadBackCopy(*table);
  }
  std::vector<RowSetHash> hashes;
  hashes.reserve(tables.size());
  for (size_t i = 0; i < tables.size(); ++i) {
    const bool more = i + 1 < tables.size();
    Result<CopyOutStream> out = i == 0 ? CopyOutStream::Start(target, sql, deadline, more)
                                       : CopyOutStream::Await(target, deadline, more);
    if (!out.ok()) return out.status();
    Result<RowSetHash> hash = HashStream(*out, tables[i]->binary, deadline);
    if (!hash.ok()) return hash.status();
    hashes.push_back(*hash);
  }
  return hashes;
}

Result<RowSetHash> HashTargetRows(Connection& target, const TableToCopy& table,
                                  const std::string& encoding, Deadline deadline,
                                  std::string_view first_statements) {
  Result<std::vector<RowSetHash>> hashes = HashTargetRows(
      target, std::vector<const TableToCopy*>{&table}, encoding, deadline, first_statements);
  if (!hashes.ok()) return hashes.status();
  return hashes->front();
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

int AlteringIndexBuilds(const TableToCopy& table) {
  int altering = 0;
  for (const auto& index : table.indexes) {
    if (IndexStatements(table, index).size() > 2) ++altering;
  }
  return altering;
}

Status BuildIndex(Connection& target, const TableToCopy& table, const IndexToBuild& index,
                  const IndexLockRoundFn& lock_round, Deadline deadline) {
  const std::vector<std::string> statements = IndexStatements(table, index);
  const std::string context = "building index " + index.schema + "." + index.name;
  // The COMMIT is sent in a round trip of its own, only once the build
  // succeeded: a build whose pgcourier is gone (a killed run) never commits
  // behind the back of the run that resumes it. On failure the transaction
  // rolls back as it goes out of scope.
  const bool alters = statements.size() > 2;
  if (!alters || index.constraint_type == "x" || AlteringIndexBuilds(table) > 1) {
    // Two builds that each hold CREATE INDEX's SHARE lock and wait for
    // ALTER TABLE's ACCESS EXCLUSIVE would deadlock: the altering builds of
    // a table with several take the lock that serializes them first. An
    // exclusion constraint's ALTER TABLE takes its lock at once.
    std::string sql = Joined(statements);
    if (alters) {
      sql = "LOCK TABLE ONLY " + table.QualifiedName() + " IN SHARE ROW EXCLUSIVE MODE; " + sql;
    }
    Result<Transaction> txn = Transaction::Begin(target, {}, sql, deadline);
    Status built = txn.status();
    if (built.ok()) built = txn->Commit(deadline);
    return built.WithContext(context);
  }
  // The table's only altering build: the index beside the table's other
  // builds, then the ALTER TABLE, which waits for them to commit, in a
  // savepoint, so that a round of that wait costs the ALTER only.
  Result<Transaction> txn = Transaction::Begin(target, {}, statements.front(), deadline);
  if (!txn.ok()) return txn.status().WithContext(context);
  const std::string alter =
      "SAVEPOINT pgcourier_index_alter; " +
      Joined(std::vector<std::string>(statements.begin() + 1, statements.end()));
  for (;;) {
    const auto tried = std::chrono::steady_clock::now();
    Status altered = target.Run(alter, deadline);
    if (altered.ok()) break;
    if (!lock_round || altered.sqlstate() != "55P03" || target.IsBad()) {
      return altered.WithContext(context);
    }
    PGC_RETURN_IF_ERROR(target
                            .Run("ROLLBACK TO SAVEPOINT pgcourier_index_alter; "
                                 "RELEASE SAVEPOINT pgcourier_index_alter",
                                 deadline)
                            .WithContext(context));
    PGC_RETURN_IF_ERROR(lock_round(altered, std::chrono::steady_clock::now() - tried));
  }
  return txn->Commit(deadline).WithContext(context);
}

}  // namespace pgcourier
