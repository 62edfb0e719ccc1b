#include "pgbouncer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

namespace pgcourier::testing {
namespace fs = std::filesystem;
namespace {

constexpr auto kStartWait = std::chrono::seconds(20);
constexpr auto kStopWait = std::chrono::seconds(10);

Result<int> FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status(StatusCode::kIoError, std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  auto* generic = reinterpret_cast<sockaddr*>(&addr);
  if (::bind(fd, generic, sizeof(addr)) != 0 || ::getsockname(fd, generic, &len) != 0) {
    ::close(fd);
    return Status(StatusCode::kIoError, "bind 127.0.0.1:0 failed");
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

bool Accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

// The OS user the servers run as when the tests run as root (PgCluster).
std::string ServerOsUser() {
  const char* user = std::getenv("PGCOURIER_TEST_OS_USER");
  return user != nullptr && *user != '\0' ? user : "postgres";
}

}  // namespace

std::string PgBouncer::BinaryPath() {
  const char* path = std::getenv("PGCOURIER_TEST_PGBOUNCER");
  return path != nullptr && *path != '\0' ? path : "/usr/sbin/pgbouncer";
}

bool PgBouncer::Installed() { return ::access(BinaryPath().c_str(), X_OK) == 0; }

Result<std::unique_ptr<PgBouncer>> PgBouncer::Start(const PgBouncerOptions& options) {
  std::unique_ptr<PgBouncer> bouncer(new PgBouncer());
  Status launched = bouncer->Launch(options);
  if (!launched.ok()) {
    return Status(launched.code(), launched.message() + "\n" + bouncer->LogTail());
  }
  return bouncer;
}

Status PgBouncer::Launch(const PgBouncerOptions& options) {
  std::string pattern = (fs::temp_directory_path() / "pgcourier-pgbouncer-XXXXXX").string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    return Status(StatusCode::kIoError, "mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  dir_ = buffer.data();
  log_path_ = dir_ + "/pgbouncer.log";
  Result<int> port = FreePort();
  if (!port.ok()) return port.status();
  port_ = *port;

  std::ofstream users(dir_ + "/users.txt");
  for (const std::string& user : options.users) users << '"' << user << "\" \"\"\n";
  users.close();
  std::ofstream ini(dir_ + "/pgbouncer.ini");
  ini << "[databases]\n"
      << "* = host=127.0.0.1 port=" << options.server_port << "\n"
      << "[pgbouncer]\n"
      << "listen_addr = 127.0.0.1\n"
      << "listen_port = " << port_ << "\n"
      << "unix_socket_dir =\n"
      << "auth_type = trust\n"
      << "auth_file = " << dir_ << "/users.txt\n"
      << "pool_mode = " << options.pool_mode << "\n"
      << "default_pool_size = " << options.default_pool_size << "\n"
      << "max_client_conn = " << options.max_client_conn << "\n"
      << "server_reset_query = " << options.server_reset_query << "\n"
      << "ignore_startup_parameters = extra_float_digits\n";
  ini.close();
  if (!ini || !users) return Status(StatusCode::kIoError, "cannot write the ini in " + dir_);

  std::vector<std::string> argv = {BinaryPath()};
  if (::geteuid() == 0) {
    const std::string os_user = ServerOsUser();
    struct passwd* pw = ::getpwnam(os_user.c_str());
    if (pw == nullptr) return Status(StatusCode::kNotFound, "no OS user " + os_user);
    for (const char* name : {"", "/users.txt", "/pgbouncer.ini"}) {
      if (::chown((dir_ + name).c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        return Status(StatusCode::kIoError, "chown " + dir_ + name + " failed");
      }
    }
    argv.emplace_back("-u");
    argv.push_back(os_user);
  }
  argv.push_back(dir_ + "/pgbouncer.ini");

  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return Status(StatusCode::kIoError, "cannot open " + log_path_);
  // Built before fork: the child of a threaded process must not allocate.
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) {
    ::close(log_fd);
    return Status(StatusCode::kIoError, std::string("fork: ") + std::strerror(errno));
  }
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    const int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(log_fd);
  const auto until = std::chrono::steady_clock::now() + kStartWait;
  while (std::chrono::steady_clock::now() < until) {
    if (Accepts(port_)) return Status::Ok();
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return Status(StatusCode::kIoError, "pgbouncer exited at start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status(StatusCode::kTimeout, "pgbouncer did not listen on port " + std::to_string(port_));
}

PgBouncer::~PgBouncer() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    const auto until = std::chrono::steady_clock::now() + kStopWait;
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  if (dir_.empty()) return;
  if (::testing::Test::HasFailure()) {
    std::cerr << "[pgcourier-test] keeping pgbouncer directory " << dir_ << "\n";
    return;
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string PgBouncer::ConnString(const std::string& dbname, const std::string& user) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + user + " dbname=" + dbname;
}

std::string PgBouncer::LogTail(int lines) const {
  std::ifstream in(log_path_);
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(line);
  std::string out;
  for (size_t i = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0; i < all.size();
       ++i) {
    out += all[i] + "\n";
  }
  return out;
}

}  // namespace pgcourier::testing
