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

}  // namespace pgcourier
