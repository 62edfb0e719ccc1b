#include "copy/snapshot.h"

#include "pg/transaction.h"

namespace pgcourier {
namespace {

// The exporting transaction and those that import its snapshot last as long
// as their connections (the ExportedSnapshot's, a copy worker's) and end
// when those close: no scope owns them, so they are begun with
// BeginStatement rather than a Transaction object.
TransactionOptions ReadOnlyRepeatableRead() {
  TransactionOptions options;
  options.isolation = IsolationLevel::kRepeatableRead;
  options.read_only = true;
  return options;
}

}  // namespace

Result<std::unique_ptr<ExportedSnapshot>> ExportedSnapshot::Export(std::unique_ptr<Connection> conn,
                                                                   Deadline deadline) {
  Result<QueryResult> exported = conn->Exec(
      BeginStatement(ReadOnlyRepeatableRead()) + "; SELECT pg_export_snapshot()", deadline);
  if (!exported.ok()) return exported.status().WithContext("exporting a snapshot of the source");
  std::string id = exported->GetString(0, 0);
  return std::unique_ptr<ExportedSnapshot>(new ExportedSnapshot(std::move(conn), std::move(id)));
}

Status ExportedSnapshot::BeginAt(Connection& conn, const std::string& id, Deadline deadline) {
  TransactionOptions options = ReadOnlyRepeatableRead();
  options.snapshot = id;
  Status begun = conn.Run(BeginStatement(options), deadline);
  if (!begun.ok()) {
    return begun.WithContext("importing the source snapshot " + id)
        .WithHint(
            "the transaction that exported it ended (the source restarted, or the "
            "connection was lost); pgcourier migrate --resume continues at a new snapshot");
  }
  return Status::Ok();
}

}  // namespace pgcourier
