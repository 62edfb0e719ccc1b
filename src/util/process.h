// Starting other programs (pg_dump, pg_restore, and in tests initdb/pg_ctl)
// without a shell: arguments are passed as a vector, never interpolated into a
// command line, and secrets go through the environment, never argv.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier {

struct ProcessOptions {
  // Variables added to (or replacing those of) the inherited environment.
  std::map<std::string, std::string> env;
  // Variables removed from the inherited environment.
  std::vector<std::string> unset_env;
  // When set, the child switches to this user and group before exec (the
  // caller must be root). Used to run PostgreSQL servers, which refuse root.
  std::optional<uid_t> run_as_uid;
  std::optional<gid_t> run_as_gid;
  // The child is killed (SIGKILL) when it runs longer than this.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // When raised, the child (and its process group) gets SIGTERM, then
  // SIGKILL after a grace period, and RunProcess returns kCancelled.
  const CancelToken* cancel = nullptr;
  std::string working_dir;
  // Called with the child's pid once it is started (from the calling thread).
  std::function<void(pid_t)> on_start;
};

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;  // standard output
  std::string err;  // standard error
  bool ok() const { return exit_code == 0; }
};

// Runs argv[0] (searched in PATH when it has no '/') with the given arguments,
// collects its standard output and error, and waits for it to end. Standard
// input is /dev/null. Fails only when the program could not be started or
// timed out; a non-zero exit is reported in ProcessResult.
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                 const ProcessOptions& options = {});

}  // namespace pgcourier
