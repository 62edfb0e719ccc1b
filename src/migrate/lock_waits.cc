#include "migrate/lock_waits.h"

#include <fmt/format.h>

#include <optional>

namespace pgcourier {

std::string LockHint(const std::vector<LockHolder>& holders, const std::string& work_dir) {
  return EndLockHoldersHint(holders, "pgcourier migrate --resume --dir " + work_dir);
}

Status ExplainLockTableFull(const Status& status, bool source, const CopyCatalog& catalog,
                            const std::string& work_dir) {
  // pg_dump's and pg_restore's messages carry the server's hint; a
  // session's refusal has it apart.
  if (status.message().find("max_locks_per_transaction") == std::string::npos &&
      status.hint().find("max_locks_per_transaction") == std::string::npos) {
    return status;
  }
  size_t locks = catalog.tables.size();
  if (!source) {
    // A table, its TOAST table and the TOAST table's index; its indexes.
    locks *= 3;
    for (const auto& t : catalog.tables) locks += t.indexes.size();
  }
  return status.WithHint(
      fmt::format("{} locks about {} relations of the database at once: on the {}, raise "
                  "max_locks_per_transaction (a restart) so that max_locks_per_transaction x "
                  "(max_connections + max_prepared_transactions) is above that, then continue with "
                  "pgcourier migrate --resume --dir {}",
                  source ? "pg_dump" : "the schema restore (one transaction)", locks,
                  source ? "source" : "target", work_dir));
}

}  // namespace pgcourier
