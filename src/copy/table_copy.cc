#include "copy/table_copy.h"

#include <chrono>

#include "pg/copy.h"

namespace pgcourier {

Result<TableCopyStats> CopyTable(Connection& source, Connection& target, const TableToCopy& table,
                                 Deadline deadline) {
  auto started = std::chrono::steady_clock::now();
  const std::string name = table.QualifiedName();
  const std::string columns = table.column_list.empty() ? "" : " (" + table.column_list + ")";

  auto fail = [&](const Status& status) -> Result<TableCopyStats> {
    if (!target.IsBad()) (void)target.Run("ROLLBACK", Deadline::After(std::chrono::seconds(10)));
    return status.WithContext("copying " + table.Display());
  };

  PGC_RETURN_IF_ERROR(target.Run("BEGIN; TRUNCATE ONLY " + name, deadline));
  // FREEZE writes the rows already frozen (no later anti-wraparound rewrite
  // on the target); it needs the TRUNCATE in the same transaction.
  Result<CopyInStream> in =
      CopyInStream::Start(target, "COPY " + name + columns + " FROM STDIN WITH (FREEZE)", deadline);
  if (!in.ok()) return fail(in.status());
  Result<CopyOutStream> out =
      CopyOutStream::Start(source, "COPY " + name + columns + " TO STDOUT", deadline);
  if (!out.ok()) {
    in->Abort("source failed");
    return fail(out.status());
  }

  TableCopyStats stats;
  std::string_view chunk;
  for (;;) {
    Result<bool> more = out->Next(&chunk, deadline);
    if (!more.ok()) {
      in->Abort("source failed");
      return fail(more.status());
    }
    if (!*more) break;
    stats.bytes += static_cast<int64_t>(chunk.size());
    Status written = in->Write(chunk, deadline);
    if (!written.ok()) {
      in->Abort("target failed");
      return fail(written);
    }
  }
  Result<int64_t> stored = in->Finish(deadline);
  if (!stored.ok()) return fail(stored.status());
  Status committed = target.Run("COMMIT", deadline);
  if (!committed.ok()) return fail(committed);
  stats.rows = *stored;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return stats;
}

}  // namespace pgcourier
