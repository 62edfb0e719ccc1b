// Passwords never leak: given through (a) the URI, (b) PGPASSWORD, (c) a
// .pgpass file and (d) a service file, for scram roles on both servers, a
// whole session of the real binary (check, migrate by copy, migrate by
// replication, status, cutover, verify, all with --log-level debug) runs
// while a thread reads every process's command line every few milliseconds
// (pg_dump and pg_restore included); afterwards standard output and error and
// every file of the work directory (the SQLite store read as bytes) are
// searched. The one place a password must be is the subscription's conninfo
// while it replicates (the target server connects with it), and after
// cutover no subscription is left holding it.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.h"
#include "pg_cluster.h"
#include "two_servers.h"
#include "util/process.h"
#include "watch_helpers.h"

namespace pgcourier {
namespace {

namespace fs = std::filesystem;
using testing::PgCluster;
using testing::ReadBytes;

// Reads every process's command line in a loop while a command runs. The
// pgcourier process itself may hold the password in its argv only until it
// has parsed its arguments (it overwrites it then); once it was seen
// scrubbed, and in every other process, the password is a leak.
class CmdlineWatch {
 public:
  explicit CmdlineWatch(std::string secret) : secret_(std::move(secret)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~CmdlineWatch() { Stop(); }
  CmdlineWatch(const CmdlineWatch&) = delete;
  CmdlineWatch& operator=(const CmdlineWatch&) = delete;

  void Watch(pid_t main) {
    main_scrubbed_ = false;
    main_ = main;
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> leaks() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return leaks_;
  }
  // Names of the programs seen running as children of a watched pgcourier.
  std::set<std::string> children() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return children_;
  }
  int scans() const { return scans_; }
  void ClearLeaks() {
    std::lock_guard<std::mutex> lock(mutex_);
    leaks_.clear();
  }

 private:
  void Loop() {
    const pid_t self = ::getpid();
    while (!stop_) {
      std::error_code ec;
      for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        const auto pid = static_cast<pid_t>(std::stol(name));
        if (pid == self) continue;
        std::string cmdline = ReadBytes(it->path() / "cmdline");
        const pid_t main = main_;
        if (main != 0 && ParentOf(it->path()) == main) {
          std::string comm = ReadBytes(it->path() / "comm");
          while (!comm.empty() && comm.back() == '\n') comm.pop_back();
          std::lock_guard<std::mutex> lock(mutex_);
          children_.insert(comm);
        }
        const bool holds = cmdline.find(secret_) != std::string::npos;
        if (pid == main && !holds &&
            cmdline.rfind(testing::PgcourierBinary() + std::string(1, '\0'), 0) == 0) {
          main_scrubbed_ = true;
        }
        if (!holds || (pid == main && !main_scrubbed_)) continue;
        for (char& c : cmdline) {
          if (c == '\0') c = ' ';
        }
        std::lock_guard<std::mutex> lock(mutex_);
        leaks_.push_back(fmt::format("pid {}{}: {}", pid, pid == main ? " (pgcourier)" : "",
                                     cmdline.substr(0, 300)));
      }
      ++scans_;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  static pid_t ParentOf(const fs::path& proc_dir) {
    // stat: "pid (comm) state ppid ..."; comm may hold spaces and parens.
    std::string stat = ReadBytes(proc_dir / "stat");
    size_t close = stat.rfind(')');
    if (close == std::string::npos || close + 4 >= stat.size()) return 0;
    return static_cast<pid_t>(std::atol(stat.c_str() + close + 4));
  }

  const std::string secret_;
  std::atomic<bool> stop_{false};
  std::atomic<pid_t> main_{0};
  std::atomic<bool> main_scrubbed_{false};
  std::atomic<int> scans_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> leaks_;
  std::set<std::string> children_;
  std::thread thread_;
};

std::string NewPassword() {
  std::random_device random;
  return fmt::format("S3cr3t-{:08x}{:08x}", random(), random());
}

struct Credentials {
  std::string name;
  bool replication;  // also migrate by replication, status, cutover
};

class SecretsTest : public testing::SourceAndTargetFixture<::testing::TestWithParam<Credentials>> {
 protected:
  void SetUp() override {
    password_ = NewPassword();
    testing::SourceAndTargetOptions options;
    options.logical_source = true;
    options.target.settings = {"wal_level = logical"};
    options.source_role = {"app", password_, "SUPERUSER"};
    options.target_role = options.source_role;
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
    Result<std::string> built = source_->Sql(R"sql(
      CREATE DATABASE shop;
      \c shop
      CREATE TABLE public.customers (id int PRIMARY KEY, name text);
      INSERT INTO public.customers SELECT g, 'customer ' || g FROM generate_series(1, 1000) g;
      CREATE TABLE public.orders (id bigserial PRIMARY KEY,
                                  customer int REFERENCES public.customers, total numeric);
      INSERT INTO public.orders (customer, total) SELECT 1 + g % 1000, g FROM generate_series(1, 5000) g;
      CREATE INDEX orders_customer ON public.orders (customer);
    )sql");
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    home_ = source_->base_dir() + "/home";
    fs::create_directories(home_);
  }

