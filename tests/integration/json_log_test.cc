// `--log-format json`: every line pgcourier writes on standard error is one
// JSON object with the documented fields (docs/logs.md), the library's debug
// lines included; a migration's events name its phases and tables; a
// failure is an error line with its hint; no password reaches any line.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "two_servers.h"

namespace pgcourier {
namespace {

using testing::RunCli;

constexpr const char* kSourceSecret = "Json-Log-Secret-7";
constexpr const char* kWrongSecret = "Wrong-Secret-3";

// The lines of `err`, each parsed; a line that is no JSON object with the
// documented fields fails the test, quoted.
std::vector<nlohmann::json> JsonLines(const std::string& err) {
  static const std::regex kTime(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  static const std::set<std::string> kLevels = {"debug", "info", "warn", "error"};
  std::vector<nlohmann::json> lines;
  std::istringstream in(err);
  for (std::string text; std::getline(in, text);) {
    nlohmann::json line = nlohmann::json::parse(text, nullptr, false);
    if (line.is_discarded() || !line.is_object()) {
      ADD_FAILURE() << "not a JSON object on stderr: " << text;
      continue;
    }
    for (const char* key :
         {"time", "level", "command", "database", "phase", "object", "message", "hint"}) {
      EXPECT_TRUE(line.contains(key)) << key << " missing: " << text;
    }
    EXPECT_TRUE(line["time"].is_string() &&
                std::regex_match(line["time"].get<std::string>(), kTime))
        << text;
    EXPECT_TRUE(line["level"].is_string() && kLevels.count(line["level"].get<std::string>()) == 1)
        << text;
    EXPECT_TRUE(line["message"].is_string()) << text;
    lines.push_back(std::move(line));
  }
  EXPECT_TRUE(err.empty() || err.back() == '\n') << "a line cut short: " << err;
  return lines;
}

std::set<std::string> Values(const std::vector<nlohmann::json>& lines, const char* key) {
  std::set<std::string> out;
  for (const auto& line : lines) {
    if (line[key].is_string()) out.insert(line[key].get<std::string>());
  }
  return out;
}

class JsonLogTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.source_role = {"mover", kSourceSecret, "SUPERUSER"};
    options.database = "shop";
    options.database_sql = R"sql(
      CREATE TABLE public.items (id int PRIMARY KEY, name text);
      INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 50) g;
      CREATE TABLE public.orders (id int PRIMARY KEY, item int REFERENCES public.items);
      INSERT INTO public.orders SELECT g, g % 50 + 1 FROM generate_series(1, 100) g;
    )sql";
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }
  std::string SourceUri() const {
    return fmt::format("postgresql://mover:{}@127.0.0.1:{}/shop", kSourceSecret, source_->port());
  }
};

TEST_F(JsonLogTest, MigrateWritesOneObjectALine) {
  // --log-level before the command, --log-format after its name: both work.
  ProcessResult r =
      RunCli({"--log-level", "debug", "migrate", "--log-format", "json", "--method", "copy",
              "--source", SourceUri(), "--target", target_->ConnString(), "--dir", dir_});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::vector<nlohmann::json> lines = JsonLines(r.err);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(Values(lines, "command"), std::set<std::string>{"migrate"});
  const std::set<std::string> phases = Values(lines, "phase");
  for (const char* phase :
       {"check", "snapshot", "create", "pre-data", "data", "post-data", "verify", "done"}) {
    EXPECT_EQ(phases.count(phase), 1u) << "no event of the phase " << phase << ":\n" << r.err;
  }
  const std::set<std::string> objects = Values(lines, "object");
  EXPECT_EQ(objects.count("public.items"), 1u) << r.err;
  EXPECT_EQ(objects.count("public.orders"), 1u) << r.err;
  EXPECT_EQ(objects.count("public.items_pkey"), 1u) << r.err;
  EXPECT_EQ(Values(lines, "database").count("shop"), 1u) << r.err;
  // The library's own diagnostics come through the same form.
  EXPECT_EQ(Values(lines, "level").count("debug"), 1u) << r.err;
  bool figures = false;
  for (const auto& line : lines) {
    if (line.contains("total"))
      figures = figures || (line["done"].is_number() && line["total"] > 0);
  }
  EXPECT_TRUE(figures) << "no line with the bytes done of the total:\n" << r.err;
  EXPECT_EQ(r.err.find(kSourceSecret), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find(kSourceSecret), std::string::npos) << r.out;
}

TEST_F(JsonLogTest, FailuresAreErrorLinesWithTheirHint) {
  // A target that refuses the password: the checks block the move.
  const std::string refusing =
      fmt::format("postgresql://mover:{}@127.0.0.1:{}/postgres", kWrongSecret, source_->port());
  ProcessResult r = RunCli({"--log-format", "json", "migrate", "--source", SourceUri(), "--target",
                            refusing, "--dir", dir_, "--connect-timeout", "5"});
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  std::vector<nlohmann::json> lines = JsonLines(r.err);
  bool error_with_hint = false;
  for (const auto& line : lines) {
    if (line["level"] == "error" && line["hint"].is_string() &&
        !line["hint"].get<std::string>().empty()) {
      error_with_hint = true;
    }
  }
  EXPECT_TRUE(error_with_hint) << r.err;

  // Bad arguments, one of them a connection string with its password where
  // none is expected: said as one error line, the password masked.
  ProcessResult usage = RunCli({"--log-format=json", "migrate", "--source", SourceUri(),
                                fmt::format("postgresql://mover:{}@elsewhere/db", kWrongSecret)});
  EXPECT_EQ(usage.exit_code, 2) << usage.out << usage.err;
  std::vector<nlohmann::json> said = JsonLines(usage.err);
  ASSERT_EQ(said.size(), 1u) << usage.err;
  EXPECT_EQ(said[0]["level"], "error");
  EXPECT_NE(said[0]["message"].get<std::string>().find("postgresql://mover:"), std::string::npos)
      << "the unexpected argument is quoted: " << usage.err;
  EXPECT_TRUE(said[0]["hint"].is_string()) << usage.err;

  for (const std::string& secret : {std::string(kSourceSecret), std::string(kWrongSecret)}) {
    EXPECT_EQ(r.err.find(secret), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find(secret), std::string::npos) << r.out;
    EXPECT_EQ(usage.err.find(secret), std::string::npos) << usage.err;
  }
}

}  // namespace
}  // namespace pgcourier
