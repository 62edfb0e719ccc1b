#include "copy/snapshot.h"

#include "pg/quote.h"

namespace pgcourier {

Result<std::unique_ptr<ExportedSnapshot>> ExportedSnapshot::Export(std::unique_ptr<Connection> conn,
                                                                   Deadline deadline) {
  Result<QueryResult> exported = conn->Exec(
      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_export_snapshot()", deadline);
  if (!exported.ok()) return exported.status().WithContext("exporting a snapshot of the source");
  std::string id = exported->GetString(0, 0);
  return std::unique_ptr<ExportedSnapshot>(new ExportedSnapshot(std::move(conn), std::move(id)));
}

Status ExportedSnapshot::BeginAt(Connection& conn, const std::string& id, Deadline deadline) {
  Status begun = conn.Run(
      "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
      "SET TRANSACTION SNAPSHOT " +
          QuoteLiteral(id),
      deadline);
  if (!begun.ok()) {
    return begun.WithContext("importing the source snapshot " + id)
        .WithHint(
            "the transaction that exported it ended (the source restarted, or the "
            "connection was lost); pgcourier migrate --resume continues at a new snapshot");
  }
  return Status::Ok();
}

}  // namespace pgcourier