  // Connection strings and environment for the credentials under test.
  void Prepare(const std::string& target_db) {
    const std::string& how = GetParam().name;
    env_.clear();
    auto key_value = [](const PgCluster& c, const std::string& db) {
      return fmt::format("host=127.0.0.1 port={} user=app dbname={}", c.port(), db);
    };
    source_conn_ = key_value(*source_, "shop");
    target_conn_ = key_value(*target_, target_db);
    if (how == "uri") {
      source_conn_ = source_->Uri("shop", "app", password_);
      target_conn_ = target_->Uri(target_db, "app", password_);
    } else if (how == "pgpassword") {
      env_["PGPASSWORD"] = password_;
    } else if (how == "pgpass") {
      std::string path = home_ + "/pgpass";
      std::ofstream(path) << fmt::format("127.0.0.1:{}:*:app:{}\n127.0.0.1:{}:*:app:{}\n",
                                         source_->port(), password_, target_->port(), password_);
      ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
      env_["PGPASSFILE"] = path;
    } else if (how == "service") {
      std::string path = home_ + "/pg_service.conf";
      std::ofstream(path) << fmt::format(
          "[old]\nhost=127.0.0.1\nport={}\nuser=app\npassword={}\n\n"
          "[new]\nhost=127.0.0.1\nport={}\nuser=app\npassword={}\n",
          source_->port(), password_, target_->port(), password_);
      ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
      env_["PGSERVICEFILE"] = path;
      source_conn_ = "service=old dbname=shop";
      target_conn_ = "service=new dbname=" + target_db;
    } else {
      FAIL() << how;
    }
  }

  // Runs pgcourier under the watch; the password must be in none of its
  // output.
  ProcessResult Run(std::vector<std::string> args, int expected_exit = 0) {
    args.insert(args.begin(), {"--log-level", "debug"});
    testing::CliOptions options;
    options.env = env_;
    options.env["HOME"] = home_;  // no ~/.pgpass of the machine
    options.unset_env = {"PGCOURIER_SOURCE", "PGCOURIER_TARGET"};
    if (env_.count("PGPASSWORD") == 0) options.unset_env.emplace_back("PGPASSWORD");
    options.on_start = [this](pid_t pid) { watch_->Watch(pid); };
    Result<ProcessResult> ran = testing::TryRunCli(args, options);
    watch_->Watch(0);
    EXPECT_TRUE(ran.ok()) << ran.status().ToString();
    if (!ran.ok()) return {};
    EXPECT_EQ(ran->exit_code, expected_exit) << args[2] << ":\n" << ran->out << ran->err;
    EXPECT_EQ(ran->out.find(password_), std::string::npos) << args[2] << " stdout:\n" << ran->out;
    EXPECT_EQ(ran->err.find(password_), std::string::npos) << args[2] << " stderr:\n" << ran->err;
    ++commands_;
    return *ran;
  }

