// The status page served at / by `status --serve`: one HTML document with
// its style and script inline, nothing fetched from elsewhere. Its script
// polls /api/status?tables=1 and /api/history (passing on a ?token= it was
// opened with) and draws the databases, their tables (paged, collapsed),
// charts of the history and the commands to run next.
#pragma once

#include <string_view>

namespace pgcourier {

std::string_view StatusPageHtml();

}  // namespace pgcourier
