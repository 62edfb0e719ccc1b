#include "catalog/open_transactions.h"

#include <fmt/format.h>

#include <optional>

namespace pgcourier {
namespace {

// Sessions with a transaction id (backend_xid), and prepared transactions.
constexpr const char* kOpenTransactionsSql = R"sql(
SELECT a.pid::bigint,
       coalesce(extract(epoch FROM pg_catalog.now() - a.xact_start), 0)::bigint,
       coalesce(a.state, ''), coalesce(a.usename::text, ''), coalesce(a.application_name, ''),
       pg_catalog.left(pg_catalog.regexp_replace(coalesce(a.query, ''), '\s+', ' ', 'g'), 100),
       NULL::text
  FROM pg_catalog.pg_stat_activity a
 WHERE a.backend_xid IS NOT NULL AND a.pid <> pg_catalog.pg_backend_pid()
   AND a.xact_start <= pg_catalog.now() - pg_catalog.make_interval(secs => $1::float8)
UNION ALL
SELECT 0, extract(epoch FROM pg_catalog.now() - p.prepared)::bigint, 'prepared', p.owner::text,
       '', '', p.gid
  FROM pg_catalog.pg_prepared_xacts p
 WHERE p.prepared <= pg_catalog.now() - pg_catalog.make_interval(secs => $1::float8)
 ORDER BY 2 DESC, 1
 LIMIT $2::int
)sql";

}  // namespace

Result<std::vector<OpenTransaction>> ReadOpenTransactions(Connection& conn,
                                                          std::chrono::seconds min_open, int limit,
                                                          Deadline deadline) {
  Result<QueryResult> found = conn.ExecParams(
      kOpenTransactionsSql, {std::to_string(min_open.count()), std::to_string(limit)}, deadline);
  if (!found.ok()) return found.status().WithContext("reading the source's open transactions");
  std::vector<OpenTransaction> out;
  out.reserve(static_cast<size_t>(found->rows()));
  for (int r = 0; r < found->rows(); ++r) {
    OpenTransaction t;
    t.pid = found->GetInt(r, 0);
    t.open_seconds = found->GetInt(r, 1);
    t.state = found->GetString(r, 2);
    t.user = found->GetString(r, 3);
    t.application = found->GetString(r, 4);
    t.query = found->GetString(r, 5);
    if (!found->IsNull(r, 6)) t.gid = found->GetString(r, 6);
    out.push_back(std::move(t));
  }
  return out;
}

std::string FormatOpenTime(int64_t seconds) {
  if (seconds < 60) return fmt::format("{}s", seconds);
  if (seconds < 3600) return fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
  return fmt::format("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60);
}

std::string DescribeOpenTransaction(const OpenTransaction& t) {
  if (!t.gid.empty()) {
    return fmt::format("prepared transaction '{}' open {} (user {})", t.gid,
                       FormatOpenTime(t.open_seconds), t.user);
  }
  std::string who = t.application.empty() ? "" : t.application + ", ";
  return fmt::format("transaction pid {} open {} ({}user {}, {}){}", t.pid,
                     FormatOpenTime(t.open_seconds), who, t.user, t.state,
                     t.query.empty() ? "" : ": " + t.query);
}

std::string DescribeOpenTransactions(const std::vector<OpenTransaction>& transactions) {
  std::string out;
  for (const auto& t : transactions) {
    if (!out.empty()) out += "; ";
    out += DescribeOpenTransaction(t);
  }
  return out;
}

std::string EndTransactionsHint(const std::vector<OpenTransaction>& transactions) {
  std::string out;
  for (const auto& t : transactions) {
    if (!out.empty()) out += ", ";
    out += t.gid.empty() ? fmt::format("pg_terminate_backend({})", t.pid)
                         : fmt::format("COMMIT or ROLLBACK PREPARED '{}'", t.gid);
  }
  return out;
}

}  // namespace pgcourier
