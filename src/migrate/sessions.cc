#include "migrate/sessions.h"

#include <fmt/format.h>

#include "migrate/lock_waits.h"

namespace pgcourier {
namespace {

// transaction_timeout exists from 17 on; the filter keeps older servers from
// being asked about it.
constexpr const char* kTimeoutsOff =
    "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; "
    "SELECT pg_catalog.set_config('transaction_timeout', '0', false) "
    "WHERE pg_catalog.current_setting('server_version_num')::int >= 170000";
constexpr const char* kSourceSettings = "SET default_transaction_read_only = off";
constexpr const char* kTargetLoadSettings =
    "SET synchronous_commit = off; SET maintenance_work_mem = '512MB'";

}  // namespace

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

Result<std::unique_ptr<Connection>> SessionFactory::Source(
    const std::string& database, std::optional<std::chrono::milliseconds> lock_timeout) const {
  ConnectOptions o = BareOptions("source");
  o.settings = fmt::format("{}; {}; {}", kTimeoutsOff, kSourceSettings,
                           LockTimeoutSql(lock_timeout.value_or(lock_timeout_)));
  return Connection::Connect(source_.WithDatabase(database), o);
}

Result<std::unique_ptr<Connection>> SessionFactory::Target(
    const std::string& database, TargetUse use,
    std::optional<std::chrono::milliseconds> lock_timeout) const {
  ConnectOptions o = BareOptions("target");
  o.settings =
      fmt::format("{}; {}", kTimeoutsOff, LockTimeoutSql(lock_timeout.value_or(lock_timeout_)));
  if (use == TargetUse::kLoad) o.settings += std::string("; ") + kTargetLoadSettings;
  return Connection::Connect(target_.WithDatabase(database), o);
}

Result<std::unique_ptr<Connection>> SessionFactory::SourceServer() const {
  return Source("postgres");
}

Result<std::unique_ptr<Connection>> SessionFactory::TargetServer() const {
  return Target("postgres", TargetUse::kAdmin);
}

}  // namespace pgcourier
