#include "pg_cluster.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <utility>

#include "system_identifier.h"
#include "util/process.h"

namespace pgcourier::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kMinProbedMajor = 12;
constexpr int kMaxProbedMajor = 18;
constexpr int kStartAttempts = 5;
constexpr auto kInitdbTimeout = std::chrono::minutes(2);
constexpr auto kPgCtlTimeout = std::chrono::seconds(90);  // pg_ctl itself waits at most 60 s
constexpr const char* kPgCtlWaitSeconds = "60";

// libpq/psql environment variables that would change where or how psql and
// the servers connect; the harness controls all of that explicitly.
const std::vector<std::string> kUnsetEnv = {
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGSSLMODE",
    "PGREQUIRESSL",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLROOTCERT",
    "PGSSLCRL",
    "PGGSSENCMODE",
    "PGCHANNELBINDING",
    "PGTARGETSESSIONATTRS",
    "PGCONNECT_TIMEOUT",
    "PGAPPNAME",
    "PGDATA",
    "PGSYSCONFDIR",
    "PGCLIENTENCODING",
    "PGTZ",
    "PGDATESTYLE",
    "PGLOCALEDIR",
    "PSQLRC",
    "PSQL_HISTORY",
    "PGREQUIREAUTH",
    "PGSSLNEGOTIATION",
    "PGLOADBALANCEHOSTS",
    "LC_ALL",
};

std::string GetEnv(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

bool IsExecutable(const std::string& path) {
  return !path.empty() && ::access(path.c_str(), X_OK) == 0 && !fs::is_directory(path);
}

bool KeepClusters() { return GetEnv("PGCOURIER_KEEP_CLUSTERS") == "1"; }

// A key=value conninfo value, quoted when libpq requires it.
std::string ConninfoValue(const std::string& value) {
  bool needs_quotes = value.empty();
  for (char c : value) {
    if (c == ' ' || c == '\'' || c == '\\' || c == '\t' || c == '\n' || c == '=') {
      needs_quotes = true;
    }
  }
  if (!needs_quotes) return value;
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string PercentEncode(const std::string& value) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '-' ||
        u == '_' || u == '.' || u == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

// A postgresql.conf string literal.
std::string ConfQuote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += c;  // '' and \\ both escape
    out += c;
  }
  return out + "'";
}

std::string Tail(const std::string& text, int lines) {
  size_t end = text.size();
  while (end > 0 && text[end - 1] == '\n') --end;
  size_t pos = end;
  int seen = 0;
  while (pos > 0) {
    if (text[pos - 1] == '\n' && ++seen == lines) break;
    --pos;
  }
  return text.substr(pos, end - pos);
}

std::string ReadFile(const std::string& path, std::streamoff from = 0) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(from);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Status AppendToFile(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::app);
  if (!out) return Status(StatusCode::kIoError, "cannot open " + path + " for appending");
  for (const auto& line : lines) out << line << '\n';
  out.close();
  if (!out) return Status(StatusCode::kIoError, "cannot write " + path);
  return Status::Ok();
}

Status WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc | std::ios::binary);
  if (!out) return Status(StatusCode::kIoError, "cannot open " + path + " for writing");
  out << content;
  out.close();
  if (!out) return Status(StatusCode::kIoError, "cannot write " + path);
  return Status::Ok();
}

std::string DescribeFailure(const std::vector<std::string>& argv, const ProcessResult& result) {
  std::string text = argv[0];
  for (size_t i = 1; i < argv.size(); ++i) text += " " + argv[i];
  if (result.signal != 0) {
    text += " was killed by signal " + std::to_string(result.signal);
  } else {
    text += " exited with " + std::to_string(result.exit_code);
  }
  std::string output = Tail(result.err + result.out, 20);
  if (!output.empty()) text += ":\n" + output;
  return text;
}

