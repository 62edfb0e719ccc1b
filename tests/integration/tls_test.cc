// TLS through the real binary, against servers whose certificates a test CA
// signed (for localhost and 127.0.0.1): every sslmode behaves as libpq
// defines it on both sides, verification failures say what to fix, `check`
// reports whether each session is encrypted and with which TLS version, and
// pg_dump, pg_restore and the subscription connect with the same settings.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.h"
#include "pg_cluster.h"
#include "two_servers.h"
#include "util/process.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using testing::RunCli;

// No ~/.postgresql/root.crt or PGSSL* of the machine running the tests.
testing::CliOptions WithoutClientTlsFiles() {
  testing::CliOptions options;
  options.env["HOME"] = "/nonexistent";
  options.unset_env = {"PGSSLMODE", "PGSSLROOTCERT", "PGCOURIER_SOURCE", "PGCOURIER_TARGET"};
  return options;
}

// The check item with `code` in a pgcourier.check/1 document.
nlohmann::json Item(const nlohmann::json& report, const std::string& code) {
  for (const auto& item : report["checks"]) {
    if (item["code"] == code) return item;
  }
  return {};
}

class TlsTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.logical_source = true;
    options.source.ssl_ca_signed = true;
    // One user the server lets in over SSL only.
    options.source.hba_lines = {"hostnossl all sslonly 127.0.0.1/32 reject"};
    options.target.ssl_ca_signed = true;  // its own CA
    options.target.settings = {"wal_level = logical"};
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
    ASSERT_FALSE(source_->ssl_ca_path().empty());
    ASSERT_NE(source_->ssl_ca_path(), target_->ssl_ca_path());
    Result<std::string> built = source_->Sql(R"sql(
      CREATE ROLE sslonly LOGIN SUPERUSER;
      CREATE DATABASE shop;
      \c shop
      CREATE TABLE public.items (id int PRIMARY KEY, label text);
      INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 500) g;
    )sql");
    ASSERT_TRUE(built.ok()) << built.status().ToString();
  }

  static std::string WithTls(const PgCluster& cluster, const std::string& db,
                             const std::string& mode, const std::string& root_cert) {
    std::string conninfo = cluster.ConnString(db) + " sslmode=" + mode;
    if (!root_cert.empty()) conninfo += " sslrootcert=" + root_cert;
    return conninfo;
  }
};