  std::string password_;
  std::string home_;
  std::string source_conn_;
  std::string target_conn_;
  std::map<std::string, std::string> env_;
  std::unique_ptr<CmdlineWatch> watch_;
  int commands_ = 0;
};

TEST_P(SecretsTest, PasswordsStayOutOfArgvOutputAndFiles) {
  watch_ = std::make_unique<CmdlineWatch>(password_);
  const bool uri = GetParam().name == "uri";
  // The watch catches a password on a command line: a shell whose $0 is the
  // password, for a moment.
  Result<ProcessResult> control = RunProcess({"/bin/sh", "-c", "sleep 0.3", password_});
  ASSERT_TRUE(control.ok() && control->ok());
  ASSERT_FALSE(watch_->leaks().empty()) << "the watch sees nothing";
  watch_->ClearLeaks();

  Prepare("shop_copy");
  Run({"check", "--source", source_conn_, "--target", target_conn_});
  Run({"check", "--json", "--source", source_conn_, "--target", target_conn_});
  const std::string copy_dir = dir_ + "-copy";
  Run({"migrate", "--method", "copy", "--source", source_conn_, "--target", target_conn_, "--dir",
       copy_dir, "--jobs", "2"});
  Run({"status", "--json", "--dir", copy_dir});
  Run({"verify", "--source", source_conn_, "--target", target_conn_});
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM public.orders", "shop_copy"), "5000");

  std::vector<std::string> dirs = {copy_dir};
  if (GetParam().replication) {
    Prepare("shop_live");
    const std::string live_dir = dir_ + "-live";
    dirs.push_back(live_dir);
    Run({"migrate", "--method", "replication", "--source", source_conn_, "--target", target_conn_,
         "--dir", live_dir, "--jobs", "2"});
    // While it replicates, the target server holds the password: it
    // connects to the source with it.
    EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_subscription WHERE strpos(subconninfo, '" +
                            password_ + "') > 0"),
              "1");
    ASSERT_TRUE(
        source_->Sql("INSERT INTO public.customers VALUES (5000, 'while syncing')", "shop").ok());
    Run({"status", "--json", "--dir", live_dir});
    std::vector<std::string> cutover = {"cutover", "--dir", live_dir, "--timeout", "60"};
    if (uri) cutover.insert(cutover.end(), {"--source", source_conn_, "--target", target_conn_});
    Run(cutover);
    Run({"status", "--json", "--dir", live_dir});
    Run({"verify", "--source", source_conn_, "--target", target_conn_});
    EXPECT_EQ(*target_->Sql("SELECT name FROM public.customers WHERE id = 5000", "shop_live"),
              "while syncing");
    EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_subscription"), "0");
    EXPECT_EQ(*source_->Sql("SELECT count(*) FROM pg_replication_slots"), "0");
  }
  watch_->Stop();

  EXPECT_GT(watch_->scans(), 10);
  EXPECT_TRUE(watch_->leaks().empty()) << ::testing::PrintToString(watch_->leaks());
  // The watch saw the children it had to see: pg_dump and pg_restore ran.
  std::set<std::string> children = watch_->children();
  EXPECT_EQ(children.count("pg_dump"), 1u) << ::testing::PrintToString(children);
  EXPECT_EQ(children.count("pg_restore"), 1u) << ::testing::PrintToString(children);

  int files = 0;
  for (const auto& dir : dirs) {
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      ++files;
      EXPECT_EQ(ReadBytes(entry.path()).find(password_), std::string::npos)
          << "password in " << entry.path();
    }
    EXPECT_TRUE(fs::exists(dir + "/pgcourier.db")) << dir;
  }
  EXPECT_GE(files, 2);
  // Files pgcourier wrote for its children (a password file, say) are gone.
  for (const auto& entry : fs::directory_iterator(fs::temp_directory_path())) {
    if (!entry.is_regular_file() || entry.file_size() > 4096) continue;
    if (entry.path().filename().string().rfind("pgcourier", 0) != 0) continue;
    EXPECT_EQ(ReadBytes(entry.path()).find(password_), std::string::npos) << entry.path();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Credentials, SecretsTest,
    ::testing::Values(Credentials{"uri", true}, Credentials{"pgpassword", false},
                      Credentials{"pgpass", false}, Credentials{"service", true}),
    [](const ::testing::TestParamInfo<Credentials>& param) { return param.param.name; });

}  // namespace
}  // namespace pgcourier