// Asks the kernel for a free TCP port on 127.0.0.1. It may be taken again
// before the server binds it; Start retries in that case.
Result<int> FindFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status(StatusCode::kIoError, std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  // sockaddr_in -> sockaddr is how the sockets API is meant to be used.
  auto* generic = reinterpret_cast<sockaddr*>(&addr);
  if (::bind(fd, generic, sizeof(addr)) != 0 || ::getsockname(fd, generic, &len) != 0) {
    int err = errno;
    ::close(fd);
    return Status(StatusCode::kIoError, std::string("bind 127.0.0.1:0: ") + std::strerror(err));
  }
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

// True when every ancestor of `dir` can be traversed by uid/gid (judged by
// mode bits; supplementary groups are ignored).
bool TraversableBy(const fs::path& dir, uid_t uid, gid_t gid) {
  fs::path path = fs::absolute(dir);
  for (fs::path p = path; !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return false;
    bool ok = (st.st_mode & S_IXOTH) != 0 || (st.st_uid == uid && (st.st_mode & S_IXUSR) != 0) ||
              (st.st_gid == gid && (st.st_mode & S_IXGRP) != 0);
    if (!ok) return false;
    if (p == p.root_path()) break;
  }
  return true;
}

const char* const kDefaultHbaLines =
    "# Defaults added by the pgcourier test harness: trust everything local.\n"
    "local   all             all                                     trust\n"
    "host    all             all             127.0.0.1/32            trust\n"
    "host    all             all             ::1/128                 trust\n"
    "local   replication     all                                     trust\n"
    "host    replication     all             127.0.0.1/32            trust\n"
    "host    replication     all             ::1/128                 trust\n";

// The initdb of a test cluster.
std::vector<std::string> InitdbCommand(const std::string& bin_dir, const PgClusterOptions& options,
                                       const std::string& data_dir) {
  std::vector<std::string> argv = {bin_dir + "/initdb", "-D", data_dir, "-A", "trust", "-N"};
  argv.insert(argv.end(), {"-U", options.superuser, "-E", "UTF8", "--locale=" + options.locale});
  return argv;
}

// The template's directory name: "pg15-" and a hash of everything initdb's
// result depends on: the binaries (a new build of them makes a new
// template), the superuser and the locale.
std::string TemplateName(const std::string& bin_dir, const PgClusterOptions& options) {
  std::string key = "template 1\n" + bin_dir;
  for (const char* program : {"initdb", "postgres"}) {
    struct stat st {};
    if (::stat((bin_dir + "/" + program).c_str(), &st) == 0) {
      key += "\n" + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
             std::to_string(st.st_mtim.tv_nsec);
    }
  }
  key += "\n" + options.superuser + "\n" + options.locale;
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016zx", std::hash<std::string>{}(key));
  return "pg" + std::to_string(options.major) + "-" + hash;
}

// Makes `data_dir` as initdb would: a copy of a template made once per
// binaries, superuser and locale in `tmp`/pgcourier-test-templates/, given a
// system identifier of its own (system_identifier.h), so that two clusters
// never share one, as two initdb runs never do. With
// PGCOURIER_TEST_TEMPLATES=0 in the environment, initdb itself. `run` runs a
// command as the server's OS user; `chown` gives it a path.
Status MakeDataDir(const std::string& tmp, const std::string& bin_dir,
                   const PgClusterOptions& options, const std::string& data_dir,
                   const std::function<Status(const std::vector<std::string>&)>& run,
                   const std::function<Status(const std::string&)>& chown) {
  if (GetEnv("PGCOURIER_TEST_TEMPLATES") == "0") {
    return run(InitdbCommand(bin_dir, options, data_dir));
  }
  // The template is made into a directory of its own, renamed into place
  // when complete, so tests running at the same time never see half of one.
  // Where none can be made (a directory of another user), initdb runs as
  // before.
  const fs::path root = fs::path(tmp) / "pgcourier-test-templates";
  std::error_code ec;
  if (fs::create_directory(root, ec)) fs::permissions(root, fs::perms(0755), ec);
  const fs::path template_dir = root / TemplateName(bin_dir, options);
  if (!fs::exists(template_dir / "data" / "global" / "pg_control", ec)) {
    std::string pattern = template_dir.string() + ".new-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) return run(InitdbCommand(bin_dir, options, data_dir));
    const std::string staging = buffer.data();
    Status made =
        ::chmod(staging.c_str(), 0755) == 0
            ? chown(staging)
            : Status(StatusCode::kIoError, "chmod " + staging + ": " + std::strerror(errno));
    if (made.ok()) made = run(InitdbCommand(bin_dir, options, staging + "/data"));
    // Another test may have put the same template in place meanwhile; then
    // the rename fails and this one goes.
    if (!made.ok() || ::rename(staging.c_str(), template_dir.c_str()) != 0) {
      fs::remove_all(staging, ec);
    }
    if (!made.ok()) return made;
  }
  // cp runs as the server's user, so the copy is the server's; -a keeps the
  // modes initdb set (a data directory must be 0700).
  PGC_RETURN_IF_ERROR(run({"cp", "-a", (template_dir / "data").string(), data_dir}));
  return SetSystemIdentifier(data_dir, NewSystemIdentifier())
      .WithContext("giving the copy of the template " + template_dir.string() +
                   " a system identifier of its own");
}

}  // namespace