TEST_F(TlsTest, EverySslModeOnBothSidesAndCheckReportsIt) {
  struct Mode {
    std::string name;
    bool encrypted;  // against a server that takes both kinds of session
  };
  // allow tries without SSL first; prefer and the stricter modes with it.
  const std::vector<Mode> modes = {{"disable", false}, {"allow", false},    {"prefer", true},
                                   {"require", true},  {"verify-ca", true}, {"verify-full", true}};
  for (const auto& mode : modes) {
    SCOPED_TRACE("sslmode=" + mode.name);
    const bool verify = mode.name.rfind("verify", 0) == 0;
    ProcessResult r = RunCli(
        {"check", "--json", "--source",
         WithTls(*source_, "shop", mode.name, verify ? source_->ssl_ca_path() : ""), "--target",
         WithTls(*target_, "postgres", mode.name, verify ? target_->ssl_ca_path() : "")},
        WithoutClientTlsFiles());
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    nlohmann::json report = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(report.is_discarded()) << r.out << r.err;
    for (const char* side : {"source", "target"}) {
      SCOPED_TRACE(side);
      EXPECT_EQ(report[side]["encrypted"], mode.encrypted);
      nlohmann::json item = Item(report, std::string(side) + ".encryption");
      ASSERT_FALSE(item.is_null()) << report.dump(2);
      EXPECT_EQ(item["status"], "pass");
      if (mode.encrypted) {
        // The harness's OpenSSL negotiates TLS 1.3.
        EXPECT_EQ(report[side]["tls_version"], "TLSv1.3");
        EXPECT_EQ(item["detail"], "encrypted (TLSv1.3)");
      } else {
        EXPECT_TRUE(report[side]["tls_version"].is_null());
        EXPECT_EQ(item["detail"], "not encrypted (local: 127.0.0.1)");
      }
    }
  }
  // The text form says it in the server lines too.
  ProcessResult text = RunCli({"check", "--source", WithTls(*source_, "shop", "require", ""),
                               "--target", WithTls(*target_, "postgres", "disable", "")},
                              WithoutClientTlsFiles());
  EXPECT_EQ(text.exit_code, 0) << text.out << text.err;
  EXPECT_NE(text.out.find("encrypted (TLSv1.3)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("not encrypted (local: 127.0.0.1)"), std::string::npos) << text.out;
}

TEST_F(TlsTest, VerificationFailuresSayWhatToFix) {
  struct Failure {
    std::string name;
    std::string source;
    std::vector<std::string> message;
    std::vector<std::string> hint;
  };
  const std::vector<Failure> failures = {
      {"verify-ca with another CA",
       WithTls(*source_, "shop", "verify-ca", target_->ssl_ca_path()),
       {"certificate", "not signed by"},
       {"sslrootcert"}},
      {"verify-full with another CA",
       WithTls(*source_, "shop", "verify-full", target_->ssl_ca_path()),
       {"certificate", "not signed by"},
       {"sslrootcert"}},
      {"verify-full with a host name the certificate does not name",
       fmt::format("host=db.wrong.example hostaddr=127.0.0.1 port={} user=postgres dbname=shop "
                   "sslmode=verify-full sslrootcert={}",
                   source_->port(), source_->ssl_ca_path()),
       {"does not match host name", "db.wrong.example"},
       {"host name", "verify-ca"}},
      {"verify-ca with no CA file",
       WithTls(*source_, "shop", "verify-ca", source_->base_dir() + "/missing.crt"),
       {"missing.crt"},
       {"sslrootcert"}},
      {"a hostssl-only user with sslmode=disable",
       fmt::format("host=127.0.0.1 port={} user=sslonly dbname=shop sslmode=disable",
                   source_->port()),
       {"no encryption"},
       {"sslmode=require"}},
  };
  for (const auto& f : failures) {
    for (const char* command : {"check", "migrate"}) {
      SCOPED_TRACE(f.name + std::string(" (") + command + ")");
      std::vector<std::string> args = {command, "--source", f.source, "--target",
                                       WithTls(*target_, "postgres", "require", "")};
      if (std::string(command) == "migrate") {
        args.insert(args.end(), {"--dir", source_->base_dir() + "/work", "--quiet"});
      }
      ProcessResult r = RunCli(args, WithoutClientTlsFiles());
      EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
      for (const auto& word : f.message) {
        EXPECT_NE(r.out.find(word), std::string::npos) << word << " in\n" << r.out << r.err;
      }
      // The hint is the line under the failure.
      size_t failure = r.out.find("fail  source.connect");
      ASSERT_NE(failure, std::string::npos) << r.out << r.err;
      size_t hint = r.out.find("-> ", failure);
      ASSERT_NE(hint, std::string::npos) << r.out;
      std::string hint_line = r.out.substr(hint, r.out.find('\n', hint) - hint);
      for (const auto& word : f.hint) {
        EXPECT_NE(hint_line.find(word), std::string::npos) << word << " in " << hint_line;
      }
    }
  }
  // The same user over SSL is let in.
  ProcessResult ok =
      RunCli({"check", "--source",
              fmt::format("host=127.0.0.1 port={} user=sslonly dbname=shop sslmode=require",
                          source_->port()),
              "--target", WithTls(*target_, "postgres", "require", "")},
             WithoutClientTlsFiles());
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_database WHERE datname = 'shop'"), "0");
}

// pg_dump, pg_restore, pgcourier's sessions and the target's subscription
// all connect with verify-full: the migration moves everything, then cutover.
TEST_F(TlsTest, MigrationAndReplicationOverVerifiedTls) {
  // No client certificate is named: libpq's defaults for it (paths in the
  // home of pgcourier's OS user, which the target server may not read) stay
  // out of the subscription.
  const std::string source = WithTls(*source_, "shop", "verify-full", source_->ssl_ca_path());
  const std::string target = WithTls(*target_, "postgres", "verify-full", target_->ssl_ca_path());
  const std::string dir = source_->base_dir() + "/work";
  ProcessResult migrated = RunCli({"migrate", "--source", source, "--target", target, "--method",
                                   "replication", "--dir", dir, "--jobs", "2", "--quiet"},
                                  WithoutClientTlsFiles());
  ASSERT_EQ(migrated.exit_code, 0) << migrated.out << migrated.err;
  // The subscription's own session is encrypted and verified.
  Result<std::string> conninfo = target_->Sql("SELECT subconninfo FROM pg_subscription", "shop");
  ASSERT_TRUE(conninfo.ok()) << conninfo.status().ToString();
  EXPECT_NE(conninfo->find("sslmode='verify-full'"), std::string::npos) << *conninfo;
  EXPECT_NE(conninfo->find(source_->ssl_ca_path()), std::string::npos) << *conninfo;
  // The apply worker connects shortly after the subscription is made.
  std::string walsender;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
       walsender.empty() && std::chrono::steady_clock::now() < deadline;) {
    Result<std::string> seen = source_->Sql(
        "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
        "WHERE a.backend_type = 'walsender'");
    ASSERT_TRUE(seen.ok()) << seen.status().ToString();
    walsender = *seen;
    if (walsender.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(walsender, "t|TLSv1.3");
  ASSERT_TRUE(source_->Sql("INSERT INTO public.items VALUES (1000, 'while syncing')", "shop").ok());
  ProcessResult cut = RunCli({"cutover", "--dir", dir, "--source", source, "--target", target,
                              "--timeout", "60", "--quiet"},
                             WithoutClientTlsFiles());
  EXPECT_EQ(cut.exit_code, 0) << cut.out << cut.err;
  EXPECT_EQ(*target_->Sql("SELECT count(*), max(label) FROM public.items", "shop"),
            "501|while syncing");
  ProcessResult verified =
      RunCli({"verify", "--source", source, "--target",
              WithTls(*target_, "shop", "verify-full", target_->ssl_ca_path())},
             WithoutClientTlsFiles());
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
}

}  // namespace
}  // namespace pgcourier
