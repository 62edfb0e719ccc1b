// One consistent view of the source for everything that reads it: a
// transaction exports its snapshot and stays open while pg_dump and every
// copy worker import it (SET TRANSACTION SNAPSHOT).
#pragma once

#include <memory>
#include <string>

#include "pg/connection.h"

namespace pgcourier {

class ExportedSnapshot {
 public:
  // Opens a REPEATABLE READ, READ ONLY transaction on `conn` (which the
  // snapshot then owns) and exports its snapshot.
  static Result<std::unique_ptr<ExportedSnapshot>> Export(std::unique_ptr<Connection> conn,
                                                          Deadline deadline);

  // Takes over `conn`, whose transaction already exported snapshot `id`
  // (see replication/replication.h: the slot's snapshot, imported and
  // exported again).
  static std::unique_ptr<ExportedSnapshot> Adopt(std::unique_ptr<Connection> conn, std::string id) {
    return std::unique_ptr<ExportedSnapshot>(new ExportedSnapshot(std::move(conn), std::move(id)));
  }

  const std::string& id() const { return id_; }
  // The holding connection; usable for reads at the snapshot.
  Connection& conn() { return *conn_; }

  // Gives the holding connection, its transaction still open, to the caller
  // (who keeps the snapshot alive with it, or adopts it again).
  std::unique_ptr<Connection> Release() { return std::move(conn_); }

  // Starts a REPEATABLE READ, READ ONLY transaction on `conn` that sees the
  // snapshot `id`. The exporting transaction must still be open.
  static Status BeginAt(Connection& conn, const std::string& id, Deadline deadline);

 private:
  ExportedSnapshot(std::unique_ptr<Connection> conn, std::string id)
      : conn_(std::move(conn)), id_(std::move(id)) {}

  std::unique_ptr<Connection> conn_;
  std::string id_;
};

}  // namespace pgcourier
