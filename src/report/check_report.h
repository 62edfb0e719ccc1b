// Renders a CheckReport for people (a table) and for programs (JSON).
// Rendering returns text; the CLI decides where it goes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "preflight/check.h"

namespace pgcourier {

struct TextStyle {
  bool color = false;       // ANSI colors for pass/warn/fail
  bool show_passes = true;  // list passing checks too
};

std::string RenderCheckText(const CheckReport& report, const TextStyle& style = {});

// The stable machine format, "pgcourier.check/1":
// {format, verdict: "ready"|"blocked", method, source{...}, target{...},
//  tools{pg_dump, pg_restore, major}, databases[{name, target_name, method,
//  reason, exists_on_target, size_bytes}], checks[{code, status, object,
//  detail, hint}], summary{pass, warn, fail}}
nlohmann::json CheckReportToJson(const CheckReport& report);

}  // namespace pgcourier
