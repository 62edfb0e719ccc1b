// Running the pgcourier binary as a user would: in the foreground, or in the
// background while the test breaks something, kills it, or watches it.
//
//   ProcessResult r = RunCli({"check", "--source", source, "--target", target});
//   EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
//
//   BackgroundRun run({"migrate", "--source", source, "--target", target, "--dir", dir});
//   ASSERT_TRUE(run.KillWhen([&] { return CopyRuns(); })) << "the copy was never seen";
//
// Arguments are those after the binary; the binary is PgcourierBinary().
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "util/process.h"
#include "util/status.h"

namespace pgcourier::testing {

// The pgcourier binary that CLI tests run: $PGCOURIER_BINARY (set by ctest
// to the one just built), else the one on PATH.
std::string PgcourierBinary();

struct CliOptions {
  // Variables added to (or replacing those of) the test's environment.
  std::map<std::string, std::string> env;
  // Variables removed from the test's environment (`env` wins over these).
  std::vector<std::string> unset_env;
  // The run is killed (SIGKILL) when it takes longer: the hang detector. The
  // default leaves room for any migration of the tests' databases.
  std::chrono::milliseconds timeout{std::chrono::minutes(3)};
  // Called with the process's pid once it is started.
  std::function<void(pid_t)> on_start;
};

// Options with only a timeout, for runs that may take longer than the
// default (or must end sooner).
CliOptions WithTimeout(std::chrono::milliseconds timeout);

// Runs pgcourier with `args` and waits for its end. An error Status when it
// could not be started, or kTimeout when it ran past options.timeout (and was
// killed); a non-zero exit is in the ProcessResult.
Result<ProcessResult> TryRunCli(const std::vector<std::string>& args,
                                const CliOptions& options = {});

// TryRunCli for a run that must end on its own: when it could not be started
// or timed out, a non-fatal test failure is recorded and the result has
// exit_code -1, the reason in err, and signal SIGKILL after a timeout.
ProcessResult RunCli(const std::vector<std::string>& args, const CliOptions& options = {});

// pgcourier running in a thread of its own, started by the constructor; the
// destructor waits for its end.
class BackgroundRun {
 public:
  explicit BackgroundRun(std::vector<std::string> args, CliOptions options = {});
  ~BackgroundRun();
  BackgroundRun(const BackgroundRun&) = delete;
  BackgroundRun& operator=(const BackgroundRun&) = delete;

  bool ended() const { return ended_; }
  // The process's pid; 0 until it is started.
  pid_t pid() const { return pid_; }

  // SIGKILL, once the process is started; false when it had already ended.
  bool Kill();
  // Polls `when` every `poll` once the process is started and, as soon as
  // `when` holds, kills it (SIGKILL) and waits for its end. False when it
  // ended first, or when `limit` passed without `when` holding.
  bool KillWhen(const std::function<bool()>& when,
                std::chrono::milliseconds poll = std::chrono::milliseconds(20),
                std::chrono::milliseconds limit = std::chrono::minutes(2));

  // Waits for the end; the result as TryRunCli returns it.
  const Result<ProcessResult>& Join();
  // Waits for the end; the result as RunCli returns it.
  ProcessResult Wait();
  // How long the run took (once it ended).
  double seconds() const { return seconds_; }

 private:
  std::thread thread_;
  std::atomic<pid_t> pid_{0};
  std::atomic<bool> ended_{false};
  Result<ProcessResult> result_ = Status::Ok();
  double seconds_ = 0;
};

}  // namespace pgcourier::testing
