// What small tables cost each server in round trips: migrate's own
// statements, as the servers log them, that name the tables (a statement
// string of several statements is one entry; so is a statement sent with
// parameters). Small tables go several to a transaction: on the target a
// batch is one string with BEGIN and every table's TRUNCATE and COPY (on
// the wire one round trip per table, the end of one COPY and the start of
// the next, which the log cannot show), one with every index build and
// constraint, and one with every mark, the COMMIT, one ANALYZE and every
// table's read-back; on the source one string with every table's COPY.
// pg_restore's schema statements are counted apart.
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

constexpr int kTables = 60;

// One server's log, read after the run.
struct LoggedStatements {
  std::map<std::string, std::vector<std::string>> per_table;  // the entries naming each table
  int statements = 0;
  int schema_statements = 0;  // pg_restore's, through pgcourier's session
  int bare_commits = 0;       // name no table
  int naming_tables = 0;      // entries naming at least one table
  int naming_several = 0;     // entries naming more than one
};

LoggedStatements ReadLog(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string log = "\n" + text.str();
  LoggedStatements out;
  // The log's entries, each starting with its prefix; migrate's own ones.
  for (size_t at = log.find("\n@@"); at != std::string::npos;) {
    size_t next = log.find("\n@@", at + 1);
    const std::string entry = log.substr(at + 1, next == std::string::npos ? next : next - at - 1);
    at = next;
    if (entry.rfind("@@pgcourier@@ ", 0) != 0) continue;
    // A simple query, or one with parameters (extended protocol).
    size_t sql = entry.find("statement: ");
    if (sql == std::string::npos) sql = entry.find("execute <unnamed>: ");
    if (sql == std::string::npos) continue;
    ++out.statements;
    // The schema's statements (pg_restore's entries, each opening with its
    // "-- Name: ..." comment, sent in chunks after a savepoint) are
    // counted apart.
    if (entry.find("statement: -- Name: ") != std::string::npos ||
        entry.find("statement: SAVEPOINT pgcourier_restore") != std::string::npos) {
      ++out.schema_statements;
      continue;
    }
    if (entry.find("statement: COMMIT") != std::string::npos &&
        entry.find(";") == std::string::npos) {
      ++out.bare_commits;
      continue;
    }
    static const std::regex kName("small_1[0-9][0-9]\\b");
    std::set<std::string> named;
    for (std::sregex_iterator m(entry.begin(), entry.end(), kName), end; m != end; ++m) {
      named.insert(m->str());
    }
    for (const auto& n : named) out.per_table[n].push_back(entry.substr(0, 300));
    if (!named.empty()) ++out.naming_tables;
    if (named.size() > 1) ++out.naming_several;
  }
  return out;
}

class RoundTripsTest : public testing::SourceAndTargetTest {};

TEST_F(RoundTripsTest, SmallTablesWithAnIndexShareTheirStatementsWithTheirBatch) {
  testing::SourceAndTargetOptions options;
  const std::vector<std::string> logged = {"log_statement = 'all'", "log_line_prefix = '@@%a@@ '"};
  options.source.settings = logged;
  options.target.settings = logged;
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

  const LoggedStatements target = ReadLog(target_->log_path());
  ASSERT_EQ(target.per_table.size(), static_cast<size_t>(kTables))
      << "statements: " << target.statements;
  // CREATE TABLE, and the primary key in the schema trial's database.
  EXPECT_LE(target.schema_statements, 2 * kTables + 5) << "statements: " << target.statements;
  for (const auto& [table, round_trips] : target.per_table) {
    std::string said;
    for (const auto& r : round_trips) said += "\n  " + r;
    EXPECT_LE(round_trips.size(), 3u) << "target, " << table << ":" << said;
  }
  // With 2 jobs, some eight batches of 7-8 tables: three entries each.
  EXPECT_GT(target.naming_several, 0) << "statements: " << target.statements;
  EXPECT_LE(target.naming_tables, kTables / 2) << "statements: " << target.statements;
  // The run's own (the claim, the progress marks, the finish): none per table.
  EXPECT_LE(target.bare_commits, 5) << "statements: " << target.statements;

  const LoggedStatements source = ReadLog(source_->log_path());
  ASSERT_EQ(source.per_table.size(), static_cast<size_t>(kTables))
      << "statements: " << source.statements;
  for (const auto& [table, round_trips] : source.per_table) {
    std::string said;
    for (const auto& r : round_trips) said += "\n  " + r;
    EXPECT_EQ(round_trips.size(), 1u) << "source, " << table << ":" << said;
  }
  EXPECT_LE(source.naming_tables, kTables / 4) << "statements: " << source.statements;
}

// migrate --verify counts: a batch's tables are counted in one query after
// its COMMIT, and the run says that contents were not compared.
TEST_F(RoundTripsTest, CountsOnlyVerificationCountsEveryTableOfTheBatches) {
  testing::SourceAndTargetOptions options;
  options.database = "app";
  std::string tables;
  for (int i = 1; i <= 12; ++i) {
    const std::string name = "small_" + std::to_string(100 + i);
    tables += "CREATE TABLE public." + name + " (id int PRIMARY KEY, v text); INSERT INTO public." +
              name + " SELECT g, md5(g::text) FROM generate_series(1, " + std::to_string(i) +
              ") g;";
  }
  options.database_sql = tables;
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  ProcessResult moved = RunCli({"migrate", "--source", source_->ConnString("app"), "--target",
                                target_->ConnString("app"), "--dir", dir_, "--method", "copy",
                                "--jobs", "2", "--verify", "counts"});
  ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;
  EXPECT_NE(moved.out.find("row counts only, contents NOT compared"), std::string::npos)
      << moved.out;
  EXPECT_NE(moved.out.find("12 tables"), std::string::npos) << moved.out;
}

}  // namespace
}  // namespace pgcourier
