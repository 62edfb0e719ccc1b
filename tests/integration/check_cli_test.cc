// The `pgcourier check` command as a user runs it: exit statuses, the JSON
// format, and secrets kept out of every output.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "two_servers.h"
#include "util/process.h"

namespace pgcourier {
namespace {

using testing::RunCli;

class CheckCliTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.logical_source = true;
    options.source_role = {"app", "Sup3r-Secret", "SUPERUSER"};
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }
  std::string SourceUri() const {
    return fmt::format("postgresql://app:Sup3r-Secret@127.0.0.1:{}", source_->port());
  }
  std::string TargetUri() const {
    return fmt::format("postgresql://postgres@127.0.0.1:{}", target_->port());
  }
};

TEST_F(CheckCliTest, ReadyExitsZeroAndJsonIsStable) {
  ProcessResult r = RunCli({"check", "--source", SourceUri(), "--target", TargetUri(), "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["format"], "pgcourier.check/1");
  EXPECT_EQ(j["verdict"], "ready");
  EXPECT_EQ(j["summary"]["fail"], 0);
  ASSERT_TRUE(j["checks"].is_array());
  for (const auto& item : j["checks"]) {
    for (const char* key : {"code", "status", "object", "detail", "hint"}) {
      EXPECT_TRUE(item.contains(key)) << item.dump();
    }
  }
  ASSERT_EQ(j["databases"].size(), 1u);
  EXPECT_EQ(j["databases"][0]["name"], "postgres");
  EXPECT_EQ(j["databases"][0]["method"], "replication");
  EXPECT_EQ(r.out.find("Sup3r-Secret"), std::string::npos) << "password in JSON";
  EXPECT_EQ(r.err.find("Sup3r-Secret"), std::string::npos) << "password on stderr";
}

TEST_F(CheckCliTest, BlockedExitsOneWithHints) {
  // The same server twice.
  ProcessResult r = RunCli({"check", "--source", SourceUri(), "--target",
                            fmt::format("host=localhost port={} user=postgres", source_->port())});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("fail  servers.distinct"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("->"), std::string::npos) << "a fix hint is shown: " << r.out;
  EXPECT_NE(r.out.find("BLOCKED"), std::string::npos);
  EXPECT_EQ(r.out.find("Sup3r-Secret"), std::string::npos);
}

TEST_F(CheckCliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunCli({"check", "--target", TargetUri()}).exit_code, 2) << "no source";
  EXPECT_EQ(RunCli({"check", "--source", SourceUri(), "--target", TargetUri(), "--method", "fast"})
                .exit_code,
            2);
  EXPECT_EQ(
      RunCli({"check", "--source", SourceUri(), "--target", TargetUri(), "--jobs", "0"}).exit_code,
      2);
  ProcessResult bad = RunCli(
      {"check", "--source", "host=x password=Sup3r-Secret nosuchkey=1", "--target", TargetUri()});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("nosuchkey"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.err.find("Sup3r-Secret"), std::string::npos) << bad.err;
  EXPECT_EQ(RunCli({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunCli({"check", "--source", SourceUri(), "--target", TargetUri(),
                    "--target-storage-limit", "lots"})
                .exit_code,
            2);
}

TEST_F(CheckCliTest, ConnectionStringsFromEnvironmentAndPgpass) {
  // Password from a .pgpass file, connection strings from the environment:
  // nothing secret on the command line at all.
  std::string home = source_->base_dir() + "/home";
  ASSERT_EQ(std::system(("mkdir -p " + home).c_str()), 0);
  std::string pgpass = home + "/.pgpass";
  FILE* f = std::fopen(pgpass.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fprintf(f, "127.0.0.1:%d:*:app:Sup3r-Secret\n", source_->port());
  std::fclose(f);
  ASSERT_EQ(::chmod(pgpass.c_str(), 0600), 0);
  testing::CliOptions options;
  options.env = {
      {"PGCOURIER_SOURCE", fmt::format("postgresql://app@127.0.0.1:{}", source_->port())},
      {"PGCOURIER_TARGET", TargetUri()},
      {"PGPASSFILE", pgpass}};
  ProcessResult r = RunCli({"check", "--quiet"}, options);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("READY"), std::string::npos) << r.out;

  ProcessResult wrong = RunCli({"check", "--source",
                                fmt::format("postgresql://app:nope@127.0.0.1:{}", source_->port()),
                                "--target", TargetUri()});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.out.find("rejected the password"), std::string::npos) << wrong.out;
}

}  // namespace
}  // namespace pgcourier
