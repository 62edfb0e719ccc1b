#include "preflight/check.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

namespace pgcourier {

const char* CheckStatusName(CheckStatus status) {
  switch (status) {
    case CheckStatus::kPass:
      return "pass";
    case CheckStatus::kWarn:
      return "warn";
    case CheckStatus::kFail:
      return "fail";
  }
  return "fail";
}

bool CheckReport::blocked() const { return Count(CheckStatus::kFail) > 0; }

int CheckReport::Count(CheckStatus status) const {
  return static_cast<int>(std::count_if(
      items.begin(), items.end(), [status](const CheckItem& i) { return i.status == status; }));
}

void SchemaDumpHandover::Keep(const std::string& database, KeptSchemaDump dump) {
  std::lock_guard<std::mutex> lock(mu_);
  kept_[database] = std::move(dump);
}

std::optional<KeptSchemaDump> SchemaDumpHandover::Take(const std::string& database) {
  std::lock_guard<std::mutex> lock(mu_);
  auto found = kept_.find(database);
  if (found == kept_.end()) return std::nullopt;
  KeptSchemaDump dump = std::move(found->second);
  kept_.erase(found);
  return dump;
}

void SchemaDumpHandover::Discard() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [database, dump] : kept_) {
    std::error_code ignored;
    std::filesystem::remove(dump.archive, ignored);
  }
  kept_.clear();  // closes the holders: their transactions end with them
}

SessionBudget MigrationSessions(int jobs, int databases) {
  jobs = std::max(1, jobs);
  const int in_flight = std::max(1, std::min(jobs, databases));
  return {2 * jobs + 2 * in_flight, 2 * jobs + in_flight * (jobs + 2)};
}

}  // namespace pgcourier
