#include "cli_runner.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <utility>

namespace pgcourier::testing {
namespace {

std::vector<std::string> Argv(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {PgcourierBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

ProcessOptions ToProcessOptions(const CliOptions& options) {
  ProcessOptions out;
  out.env = options.env;
  out.unset_env = options.unset_env;
  out.timeout = options.timeout;
  out.on_start = options.on_start;
  return out;
}

// The RunCli form of a result: a run that could not start or timed out is a
// test failure.
ProcessResult Expected(const Result<ProcessResult>& result) {
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  if (result.ok()) return *result;
  ProcessResult failed;
  failed.err = result.status().ToString();
  // RunProcess killed it at its timeout: it hung.
  if (result.status().code() == StatusCode::kTimeout) failed.signal = SIGKILL;
  return failed;
}

}  // namespace

std::string PgcourierBinary() {
  const char* path = std::getenv("PGCOURIER_BINARY");
  return path != nullptr ? path : "pgcourier";
}

CliOptions WithTimeout(std::chrono::milliseconds timeout) {
  CliOptions options;
  options.timeout = timeout;
  return options;
}

Result<ProcessResult> TryRunCli(const std::vector<std::string>& args, const CliOptions& options) {
  return RunProcess(Argv(args), ToProcessOptions(options));
}

ProcessResult RunCli(const std::vector<std::string>& args, const CliOptions& options) {
  return Expected(TryRunCli(args, options));
}

BackgroundRun::BackgroundRun(std::vector<std::string> args, CliOptions options) {
  ProcessOptions process = ToProcessOptions(options);
  process.on_start = [this, on_start = std::move(options.on_start)](pid_t pid) {
    pid_ = pid;
    if (on_start) on_start(pid);
  };
  thread_ = std::thread([this, argv = Argv(args), process = std::move(process)] {
    const auto started = std::chrono::steady_clock::now();
    result_ = RunProcess(argv, process);
    seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    ended_ = true;
  });
}

BackgroundRun::~BackgroundRun() {
  if (thread_.joinable()) thread_.join();
}

bool BackgroundRun::Kill() {
  while (pid_ == 0 && !ended_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return !ended_ && ::kill(pid_, SIGKILL) == 0;
}

bool BackgroundRun::KillWhen(const std::function<bool()>& when, std::chrono::milliseconds poll,
                             std::chrono::milliseconds limit) {
  const auto started = std::chrono::steady_clock::now();
  while (!ended_ && std::chrono::steady_clock::now() - started < limit) {
    if (pid_ != 0 && when()) {
      const bool killed = Kill();
      Join();
      return killed;
    }
    std::this_thread::sleep_for(poll);
  }
  return false;
}

const Result<ProcessResult>& BackgroundRun::Join() {
  if (thread_.joinable()) thread_.join();
  return result_;
}

ProcessResult BackgroundRun::Wait() { return Expected(Join()); }

}  // namespace pgcourier::testing
