// What a small table costs the target in round trips: migrate's own
// statements, as the target server logs them, that name one table (a
// statement string of several statements is one round trip). The copy with
// its mark and COMMIT, the index build and the comparison's read-back with
// ANALYZE stay within six. pg_restore's schema statements are counted
// apart.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "pg_cluster.h"
#include "two_servers.h"

namespace pgcourier {
namespace {

using testing::RunCli;

constexpr int kTables = 30;

class RoundTripsTest : public testing::SourceAndTargetTest {};

TEST_F(RoundTripsTest, ASmallTableWithAnIndexCostsTheTargetAtMostSixRoundTrips) {
  testing::SourceAndTargetOptions options;
  options.target.settings = {"log_statement = 'all'", "log_line_prefix = '@@%a@@ '"};
  options.database = "app";
  std::string tables;
  for (int i = 1; i <= kTables; ++i) {
    const std::string name = "small_" + std::to_string(100 + i);
    tables += "CREATE TABLE public." + name + " (id int PRIMARY KEY, v text); INSERT INTO public." +
              name + " SELECT g, md5(g::text) FROM generate_series(1, 20) g;";
  }
  options.database_sql = tables;
  ASSERT_NO_FATAL_FAILURE(StartServers(options));

  ProcessResult moved =
      RunCli({"migrate", "--source", source_->ConnString("app"), "--target",
              target_->ConnString("app"), "--dir", dir_, "--method", "copy", "--jobs", "2"});
  ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;

  // The log's entries, each starting with its prefix; migrate's own ones.
  std::ifstream in(target_->log_path());
  std::stringstream text;
  text << in.rdbuf();
  const std::string log = "\n" + text.str();
  std::map<std::string, std::vector<std::string>> per_table;
  int statements = 0;
  int schema_statements = 0;
  int bare_commits = 0;  // name no table: an index build's, and the run's own
  for (size_t at = log.find("\n@@"); at != std::string::npos;) {
    size_t next = log.find("\n@@", at + 1);
    const std::string entry = log.substr(at + 1, next == std::string::npos ? next : next - at - 1);
    at = next;
    if (entry.rfind("@@pgcourier@@ ", 0) != 0) continue;
    if (entry.find("statement: ") == std::string::npos) continue;
    ++statements;
    // The schema's statements (pg_restore's entries, each opening with its
    // "-- Name: ..." comment, sent in chunks after a savepoint) are
    // counted apart.
    if (entry.find("statement: -- Name: ") != std::string::npos ||
        entry.find("statement: SAVEPOINT pgcourier_restore") != std::string::npos) {
      ++schema_statements;
      continue;
    }
    static const std::regex kName("small_1[0-9][0-9]\\b");
    if (entry.find("statement: COMMIT") != std::string::npos &&
        entry.find(";") == std::string::npos) {
      ++bare_commits;
      continue;
    }
    std::set<std::string> named;
    for (std::sregex_iterator m(entry.begin(), entry.end(), kName), end; m != end; ++m) {
      named.insert(m->str());
    }
    for (const auto& n : named) per_table[n].push_back(entry.substr(0, 300));
  }
  ASSERT_EQ(per_table.size(), static_cast<size_t>(kTables)) << "statements: " << statements;
  // CREATE TABLE, and the primary key in the schema trial's database.
  EXPECT_LE(schema_statements, 2 * kTables + 5) << "statements: " << statements;
  for (const auto& [table, round_trips] : per_table) {
    std::string said;
    for (const auto& r : round_trips) said += "\n  " + r;
    // Five that name it, and its index build's COMMIT.
    EXPECT_LE(round_trips.size(), 5u) << table << ":" << said;
  }
  EXPECT_LE(bare_commits, kTables + 10) << "statements: " << statements;
}

}  // namespace
}  // namespace pgcourier
