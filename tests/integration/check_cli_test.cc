// The `pgcourier check` command as a user runs it: exit statuses, the JSON
// format, and secrets kept out of every output.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "pg_cluster.h"
#include "util/process.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using testing::PgClusterOptions;
using testing::StartClusterOrFail;

ProcessResult RunCli(const std::vector<std::string>& args,
                     const std::map<std::string, std::string>& env = {}) {
  std::vector<std::string> argv = {testing::PgcourierBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessOptions options;
  options.env = env;
  options.timeout = std::chrono::minutes(2);
  Result<ProcessResult> result = RunProcess(argv, options);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? *result : ProcessResult{};
}

class CheckCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PgClusterOptions source_options;
    source_options.settings = {"wal_level = logical"};
    source_options.hba_lines = {"host all app 127.0.0.1/32 scram-sha-256"};
    source_ = StartClusterOrFail(source_options);
    target_ = StartClusterOrFail({});
    ASSERT_NE(source_, nullptr);
    ASSERT_NE(target_, nullptr);
    ASSERT_TRUE(source_->Sql("CREATE ROLE app LOGIN SUPERUSER PASSWORD 'Sup3r-Secret'").ok());
  }
  std::string SourceUri() const {
    return fmt::format("postgresql://app:Sup3r-Secret@127.0.0.1:{}", source_->port());
  }
  std::string TargetUri() const {
    return fmt::format("postgresql://postgres@127.0.0.1:{}", target_->port());
  }
  std::unique_ptr<PgCluster> source_;
  std::unique_ptr<PgCluster> target_;
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
  ProcessResult r =
      RunCli({"check", "--quiet"},
             {{"PGCOURIER_SOURCE", fmt::format("postgresql://app@127.0.0.1:{}", source_->port())},
              {"PGCOURIER_TARGET", TargetUri()},
              {"PGPASSFILE", pgpass}});
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
