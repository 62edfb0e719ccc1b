// The round trips around the data, counted in the servers' statement logs
// (a query string of several statements is one round trip): what `check`
// sends does not grow with the number of tables (its trial restore sends
// the schema in chunks of entries), the pre-data restore is a few chunks
// in one transaction instead of pg_restore's statement per round trip, and
// the sequences are read and set in one statement each.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
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

// Tables (each with a serial key, so a sequence) of the two databases.
constexpr int kFewTables = 5;
constexpr int kManyTables = 80;

std::string TablesSql(int count) {
  std::string sql;
  for (int i = 1; i <= count; ++i) {
    const std::string name = "t_" + std::to_string(100 + i);
    sql += "CREATE TABLE public." + name + " (id serial PRIMARY KEY, v text); INSERT INTO public." +
           name + " (v) SELECT md5(g::text) FROM generate_series(1, 3) g;";
  }
  return sql;
}

// The statements a server logged after `from` bytes of its log, by the
// application `application` ('@@%a@@ ' prefix), each with its text.
std::vector<std::string> Statements(const testing::PgCluster& server, std::streamoff from,
                                    const std::string& application) {
  std::ifstream in(server.log_path());
  in.seekg(from);
  std::stringstream text;
  text << in.rdbuf();
  const std::string log = "\n" + text.str();
  std::vector<std::string> out;
  const std::string prefix = "@@" + application + "@@ ";
  for (size_t at = log.find("\n@@"); at != std::string::npos;) {
    const size_t next = log.find("\n@@", at + 1);
    const std::string entry = log.substr(at + 1, next == std::string::npos ? next : next - at - 1);
    at = next;
    if (entry.rfind(prefix, 0) != 0) continue;
    const size_t statement = entry.find("statement: ");
    if (statement == std::string::npos) continue;
    out.push_back(entry.substr(statement + 11));
  }
  return out;
}

std::streamoff LogSize(const testing::PgCluster& server) {
  std::ifstream in(server.log_path(), std::ios::ate);
  return in.tellg();
}

int CountStarting(const std::vector<std::string>& statements, const std::string& start) {
  int n = 0;
  for (const auto& s : statements) n += s.rfind(start, 0) == 0 ? 1 : 0;
  return n;
}

class SchemaRoundTripsTest : public testing::SourceAndTargetTest {};

TEST_F(SchemaRoundTripsTest, CheckPreDataAndSequencesDoNotGrowWithTheTables) {
  testing::SourceAndTargetOptions options;
  for (testing::PgClusterOptions* side : {&options.source, &options.target}) {
    side->settings = {"log_statement = 'all'", "log_line_prefix = '@@%a@@ '"};
  }
  options.database = "few";
  options.database_sql = TablesSql(kFewTables);
  ASSERT_NO_FATAL_FAILURE(StartServers(options));
  ASSERT_TRUE(source_->Sql("CREATE DATABASE many").ok());
  Result<std::string> made = source_->Sql(TablesSql(kManyTables), "many");
  ASSERT_TRUE(made.ok()) << made.status().ToString();

  // check of each database: pgcourier's own statements on both servers (its
  // trial restore's included; pg_dump's are its own business).
  std::vector<size_t> sent;
  for (const char* database : {"few", "many"}) {
    const std::streamoff source_from = LogSize(*source_);
    const std::streamoff target_from = LogSize(*target_);
    ProcessResult checked = RunCli({"check", "--source", source_->ConnString(database), "--target",
                                    target_->ConnString(database), "--method", "copy"});
    ASSERT_EQ(checked.exit_code, 0) << checked.out << checked.err;
    ASSERT_NE(checked.out.find("schema.restorable"), std::string::npos) << checked.out;
    sent.push_back(Statements(*source_, source_from, "pgcourier").size() +
                   Statements(*target_, target_from, "pgcourier").size());
  }
  // 75 more tables with their sequences and keys, some 300 entries more for
  // the trial: three chunks more (sent one at a time, 300 statements).
  EXPECT_LE(sent[1], sent[0] + 5) << "check of " << kFewTables << " tables: " << sent[0]
                                  << " statements, of " << kManyTables << ": " << sent[1];

  const std::streamoff source_from = LogSize(*source_);
  const std::streamoff target_from = LogSize(*target_);
  ProcessResult moved = RunCli({"migrate", "--source", source_->ConnString("many"), "--target",
                                target_->ConnString("many"), "--dir", dir_, "--method", "copy",
                                "--jobs", "2", "--no-schema-trial"});
  ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;
  const std::vector<std::string> target = Statements(*target_, target_from, "pgcourier");
  // pre-data: 80 tables and 80 sequences are some 400 entries, in chunks
  // of at most 100, plus the preamble; pg_restore connected sends none.
  const int chunks = CountStarting(target, "SAVEPOINT pgcourier_restore");
  EXPECT_GE(chunks, 3);
  EXPECT_LE(chunks, 7);
  EXPECT_EQ(CountStarting(target, "CREATE TABLE"), 0);
  for (const auto& s : Statements(*target_, target_from, "pg_restore")) {
    EXPECT_EQ(s.find("CREATE TABLE"), std::string::npos) << s.substr(0, 200);
  }
  // The sequences: one statement sets all 80 on the target, one query
  // reads them on the source.
  int setval = 0;
  for (const auto& s : target) setval += s.find("pg_catalog.setval") != std::string::npos ? 1 : 0;
  EXPECT_EQ(setval, 1);
  int read = 0;
  for (const auto& s : Statements(*source_, source_from, "pgcourier")) {
    read += s.find("last_value, is_called FROM") != std::string::npos ? 1 : 0;
  }
  // Once to set them, once for the verification.
  EXPECT_LE(read, 2);
  Result<std::string> value = target_->Sql("SELECT last_value FROM public.t_180_id_seq", "many");
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(*value, "3");

  // A refused entry stops the restore, is named, and leaves nothing of it:
  // a function of the same name already in the (empty) target database.
  const std::string function = "CREATE FUNCTION public.answer() RETURNS int LANGUAGE sql AS ";
  ASSERT_TRUE(source_->Sql(function + "'SELECT 42'", "few").ok());
  ASSERT_TRUE(target_->Sql("CREATE DATABASE few").ok());
  ASSERT_TRUE(target_->Sql(function + "'SELECT 1'", "few").ok());
  ProcessResult refused = RunCli({"migrate", "--source", source_->ConnString("few"), "--target",
                                  target_->ConnString("few"), "--dir", dir_ + "/refused",
                                  "--method", "copy", "--no-schema-trial"});
  EXPECT_NE(refused.exit_code, 0) << refused.out << refused.err;
  const std::string said = refused.out + refused.err;
  EXPECT_NE(said.find("FUNCTION public.answer()"), std::string::npos) << said;
  EXPECT_NE(said.find("already exists"), std::string::npos) << said;
  Result<std::string> tables =
      target_->Sql("SELECT count(*) FROM pg_catalog.pg_class WHERE relname LIKE 't\\_1%'", "few");
  ASSERT_TRUE(tables.ok()) << tables.status().ToString();
  EXPECT_EQ(*tables, "0");
}

