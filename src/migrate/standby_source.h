// Copying from a standby (a hot standby in recovery): the snapshot is
// exported there and nothing of a copy writes to the source, but recovery
// cancels a read that holds back the cleanup of rows the primary removed
// ("canceling statement due to conflict with recovery", SQLSTATE 40001),
// or ends the session (the snapshot's holder, idle in its transaction; the
// copies that import its snapshot then fail with "invalid snapshot
// identifier"), once max_standby_streaming_delay has passed. Such a failure
// is said in those words, with the fix.
#pragma once

#include <string>

#include "util/status.h"

namespace pgcourier {

// The server cancelled a statement or ended a session to replay WAL.
bool IsRecoveryConflict(const Status& status);

// `status` with a message and hint naming the standby's recovery when it is
// a recovery conflict, or (`source_in_recovery`) the loss of the snapshot
// that such a conflict causes; else `status` unchanged.
Status ExplainStandbyFailure(const Status& status, bool source_in_recovery,
                             const std::string& work_dir);

}  // namespace pgcourier
