#include "preflight/check.h"

#include <algorithm>

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

SessionBudget MigrationSessions(int jobs, int databases) {
  jobs = std::max(1, jobs);
  const int in_flight = std::max(1, std::min(jobs, databases));
  return {2 * jobs + 2 * in_flight, 2 * jobs + in_flight * (jobs + 2)};
}

}  // namespace pgcourier