// The snapshot a statement imports (SET TRANSACTION SNAPSHOT '...' or
// E'...'), or "".
std::string ImportedSnapshot(const std::string& statement) {
  const std::string set = "SET TRANSACTION SNAPSHOT ";
  const size_t at = statement.find(set);
  if (at == std::string::npos) return "";
  size_t from = at + set.size();
  if (statement.compare(from, 1, "E") == 0) ++from;
  if (statement.compare(from, 1, "'") != 0) return "";
  ++from;
  const size_t end = statement.find('\'', from);
  return end == std::string::npos ? "" : statement.substr(from, end - from);
}

// migrate runs pg_dump once per database: the check's trial restore dumps
// at the snapshot the copy then reads, and pre-data restores that archive.
TEST_F(SchemaRoundTripsTest, MigrateDumpsTheSchemaOnceAtTheCopysSnapshot) {
  testing::SourceAndTargetOptions options;
  options.source.settings = {"log_statement = 'all'", "log_line_prefix = '@@%a@@ '"};
  options.database = "once";
  options.database_sql = TablesSql(kFewTables);
  ASSERT_NO_FATAL_FAILURE(StartServers(options));

  const std::streamoff source_from = LogSize(*source_);
  ProcessResult moved = RunCli({"migrate", "--source", source_->ConnString("once"), "--target",
                                target_->ConnString("once"), "--dir", dir_, "--method", "copy",
                                "--jobs", "2", "--json"});
  ASSERT_EQ(moved.exit_code, 0) << moved.out << moved.err;
  // The trial ran (schema.restorable passed).
  ASSERT_NE(moved.out.find("restores on the target"), std::string::npos) << moved.out;

  // pg_dump begins its transaction once per dump.
  const std::vector<std::string> dumped = Statements(*source_, source_from, "pg_dump");
  EXPECT_EQ(CountStarting(dumped, "SET TRANSACTION ISOLATION LEVEL"), 1)
      << "pg_dump ran more than once";
  std::set<std::string> dump_snapshots;
  for (const auto& s : dumped) {
    if (!ImportedSnapshot(s).empty()) dump_snapshots.insert(ImportedSnapshot(s));
  }
  // pgcourier's copy sessions import the snapshot pg_dump dumped at.
  std::set<std::string> copy_snapshots;
  for (const auto& s : Statements(*source_, source_from, "pgcourier")) {
    if (!ImportedSnapshot(s).empty()) copy_snapshots.insert(ImportedSnapshot(s));
  }
  ASSERT_EQ(dump_snapshots.size(), 1u);
  EXPECT_EQ(copy_snapshots, dump_snapshots);
  // The archive is the work directory's, the trial's copy of it gone.
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/once/schema.dump"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/once/schema.trial.dump"));
  Result<std::string> value = target_->Sql("SELECT last_value FROM public.t_105_id_seq", "once");
  ASSERT_TRUE(value.ok()) << value.status().ToString();
  EXPECT_EQ(*value, "3");
}

}  // namespace
}  // namespace pgcourier
