#include "preflight/pg_tools.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace pgcourier {
namespace {

namespace fs = std::filesystem;

PgDumpCandidate Candidate(int major, const std::string& origin, bool with_restore = true) {
  PgDumpCandidate c;
  c.bindir = "/opt/pg" + std::to_string(major) + "/" + origin;
  c.pg_dump = c.bindir + "/pg_dump";
  c.pg_restore = with_restore ? c.bindir + "/pg_restore" : "";
  c.major = major;
  c.origin = origin;
  return c;
}

TEST(ChoosePgDumpTest, PrefersNewestNotNewerThanTarget) {
  std::vector<PgDumpCandidate> all = {Candidate(14, "PATH"), Candidate(15, "/usr/lib/postgresql"),
                                      Candidate(16, "/usr/lib/postgresql"),
                                      Candidate(17, "/usr/lib/postgresql")};
  auto chosen = ChoosePgDump(all, 15, 16);
  ASSERT_TRUE(chosen);
  EXPECT_EQ(chosen->major, 16);
}

TEST(ChoosePgDumpTest, FallsBackToOldestNewerThanTarget) {
  std::vector<PgDumpCandidate> all = {Candidate(17, "PATH"), Candidate(18, "/usr/lib/postgresql")};
  auto chosen = ChoosePgDump(all, 15, 15);
  ASSERT_TRUE(chosen);
  EXPECT_EQ(chosen->major, 17);
}

TEST(ChoosePgDumpTest, NeverOlderThanSourceAndNeedsRestore) {
  std::vector<PgDumpCandidate> all = {Candidate(14, "PATH"), Candidate(16, "PATH", false)};
  EXPECT_FALSE(ChoosePgDump(all, 16, 17));
}

TEST(ChoosePgDumpTest, ExplicitBindirWinsWhenItFits) {
  std::vector<PgDumpCandidate> all = {Candidate(17, "--pg-bindir"), Candidate(16, "PATH")};
  auto chosen = ChoosePgDump(all, 15, 16);
  ASSERT_TRUE(chosen);
  EXPECT_EQ(chosen->origin, "--pg-bindir");
}

void WriteScript(const fs::path& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  ::chmod(path.c_str(), 0755);
}

TEST(FindPgDumpCandidatesTest, ProbesExplicitBindirWithVersionFlag) {
  fs::path dir = fs::temp_directory_path() / ("pgcourier-tools-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  WriteScript(dir / "pg_dump", "echo 'pg_dump (PostgreSQL) 42.1'");
  WriteScript(dir / "pg_restore", "echo 'pg_restore (PostgreSQL) 42.1'");
  std::vector<PgDumpCandidate> found = FindPgDumpCandidates({dir.string()});
  ASSERT_FALSE(found.empty());
  EXPECT_EQ(found[0].origin, "--pg-bindir");
  EXPECT_EQ(found[0].major, 42);
  EXPECT_EQ(found[0].pg_restore, (dir / "pg_restore").string());
  auto chosen = ChoosePgDump(found, 15, 17);
  ASSERT_TRUE(chosen);
  EXPECT_EQ(chosen->major, 42);
  fs::remove_all(dir);
}

TEST(FindPgDumpCandidatesTest, SkipsBinariesThatDoNotRun) {
  fs::path dir = fs::temp_directory_path() / ("pgcourier-broken-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  WriteScript(dir / "pg_dump", "exit 1");
  std::vector<PgDumpCandidate> found = FindPgDumpCandidates({dir.string()});
  for (const auto& c : found) EXPECT_NE(c.bindir, dir.string());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pgcourier