std::string PgBinDir(int major) {
  std::string env_name = "PGCOURIER_PG" + std::to_string(major) + "_BINDIR";
  std::string from_env = GetEnv(env_name.c_str());
  if (!from_env.empty()) return from_env;
  std::string m = std::to_string(major);
  std::vector<std::string> candidates = {"/usr/lib/postgresql/" + m + "/bin",
                                         "/opt/pgcourier/pg/" + m + "/bin"};
  std::string home = GetEnv("HOME");
  if (!home.empty()) candidates.push_back(home + "/.local/share/pgcourier/pg/" + m + "/bin");
  for (const auto& dir : candidates) {
    if (IsExecutable(dir + "/postgres")) return dir;
  }
  return {};
}

std::vector<int> AvailablePgMajors() {
  std::vector<int> majors;
  for (int major = kMinProbedMajor; major <= kMaxProbedMajor; ++major) {
    std::string dir = PgBinDir(major);
    if (!dir.empty() && IsExecutable(dir + "/postgres")) majors.push_back(major);
  }
  return majors;
}

bool HavePgMajor(int major) {
  std::string dir = PgBinDir(major);
  return !dir.empty() && IsExecutable(dir + "/postgres");
}

std::string PsqlPath() {
  std::string from_env = GetEnv("PGCOURIER_TEST_PSQL");
  if (!from_env.empty()) return from_env;
  std::vector<std::string> dirs = {PgBinDir(15), "/usr/lib/postgresql/15/bin"};
  std::vector<int> majors = AvailablePgMajors();
  std::reverse(majors.begin(), majors.end());  // newest first
  for (int major : majors) dirs.push_back(PgBinDir(major));
  for (const auto& dir : dirs) {
    if (!dir.empty() && IsExecutable(dir + "/psql")) return dir + "/psql";
  }
  return "psql";
}

PgCluster::PgCluster(PgClusterOptions options) : options_(std::move(options)) {
  failed_tests_at_start_ = ::testing::UnitTest::GetInstance()->failed_test_count();
}

void PgCluster::AbandonFailedStart() {
  if (running_) {
    (void)RunServerCommand({bin_dir_ + "/pg_ctl", "stop", "-D", data_dir_, "-m", "immediate", "-w"},
                           kPgCtlTimeout);
    running_ = false;
  }
  RemoveDir();
}

Result<std::unique_ptr<PgCluster>> PgCluster::Start(const PgClusterOptions& options) {
  std::unique_ptr<PgCluster> cluster(new PgCluster(options));
  Status status = cluster->Init();
  if (status.ok()) status = cluster->StartServer();
  if (!status.ok()) {
    cluster->AbandonFailedStart();
    return status.WithContext("starting a PostgreSQL " + std::to_string(options.major) +
                              " test cluster");
  }
  return cluster;
}

Result<std::unique_ptr<PgCluster>> PgCluster::StartStandby(
    const PgCluster& primary, const std::vector<std::string>& settings) {
  PgClusterOptions options = primary.options_;
  options.settings = settings;
  std::unique_ptr<PgCluster> cluster(new PgCluster(options));
  cluster->primary_ = &primary;
  Status status = cluster->Init();
  if (status.ok()) {
    // A base backup of the primary, whose configuration (pg_hba.conf,
    // certificates) it takes along; -R writes standby.signal and
    // primary_conninfo.
    auto backup =
        cluster->RunServerCommand({cluster->bin_dir_ + "/pg_basebackup", "-h", primary.host(), "-p",
                                   std::to_string(primary.port()), "-U", primary.superuser(), "-D",
                                   cluster->data_dir_, "-R", "-X", "stream", "-c", "fast"},
                                  kInitdbTimeout);
    status = backup.status();
  }
  if (status.ok()) {
    std::vector<std::string> conf = {
        "", "# Added by the pgcourier test harness (standby).",
        "unix_socket_directories = " + ConfQuote(cluster->socket_dir_)};
    conf.insert(conf.end(), settings.begin(), settings.end());
    status = AppendToFile(cluster->data_dir_ + "/postgresql.conf", conf);
  }
  if (status.ok()) status = cluster->StartServer();
  cluster->primary_ = nullptr;
  if (!status.ok()) {
    cluster->AbandonFailedStart();
    return status.WithContext("starting a standby of the test cluster on port " +
                              std::to_string(primary.port()));
  }
  return cluster;
}

