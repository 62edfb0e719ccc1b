#include "migrate/sessions.h"

#include "migrate/lock_waits.h"
#include "pg/pooler.h"

namespace pgcourier {

SessionFactory::SessionFactory(ConnInfo source, ConnInfo target,
                               std::chrono::milliseconds connect_timeout, const CancelToken* cancel,
                               std::chrono::milliseconds lock_timeout)
    : source_(std::move(source)),
      target_(std::move(target)),
      connect_timeout_(connect_timeout),
      cancel_(cancel),
      lock_timeout_(lock_timeout) {}

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
    o.settings.push_back({"maintenance_work_mem", "512MB"});
  }
  return Connection::Connect(target_.WithDatabase(database), o);
}

Result<std::unique_ptr<Connection>> SessionFactory::SourceServer() const {
  return Source("postgres");
}

Result<std::unique_ptr<Connection>> SessionFactory::TargetServer() const {
  return Target("postgres", TargetUse::kAdmin);
}

}  // namespace pgcourier
