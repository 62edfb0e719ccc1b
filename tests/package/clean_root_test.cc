// The Debian package installed the way its users install it, into a clean
// Debian 12 root: `apt-get install ./pgcourier_*.deb` must pull every
// library the binary needs and the PostgreSQL client tools, from the
// package's declared dependencies alone (a clean root has none of the build
// machine's libraries). Then pgcourier runs there, and its man pages and
// completion are where man, bash and zsh look.
//
// The root is Debian's essential packages plus apt (mmdebstrap --variant=apt,
// from the Debian mirror); it is kept as a tarball in a cache directory
// ($PGCOURIER_TEST_CACHE_DIR, else ~/.cache/pgcourier-test) for the next run
// on the same machine. Needs root (chroot) and mmdebstrap; skipped, saying
// so, without them, and in the sanitizer build (whose binary needs the
// sanitizers' runtime).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "util/process.h"

namespace pgcourier {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kSuite = "bookworm";

fs::path CacheDir() {
  if (const char* dir = std::getenv("PGCOURIER_TEST_CACHE_DIR"); dir != nullptr && *dir != '\0')
    return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0')
    return fs::path(xdg) / "pgcourier-test";
  const char* home = std::getenv("HOME");
  return fs::path(home != nullptr ? home : "/root") / ".cache" / "pgcourier-test";
}

bool HaveProgram(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/usr/sbin", "/bin", "/sbin"}) {
    if (::access((fs::path(dir) / name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// A directory of the test's own, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/pgcourier-test-package-XXXXXX";
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs a command that must succeed; a failure names it with its output.
::testing::AssertionResult Succeeds(const std::vector<std::string>& argv,
                                    ProcessResult* out = nullptr,
                                    std::chrono::minutes timeout = std::chrono::minutes(10)) {
  ProcessOptions options;
  options.timeout = timeout;
  const Clock::time_point start = Clock::now();
  Result<ProcessResult> r = RunProcess(argv, options);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::string command;
  for (const std::string& a : argv) command += (command.empty() ? "" : " ") + a;
  std::printf("[ %6.1f s ] %s\n", seconds, command.c_str());
  if (!r.ok()) return ::testing::AssertionFailure() << command << ": " << r.status().ToString();
  if (out != nullptr) *out = *r;
  if (!r->ok()) {
    return ::testing::AssertionFailure() << command << " exited " << r->exit_code << "\n"
                                         << r->out << r->err;
  }
  return ::testing::AssertionSuccess();
}

// A command run in the root with a clean environment.
std::vector<std::string> InRoot(const fs::path& root, std::vector<std::string> argv) {
  std::vector<std::string> full = {
      "env",
      "-i",
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "DEBIAN_FRONTEND=noninteractive",
      "LC_ALL=C.UTF-8",
      "chroot",
      root.string()};
  full.insert(full.end(), argv.begin(), argv.end());
  return full;
}

// The package of the build directory the test belongs to.
::testing::AssertionResult BuildPackage(const fs::path& dir, fs::path* deb) {
  auto built =
      Succeeds({PGCOURIER_CPACK, "-G", "DEB", "--config",
                std::string(PGCOURIER_BUILD_DIR) + "/CPackConfig.cmake", "-B", dir.string()});
  if (!built) return built;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("pgcourier_") && name.ends_with(".deb")) *deb = entry.path();
  }
  if (deb->empty()) return ::testing::AssertionFailure() << "cpack wrote no pgcourier_*.deb";
  return ::testing::AssertionSuccess();
}

// The clean root in `root`: unpacked from the cache, or made now by
// mmdebstrap and then cached as a tarball.
::testing::AssertionResult MakeCleanRoot(const fs::path& root) {
  const fs::path cache = CacheDir();
  const fs::path tarball = cache / fmt::format("debian-{}-apt-root.tar", kSuite);
  if (fs::exists(tarball)) {
    std::printf("clean root from the cache: %s\n", tarball.c_str());
    fs::create_directories(root);
    return Succeeds({"tar", "-xpf", tarball.string(), "-C", root.string(), "--numeric-owner"});
  }
  auto made = Succeeds({"mmdebstrap", "--variant=apt", "--dpkgopt=force-unsafe-io", "--quiet",
                        kSuite, root.string()});
  if (!made) return made;
  std::error_code ec;
  fs::create_directories(cache, ec);
  if (ec) return ::testing::AssertionFailure() << "cannot create " << cache << ": " << ec.message();
  // Written under another name and renamed: an interrupted run leaves no
  // half tarball that a later run would take for a root.
  const fs::path partial = cache / fmt::format("debian-{}-apt-root.{}.tar", kSuite, ::getpid());
  auto archived = Succeeds({"tar", "-cpf", partial.string(), "-C", root.string(), "."});
  if (archived) fs::rename(partial, tarball, ec);
  if (!archived || ec) fs::remove(partial, ec);
  return archived;
}

TEST(CleanRoot, AptInstallsThePackageWithItsDependenciesAndItRuns) {
#ifdef PGCOURIER_SANITIZED_BUILD
  GTEST_SKIP() << "the sanitizer build's binary needs the sanitizers' runtime: the regular "
                  "build's package is tested";
#endif
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (chroot)";
  if (!HaveProgram("mmdebstrap"))
    GTEST_SKIP() << "mmdebstrap is not installed (scripts/setup.sh installs it)";

  TempDir temp;
  ASSERT_FALSE(temp.path().empty()) << "mkdtemp: " << std::strerror(errno);
  fs::path deb;
  ASSERT_TRUE(BuildPackage(temp.path() / "package", &deb));
  const fs::path root = temp.path() / "root";
  ASSERT_TRUE(MakeCleanRoot(root));
  fs::copy_file("/etc/resolv.conf", root / "etc" / "resolv.conf",
                fs::copy_options::overwrite_existing);
  fs::copy_file(deb, root / "tmp" / deb.filename());

  // As a user would, but with Recommends left out: what the package declares
  // as Depends must be enough.
  ASSERT_TRUE(Succeeds(InRoot(root, {"apt-get", "update", "-q"})));
  ASSERT_TRUE(Succeeds(
      InRoot(root, {"apt-get", "install", "-y", "-q", "--no-install-recommends", "-o",
                    "Dpkg::Options::=--force-unsafe-io", "/tmp/" + deb.filename().string()})));

  // The same binary as the build's (its version line names the commit).
  ProcessResult here = testing::RunCli({"--version"});
  ProcessResult there;
  ASSERT_TRUE(Succeeds(InRoot(root, {"pgcourier", "--version"}), &there));
  EXPECT_EQ(there.out, here.out);
  EXPECT_TRUE(there.out.starts_with(std::string("pgcourier ") + PGCOURIER_PROJECT_VERSION + " "))
      << there.out;
  ASSERT_TRUE(Succeeds(InRoot(root, {"pgcourier", "check", "--help"}), &there));
  EXPECT_EQ(there.out, testing::RunCli({"check", "--help"}).out);

  // pg_dump and pg_restore for check and migrate (postgresql-client).
  EXPECT_TRUE(Succeeds(InRoot(root, {"pg_dump", "--version"})));
  EXPECT_TRUE(Succeeds(InRoot(root, {"pg_restore", "--version"})));

  for (const char* file :
       {"usr/share/man/man1/pgcourier.1.gz", "usr/share/man/man1/pgcourier-check.1.gz",
        "usr/share/man/man1/pgcourier-migrate.1.gz",
        "usr/share/bash-completion/completions/pgcourier",
        "usr/share/zsh/vendor-completions/_pgcourier"}) {
    EXPECT_TRUE(fs::is_regular_file(root / file)) << file << " is not installed";
  }
}

}  // namespace
}  // namespace pgcourier
