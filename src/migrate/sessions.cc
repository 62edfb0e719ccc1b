#include "migrate/sessions.h"

#include <algorithm>

#include "migrate/lock_waits.h"
#include "pg/pooler.h"

namespace pgcourier {

SessionFactory::SessionFactory(ConnInfo source, ConnInfo target,
                               std::chrono::milliseconds connect_timeout, const CancelToken* cancel,
                               std::chrono::milliseconds lock_timeout,
                               std::string load_maintenance_work_mem)
    : source_(std::move(source)),
      target_(std::move(target)),
      connect_timeout_(connect_timeout),
      cancel_(cancel),
      lock_timeout_(lock_timeout),
      load_maintenance_work_mem_(std::move(load_maintenance_work_mem)) {}

ConnectOptions SessionFactory::BareOptions(const std::string& role) const {
  ConnectOptions o;
  o.role = role;
  o.total_timeout = connect_timeout_;
  o.cancel = cancel_;
  return o;
}

Status SessionFactory::RefusePooler(const std::string& role, const std::string& database,
                                    Status* unreached) const {
  const ConnInfo& side = role == "source" ? source_ : target_;
  return RefuseTransactionPooler(side.WithDatabase(database), role, BareOptions(role), unreached);
}

Result<std::unique_ptr<Connection>> SessionFactory::Source(
    const std::string& database, std::optional<std::chrono::milliseconds> lock_timeout) const {
  ConnectOptions o = BareOptions("source");
  o.settings = {{"default_transaction_read_only", "off"},
                LockTimeoutSetting(lock_timeout.value_or(lock_timeout_))};
  return Connection::Connect(source_.WithDatabase(database), o);
}

Result<std::unique_ptr<Connection>> SessionFactory::Target(
    const std::string& database, TargetUse use,
    std::optional<std::chrono::milliseconds> lock_timeout) const {
  ConnectOptions o = BareOptions("target");
  o.settings = {{"default_transaction_read_only", "off"},
                LockTimeoutSetting(lock_timeout.value_or(lock_timeout_))};
  if (use == TargetUse::kLoad) {
    o.settings.push_back({"synchronous_commit", "off"});
    if (!load_maintenance_work_mem_.empty()) {
      o.settings.push_back({"maintenance_work_mem", load_maintenance_work_mem_});
    }
  }
  return Connection::Connect(target_.WithDatabase(database), o);
}

Result<std::unique_ptr<Connection>> SessionFactory::SourceServer() const {
  return Source("postgres");
}

Result<std::unique_ptr<Connection>> SessionFactory::TargetServer() const {
  return Target("postgres", TargetUse::kAdmin);
}

std::optional<int64_t> LoadMaintenanceWorkMem(int64_t shared_buffers_bytes, int64_t server_bytes,
                                              int jobs) {
  constexpr int64_t kMB = 1024 * 1024;
  constexpr int64_t kMost = 512 * kMB;
  int64_t bytes = std::min(kMost, shared_buffers_bytes / std::max(jobs, 1));
  bytes -= bytes % kMB;
  if (bytes <= server_bytes) return std::nullopt;
  return bytes;
}

std::string LoadMaintenanceWorkMem(Connection& conn, int jobs) {
  Result<QueryResult> read = conn.Exec(
      "SELECT pg_catalog.pg_size_bytes(pg_catalog.current_setting('shared_buffers')), "
      "pg_catalog.pg_size_bytes(pg_catalog.current_setting('maintenance_work_mem'))",
      Deadline::After(std::chrono::seconds(30)));
  if (!read.ok() || read->rows() != 1) return "";
  const std::optional<int64_t> bytes =
      LoadMaintenanceWorkMem(read->GetInt(0, 0), read->GetInt(0, 1), jobs);
  return bytes ? std::to_string(*bytes / (1024 * 1024)) + "MB" : "";
}

}  // namespace pgcourier
