#include "schema/target_claim.h"

#include <fmt/format.h>

namespace pgcourier {

Result<std::optional<ClaimHolder>> FindTargetClaim(Connection& target, const std::string& name) {
  Result<QueryResult> rows = target.ExecParams(
      fmt::format("SELECT l.pid, coalesce(a.application_name, ''), "
                  "coalesce(host(a.client_addr), ''), coalesce(a.backend_start::text, '') "
                  "FROM pg_catalog.pg_locks l "
                  "LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
                  "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
                  "AND l.classid = {} AND l.objid = pg_catalog.hashtext($1)::pg_catalog.oid "
                  "AND l.pid <> pg_catalog.pg_backend_pid() LIMIT 1",
                  kClaimClass),
      {name});
  if (!rows.ok()) return rows.status().WithContext("looking for another migration's claim");
  if (rows->rows() == 0) return std::optional<ClaimHolder>();
  return std::optional<ClaimHolder>(ClaimHolder{static_cast<int>(rows->GetInt(0, 0)),
                                                rows->GetString(0, 1), rows->GetString(0, 2),
                                                rows->GetString(0, 3)});
}

Status ClaimedByAnother(const std::string& name, const ClaimHolder& holder) {
  if (holder.pid == 0) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("another migration was writing database {} on the target and "
                              "ended just now",
                              name),
                  "run this migration again");
  }
  std::string who = fmt::format("server session pid {}", holder.pid);
  if (!holder.application.empty()) who += ", application " + holder.application;
  if (!holder.client.empty()) who += ", from " + holder.client;
  if (!holder.since.empty()) who += ", since " + holder.since;
  return Status(
      StatusCode::kFailedPrecondition,
      fmt::format("another migration is writing database {} on the target ({})", name, who),
      "wait for that migration to end (pgcourier status --dir <its directory>) or stop "
      "it; one database takes one migration at a time");
}

Status TakeTargetClaim(Connection& session, const std::string& name) {
  Result<QueryResult> taken = session.ExecParams(
      fmt::format("SELECT pg_catalog.pg_try_advisory_lock({}, pg_catalog.hashtext($1))",
                  kClaimClass),
      {name});
  if (!taken.ok()) return taken.status().WithContext("claiming the target database " + name);
  if (taken->GetString(0, 0) == "t") return Status::Ok();
  Result<std::optional<ClaimHolder>> holder = FindTargetClaim(session, name);
  return ClaimedByAnother(name, holder.ok() && *holder ? **holder : ClaimHolder{});
}

}  // namespace pgcourier
