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

const char* MethodName(Method method) {
  switch (method) {
    case Method::kAuto:
      return "auto";
    case Method::kReplication:
      return "replication";
    case Method::kCopy:
      return "copy";
  }
  return "auto";
}

std::optional<Method> ParseMethod(const std::string& text) {
  if (text == "auto") return Method::kAuto;
  if (text == "replication") return Method::kReplication;
  if (text == "copy") return Method::kCopy;
  return std::nullopt;
}

bool CheckReport::blocked() const { return Count(CheckStatus::kFail) > 0; }

int CheckReport::Count(CheckStatus status) const {
  return static_cast<int>(std::count_if(
      items.begin(), items.end(), [status](const CheckItem& i) { return i.status == status; }));
}

}  // namespace pgcourier
