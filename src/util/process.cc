#include "util/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace pgcourier {
namespace {

std::string ResolveProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

std::vector<std::string> BuildEnvironment(const ProcessOptions& options) {
  std::map<std::string, std::string> vars;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    vars[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& name : options.unset_env) vars.erase(name);
  for (const auto& [name, value] : options.env) vars[name] = value;
  std::vector<std::string> out;
  out.reserve(vars.size());
  for (const auto& [name, value] : vars) out.push_back(name + "=" + value);
  return out;
}

// Owns a pipe's two ends.
struct Pipe {
  int fds[2] = {-1, -1};
  ~Pipe() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  void CloseEnd(int i) {
    if (fds[i] >= 0) ::close(fds[i]);
    fds[i] = -1;
  }
};

// The child's side of RunProcess, between fork and exec: only
// async-signal-safe calls. Never returns; a failure before exec is written
// (errno) to `exec_pipe` for the parent.
[[noreturn]] void ExecChild(const std::string& program, char* const* argv, char* const* env,
                            const Pipe& out_pipe, const Pipe& err_pipe, const Pipe& exec_pipe,
                            pid_t parent, const ProcessOptions& options) {
  // The child ends with pgcourier, even when pgcourier is killed with
  // SIGKILL: no pg_restore goes on writing into a target that a resumed run
  // is working on.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  int dev_null = ::open("/dev/null", O_RDONLY);
  if (dev_null >= 0) ::dup2(dev_null, STDIN_FILENO);
  ::dup2(out_pipe.fds[1], STDOUT_FILENO);
  ::dup2(err_pipe.fds[1], STDERR_FILENO);
  ::setpgid(0, 0);  // own process group, so a timeout can kill its children too
  int err = 0;
  if (options.run_as_gid && (::setgroups(0, nullptr) != 0 || ::setgid(*options.run_as_gid) != 0)) {
    err = errno;
  }
  if (err == 0 && options.run_as_uid && ::setuid(*options.run_as_uid) != 0) err = errno;
  if (err == 0 && !options.working_dir.empty() && ::chdir(options.working_dir.c_str()) != 0) {
    err = errno;
  }
  if (err == 0) {
    ::execve(program.c_str(), argv, env);
    err = errno;
  }
  ssize_t ignored = ::write(exec_pipe.fds[1], &err, sizeof(err));
  (void)ignored;
  ::_exit(127);
}

// How the reading of a child's output ended.
enum class Ending { kEnded, kTimedOut, kCancelled };

// Reads the child's stdout and stderr into `result` until both close, the
// timeout passes or the cancel token is raised; on the last two the child's
// process group is killed.
Ending CollectOutput(pid_t pid, int out_fd, int err_fd, const ProcessOptions& options,
                     ProcessResult& result) {
  auto deadline = std::chrono::steady_clock::now() + options.timeout;
  const int cancel_fd = options.cancel != nullptr ? options.cancel->fd() : -1;
  struct pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(-pid, SIGKILL);
      return Ending::kTimedOut;
    }
    if (options.cancel != nullptr && options.cancel->cancelled()) {
      // Ask politely (pg_restore ends its sessions), then insist.
      ::kill(-pid, SIGTERM);
      for (int i = 0; i < 50 && ::waitpid(pid, nullptr, WNOHANG) == 0; ++i) {
        ::poll(nullptr, 0, 100);
      }
      ::kill(-pid, SIGKILL);
      return Ending::kCancelled;
    }
    int n = ::poll(fds, cancel_fd >= 0 ? 3 : 2,
                   static_cast<int>(std::min<long long>(left.count(), 1000 * 60)));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Ending::kEnded;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof(buf));
      if (got > 0) {
        sinks[i]->append(buf, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  return Ending::kEnded;
}

}  // namespace

Result<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                 const ProcessOptions& options) {
  if (argv.empty()) return Status(StatusCode::kInvalidArgument, "no program given");
  std::string program = ResolveProgram(argv[0]);
  if (program.empty()) {
    return Status(StatusCode::kNotFound, "program '" + argv[0] + "' not found in PATH");
  }

  // Everything the child needs is prepared before fork: only async-signal-safe
  // calls happen between fork and exec.
  std::vector<char*> c_argv;
  c_argv.reserve(argv.size() + 1);
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  std::vector<std::string> env = BuildEnvironment(options);
  std::vector<char*> c_env;
  c_env.reserve(env.size() + 1);
  for (auto& e : env) c_env.push_back(e.data());
  c_env.push_back(nullptr);

  Pipe out_pipe;
  Pipe err_pipe;
  Pipe exec_pipe;  // reports a failed exec (errno) to the parent
  if (::pipe2(out_pipe.fds, O_CLOEXEC) != 0 || ::pipe2(err_pipe.fds, O_CLOEXEC) != 0 ||
      ::pipe2(exec_pipe.fds, O_CLOEXEC) != 0) {
    return Status(StatusCode::kIoError, std::string("pipe: ") + std::strerror(errno));
  }

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return Status(StatusCode::kIoError, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ExecChild(program, c_argv.data(), c_env.data(), out_pipe, err_pipe, exec_pipe, parent, options);
  }

  out_pipe.CloseEnd(1);
  err_pipe.CloseEnd(1);
  exec_pipe.CloseEnd(1);
  if (options.on_start) options.on_start(pid);

  ProcessResult result;
  const Ending ending = CollectOutput(pid, out_pipe.fds[0], err_pipe.fds[0], options, result);
  const bool timed_out = ending == Ending::kTimedOut;
  const bool cancelled = ending == Ending::kCancelled;

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  int exec_errno = 0;
  if (::read(exec_pipe.fds[0], &exec_errno, sizeof(exec_errno)) == sizeof(exec_errno) &&
      exec_errno != 0) {
    return Status(StatusCode::kIoError,
                  "could not start " + program + ": " + std::strerror(exec_errno));
  }
  if (cancelled) return Status(StatusCode::kCancelled, program + " was cancelled");
  if (timed_out) {
    return Status(StatusCode::kTimeout, program + " did not finish within " +
                                            std::to_string(options.timeout.count() / 1000) + " s");
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace pgcourier