Status PgCluster::Init() {
  bin_dir_ = PgBinDir(options_.major);
  if (bin_dir_.empty() || !IsExecutable(bin_dir_ + "/postgres")) {
    std::string env_name = "PGCOURIER_PG" + std::to_string(options_.major) + "_BINDIR";
    return Status(StatusCode::kNotFound,
                  "no PostgreSQL " + std::to_string(options_.major) + " server binaries found" +
                      (bin_dir_.empty() ? std::string() : " in " + bin_dir_),
                  "install them (scripts/ has a setup script) or set " + env_name);
  }

  if (::geteuid() == 0) {
    std::string os_user = GetEnv("PGCOURIER_TEST_OS_USER");
    if (os_user.empty()) os_user = "postgres";
    struct passwd* pw = ::getpwnam(os_user.c_str());
    if (pw == nullptr) {
      return Status(
          StatusCode::kNotFound,
          "running as root, but there is no OS user '" + os_user + "' to run PostgreSQL as",
          "create it or set PGCOURIER_TEST_OS_USER");
    }
    as_other_user_ = true;
    server_uid_ = pw->pw_uid;
    server_gid_ = pw->pw_gid;
  } else {
    server_uid_ = ::geteuid();
    server_gid_ = ::getegid();
  }
  // The temporary directory, reachable by the server's user.
  std::string tmp = GetEnv("TMPDIR");
  if (tmp.empty() || !fs::is_directory(tmp) ||
      (as_other_user_ && !TraversableBy(tmp, server_uid_, server_gid_))) {
    tmp = "/tmp";
  }
  std::string pattern = (fs::path(tmp) / "pgcourier-test-XXXXXX").string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    return Status(StatusCode::kIoError, "mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  base_dir_ = buffer.data();
  data_dir_ = base_dir_ + "/data";
  socket_dir_ = base_dir_ + "/socket";
  log_path_ = base_dir_ + "/server.log";
  if (::chmod(base_dir_.c_str(), 0755) != 0 || ::mkdir(socket_dir_.c_str(), 0755) != 0) {
    return Status(StatusCode::kIoError, "preparing " + base_dir_ + ": " + std::strerror(errno));
  }
  PGC_RETURN_IF_ERROR(ChownToServerUser(base_dir_));
  PGC_RETURN_IF_ERROR(ChownToServerUser(socket_dir_));
  if (primary_ != nullptr) return Status::Ok();  // StartStandby makes the data directory
  PGC_RETURN_IF_ERROR(MakeDataDir(
      tmp, bin_dir_, options_, data_dir_,
      [this](const std::vector<std::string>& argv) {
        return RunServerCommand(argv, kInitdbTimeout).status();
      },
      [this](const std::string& path) { return ChownToServerUser(path); }));
  std::vector<std::string> conf = {
      "",
      "# Added by the pgcourier test harness.",
      "listen_addresses = '127.0.0.1'",
      "unix_socket_directories = " + ConfQuote(socket_dir_),
      "fsync = off",
      "lc_messages = 'C'",  // English server messages, whatever the locale
  };
  if (options_.ssl || options_.ssl_ca_signed) conf.emplace_back("ssl = on");
  if (!options_.settings.empty()) conf.emplace_back("# PgClusterOptions::settings");
  for (const auto& line : options_.settings) conf.push_back(line);
  PGC_RETURN_IF_ERROR(AppendToFile(data_dir_ + "/postgresql.conf", conf));

  std::string hba = "# pg_hba.conf written by the pgcourier test harness.\n";
  if (!options_.hba_lines.empty()) hba += "# PgClusterOptions::hba_lines\n";
  for (const auto& line : options_.hba_lines) hba += line + "\n";
  hba += kDefaultHbaLines;
  PGC_RETURN_IF_ERROR(WriteFile(data_dir_ + "/pg_hba.conf", hba));

  if (options_.ssl || options_.ssl_ca_signed) {
    std::string key = data_dir_ + "/server.key";
    std::string crt = data_dir_ + "/server.crt";
    ProcessOptions openssl_options;
    openssl_options.timeout = std::chrono::minutes(1);
    std::vector<std::vector<std::string>> commands;
    if (options_.ssl_ca_signed) {
      // EC keys: generated in milliseconds, unlike RSA ones.
      const std::vector<std::string> new_ec_cert = {"openssl",
                                                    "req",
                                                    "-new",
                                                    "-x509",
                                                    "-days",
                                                    "2",
                                                    "-nodes",
                                                    "-newkey",
                                                    "ec",
                                                    "-pkeyopt",
                                                    "ec_paramgen_curve:prime256v1"};
      ssl_ca_path_ = base_dir_ + "/ca.crt";
      std::string ca_key = base_dir_ + "/ca.key";
      commands.push_back(new_ec_cert);
      commands.back().insert(commands.back().end(), {"-subj", "/CN=pgcourier-test-ca", "-addext",
                                                     "basicConstraints=critical,CA:TRUE", "-addext",
                                                     "keyUsage=critical,keyCertSign,cRLSign",
                                                     "-keyout", ca_key, "-out", ssl_ca_path_});
      commands.push_back(new_ec_cert);
      commands.back().insert(
          commands.back().end(),
          {"-subj", "/CN=localhost", "-addext", "basicConstraints=critical,CA:FALSE", "-addext",
           "subjectAltName=DNS:localhost,IP:127.0.0.1", "-CA", ssl_ca_path_, "-CAkey", ca_key,
           "-keyout", key, "-out", crt});
    } else {
      commands.push_back({"openssl", "req", "-new", "-x509", "-days", "2", "-nodes", "-subj",
                          "/CN=localhost", "-keyout", key, "-out", crt});
    }
    for (const auto& command : commands) {
      auto openssl = RunProcess(command, openssl_options);
      if (!openssl.ok()) return openssl.status().WithContext("openssl");
      if (!openssl->ok()) return Status(StatusCode::kIoError, DescribeFailure(command, *openssl));
    }
    if (::chmod(key.c_str(), 0600) != 0 || ::chmod(crt.c_str(), 0644) != 0) {
      return Status(StatusCode::kIoError, "chmod " + key + ": " + std::strerror(errno));
    }
    PGC_RETURN_IF_ERROR(ChownToServerUser(key));
    PGC_RETURN_IF_ERROR(ChownToServerUser(crt));
  }
  return Status::Ok();
}

Status PgCluster::StartServer() {
  std::string last_error;
  for (int attempt = 1; attempt <= kStartAttempts; ++attempt) {
    auto port = FindFreePort();
    if (!port.ok()) return port.status();
    port_ = *port;
    std::streamoff log_size = 0;
    std::error_code ec;
    if (fs::exists(log_path_, ec))
      log_size = static_cast<std::streamoff>(fs::file_size(log_path_, ec));

    auto started =
        RunServerCommand({bin_dir_ + "/pg_ctl", "start", "-w", "-t", kPgCtlWaitSeconds, "-D",
                          data_dir_, "-l", log_path_, "-o", "-p " + std::to_string(port_)},
                         kPgCtlTimeout);
    if (started.ok()) {
      running_ = true;
      return Status::Ok();
    }
    // pg_ctl may have given up waiting while the server still runs.
    running_ = fs::exists(data_dir_ + "/postmaster.pid", ec);
    std::string this_attempt_log = ReadFile(log_path_, log_size);
    if (this_attempt_log.find("Address already in use") == std::string::npos) {
      return Status(StatusCode::kIoError, started.status().message() + "\nserver log (" +
                                              log_path_ + "):\n" + Tail(this_attempt_log, 30));
    }
    last_error = started.status().message() + "\n" + Tail(this_attempt_log, 10);
  }
  return Status(StatusCode::kIoError, "no free port after " + std::to_string(kStartAttempts) +
                                          " attempts; last:\n" + last_error);
}

Result<std::string> PgCluster::RunServerCommand(const std::vector<std::string>& argv,
                                                std::chrono::milliseconds timeout) const {
  ProcessOptions process_options;
  process_options.unset_env = kUnsetEnv;
  // Untranslated messages, so the harness can recognise them.
  process_options.env["LC_MESSAGES"] = "C";
  process_options.timeout = timeout;
  process_options.working_dir = base_dir_;
  if (as_other_user_) {
    process_options.run_as_uid = server_uid_;
    process_options.run_as_gid = server_gid_;
    // A home of its own, as a service has: the server's libpq (a
    // subscription's connection) looks for ~/.postgresql there, not in the
    // test user's.
    process_options.env["HOME"] = base_dir_;
  }
  auto result = RunProcess(argv, process_options);
  if (!result.ok()) return result.status();
  if (!result->ok()) return Status(StatusCode::kIoError, DescribeFailure(argv, *result));
  return std::move(result->out);
}

Status PgCluster::ChownToServerUser(const std::string& path) const {
  if (!as_other_user_) return Status::Ok();
  if (::chown(path.c_str(), server_uid_, server_gid_) != 0) {
    return Status(StatusCode::kIoError, "chown " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

void PgCluster::RemoveDir() {
  if (base_dir_.empty()) return;
  if (KeepClusters()) {
    std::cerr << "[pgcourier-test] keeping cluster directory " << base_dir_ << "\n";
    return;
  }
  std::error_code ec;
  fs::remove_all(base_dir_, ec);
  if (ec)
    std::cerr << "[pgcourier-test] could not remove " << base_dir_ << ": " << ec.message() << "\n";
}

PgCluster::~PgCluster() {
  if (running_) {
    auto stopped = RunServerCommand(
        {bin_dir_ + "/pg_ctl", "stop", "-D", data_dir_, "-m", "immediate", "-w", "-t", "60"},
        kPgCtlTimeout);
    if (!stopped.ok()) {
      std::cerr << "[pgcourier-test] stopping the cluster in " << data_dir_
                << " failed: " << stopped.status().message() << "\n";
    }
  }
  bool failed = ::testing::Test::HasFailure() ||
                ::testing::UnitTest::GetInstance()->failed_test_count() > failed_tests_at_start_;
  if (failed || KeepClusters()) {
    std::cerr << "[pgcourier-test] keeping PostgreSQL " << options_.major << " cluster (port "
              << port_ << "): data dir " << data_dir_ << ", log " << log_path_ << "\n";
    return;
  }
  RemoveDir();
}

std::string PgCluster::ConnString(const std::string& dbname, const std::string& user,
                                  const std::string& password) const {
  std::string conninfo = "host=" + host() + " port=" + std::to_string(port_) +
                         " user=" + ConninfoValue(user.empty() ? options_.superuser : user) +
                         " dbname=" + ConninfoValue(dbname);
  if (!password.empty()) conninfo += " password=" + ConninfoValue(password);
  return conninfo;
}

std::string PgCluster::Uri(const std::string& dbname, const std::string& user,
                           const std::string& password) const {
  std::string uri = "postgresql://" + PercentEncode(user.empty() ? options_.superuser : user);
  if (!password.empty()) uri += ":" + PercentEncode(password);
  return uri + "@" + host() + ":" + std::to_string(port_) + "/" + PercentEncode(dbname);
}

Result<std::string> PgCluster::Sql(const std::string& sql, const std::string& dbname,
                                   const std::string& user) const {
  SqlOptions options;
  options.dbname = dbname;
  options.user = user;
  return Sql(sql, options);
}

Result<std::string> PgCluster::Sql(const std::string& sql, const SqlOptions& options) const {
  // The SQL goes through a file: -c would run all statements as one
  // multi-statement query in a single implicit transaction.
  std::string pattern = base_dir_ + "/sql-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  int fd = ::mkstemp(buffer.data());
  if (fd < 0)
    return Status(StatusCode::kIoError, "mkstemp " + pattern + ": " + std::strerror(errno));
  ::close(fd);
  std::string sql_file = buffer.data();
  Status written = WriteFile(sql_file, sql);
  if (!written.ok()) {
    ::unlink(sql_file.c_str());
    return written;
  }

  std::string conninfo = ConnString(options.dbname, options.user) + " connect_timeout=10";
  if (!options.extra_conninfo.empty()) conninfo += " " + options.extra_conninfo;
  ProcessOptions process_options;
  process_options.unset_env = kUnsetEnv;
  process_options.env["LC_MESSAGES"] = "C";
  process_options.env["PGCLIENTENCODING"] = "UTF8";
  if (!options.password.empty()) process_options.env["PGPASSWORD"] = options.password;
  process_options.timeout = options.timeout;
  std::vector<std::string> argv = {PsqlPath(),        "-X", "-q",     "-A", "-t",    "-v",
                                   "ON_ERROR_STOP=1", "-d", conninfo, "-f", sql_file};
  auto result = RunProcess(argv, process_options);
  ::unlink(sql_file.c_str());
  if (!result.ok()) return result.status().WithContext("psql");
  if (!result->ok()) {
    std::string message = result->err.empty() ? DescribeFailure(argv, *result) : result->err;
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return Status(StatusCode::kServerError, message);
  }
  std::string out = std::move(result->out);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

Status PgCluster::Stop() {
  if (!running_) return Status::Ok();
  auto stopped = RunServerCommand(
      {bin_dir_ + "/pg_ctl", "stop", "-D", data_dir_, "-m", "fast", "-w", "-t", kPgCtlWaitSeconds},
      kPgCtlTimeout);
  if (!stopped.ok()) return stopped.status().WithContext("stopping the cluster in " + data_dir_);
  running_ = false;
  return Status::Ok();
}

Status PgCluster::Kill() {
  if (!running_) return Status::Ok();
  auto stopped = RunServerCommand({bin_dir_ + "/pg_ctl", "stop", "-D", data_dir_, "-m", "immediate",
                                   "-w", "-t", kPgCtlWaitSeconds},
                                  kPgCtlTimeout);
  if (!stopped.ok()) return stopped.status().WithContext("killing the cluster in " + data_dir_);
  running_ = false;
  return Status::Ok();
}

Status PgCluster::Restart() {
  std::error_code ec;
  std::streamoff log_size = 0;
  if (fs::exists(log_path_, ec))
    log_size = static_cast<std::streamoff>(fs::file_size(log_path_, ec));
  auto restarted = RunServerCommand(
      {bin_dir_ + "/pg_ctl", "restart", "-w", "-t", kPgCtlWaitSeconds, "-m", "fast", "-D",
       data_dir_, "-l", log_path_, "-o", "-p " + std::to_string(port_)},
      kPgCtlTimeout);
  if (!restarted.ok()) {
    running_ = fs::exists(data_dir_ + "/postmaster.pid", ec);
    return Status(StatusCode::kIoError, restarted.status().message() + "\nserver log (" +
                                            log_path_ + "):\n" +
                                            Tail(ReadFile(log_path_, log_size), 30))
        .WithContext("restarting the cluster in " + data_dir_);
  }
  running_ = true;
  return Status::Ok();
}

Status PgCluster::AppendSettings(const std::vector<std::string>& lines) {
  return AppendToFile(data_dir_ + "/postgresql.conf", lines);
}

Status PgCluster::AppendHbaLines(const std::vector<std::string>& lines) {
  PGC_RETURN_IF_ERROR(AppendToFile(data_dir_ + "/pg_hba.conf", lines));
  if (!running_) return Status::Ok();
  auto reloaded =
      RunServerCommand({bin_dir_ + "/pg_ctl", "reload", "-D", data_dir_}, kPgCtlTimeout);
  return reloaded.status();
}

std::string PgCluster::LogTail(int lines) const { return Tail(ReadFile(log_path_), lines); }

std::unique_ptr<PgCluster> StartClusterOrFail(const PgClusterOptions& options, const char* file,
                                              int line) {
  auto cluster = PgCluster::Start(options);
  if (!cluster.ok()) {
    Status status = cluster.status();
    ADD_FAILURE_AT(file, line) << status.ToString()
                               << (status.hint().empty() ? "" : "\nhint: " + status.hint());
    return nullptr;
  }
  return std::move(*cluster);
}

}  // namespace pgcourier::testing
