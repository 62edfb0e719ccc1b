// Pieces every subcommand shares: exit statuses, Ctrl-C handling, scrubbing
// secrets from the process's argument list.
#pragma once

#include <string>

#include "util/cancel.h"

namespace pgcourier::cli {

// Exit statuses, stable for scripts.
inline constexpr int kExitOk = 0;       // ready / done
inline constexpr int kExitBlocked = 1;  // checks failed, or the operation failed
inline constexpr int kExitUsage = 2;    // bad arguments or input
inline constexpr int kExitCancelled = 130;

// The token raised by the first SIGINT/SIGTERM; a second one ends the
// process at once.
CancelToken& InterruptToken();
void InstallInterruptHandlers();

// Overwrites, in place, the password of every connection string in argv
// (postgresql://user:SECRET@..., password=SECRET) so that `ps` and
// /proc/PID/cmdline stop showing it once arguments are parsed.
void ScrubPasswordsFromArgv(int argc, char** argv);

}  // namespace pgcourier::cli
