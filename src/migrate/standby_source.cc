#include "migrate/standby_source.h"

#include <fmt/format.h>

namespace pgcourier {

bool IsRecoveryConflict(const Status& status) {
  return status.sqlstate() == "40001" ||
         status.message().find("conflict with recovery") != std::string::npos;
}

Status ExplainStandbyFailure(const Status& status, bool source_in_recovery,
                             const std::string& work_dir) {
  const bool conflict = IsRecoveryConflict(status);
  const bool snapshot_lost =
      source_in_recovery &&
      status.message().find("invalid snapshot identifier") != std::string::npos;
  if (status.ok() || (!conflict && !snapshot_lost)) return status;
  const std::string message =
      conflict ? status.message() +
                     " (the source is a standby whose recovery cancelled the copy's read to "
                     "replay changes from the primary)"
               : status.message() +
                     " (the source is a standby: its recovery most likely ended the session "
                     "that held the snapshot, to replay changes from the primary)";
  return Status(StatusCode::kFailedPrecondition, message,
                fmt::format("on the standby set hot_standby_feedback = on (the primary then "
                            "keeps the rows the copy reads) or max_standby_streaming_delay = -1 "
                            "(recovery waits for the copy) and reload it, then pgcourier migrate "
                            "--resume --dir {}; or copy from the primary",
                            work_dir),
                status.sqlstate());
}

}  // namespace pgcourier
