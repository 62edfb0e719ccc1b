// A hostile source: schemas, tables, columns, indexes, constraints,
// sequences, functions and roles named like SQL injections, with quotes,
// backslashes, newlines, dollar quotes, non-ASCII and 63 bytes, rows holding
// such strings, and comments and function bodies carrying psql meta-commands
// (\! touch FILE). `migrate --roles --preserve-owners` and `verify` through
// the real binary move all of it exactly, no meta-command ever runs (no file
// appears), and the only programs pgcourier starts are pg_dump and
// pg_restore (never psql).
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.h"
#include "pg/connection.h"
#include "pg/quote.h"
#include "pg_cluster.h"
#include "two_servers.h"
#include "util/process.h"
#include "watch_helpers.h"

namespace pgcourier {
namespace {

namespace fs = std::filesystem;
using testing::PgCluster;
using testing::ReadBytes;

// The programs started by a given process, seen by polling /proc.
class ChildWatch {
 public:
  ChildWatch() : thread_([this] { Loop(); }) {}
  ~ChildWatch() {
    stop_ = true;
    thread_.join();
  }
  ChildWatch(const ChildWatch&) = delete;
  ChildWatch& operator=(const ChildWatch&) = delete;
  void Watch(pid_t parent) { parent_ = parent; }
  std::set<std::string> seen() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }

 private:
  void Loop() {
    while (!stop_) {
      const pid_t parent = parent_;
      std::error_code ec;
      for (fs::directory_iterator it("/proc", ec), end; parent != 0 && !ec && it != end;
           it.increment(ec)) {
        const std::string name = it->path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        const std::string stat = ReadBytes(it->path() / "stat");
        size_t close = stat.rfind(')');
        if (close == std::string::npos || close + 4 >= stat.size()) continue;
        if (std::atol(stat.c_str() + close + 4) != parent) continue;
        std::string comm = ReadBytes(it->path() / "comm");
        while (!comm.empty() && comm.back() == '\n') comm.pop_back();
        // A child that ended between the two reads has no name left to see.
        if (comm.empty()) continue;
        // A child between fork and exec still runs the parent's program:
        // what it becomes is seen a moment later.
        std::string own = ReadBytes("/proc/" + std::to_string(parent) + "/comm");
        while (!own.empty() && own.back() == '\n') own.pop_back();
        if (comm == own) continue;
        std::lock_guard<std::mutex> lock(mutex_);
        seen_.insert(comm);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<pid_t> parent_{0};
  mutable std::mutex mutex_;
  std::set<std::string> seen_;
  std::thread thread_;
};

std::unique_ptr<Connection> Connect(const PgCluster& cluster, const std::string& db) {
  Result<std::unique_ptr<Connection>> conn =
      Connection::Connect(*ConnInfo::Parse(cluster.ConnString(db)), {});
  EXPECT_TRUE(conn.ok()) << conn.status().ToString();
  return conn.ok() ? std::move(*conn) : nullptr;
}

// One text value from a query, through the library (no psql anywhere near
// the hostile strings).
std::string Value(const PgCluster& cluster, const std::string& db, const std::string& sql) {
  std::unique_ptr<Connection> conn = Connect(cluster, db);
  if (!conn) return "no connection";
  Result<QueryResult> result = conn->Exec(sql);
  if (!result.ok()) return "error: " + result.status().ToString();
  return result->rows() == 1 && !result->IsNull(0, 0) ? result->GetString(0, 0) : "(none)";
}

// Everything the test compares, each value as a quoted literal so newlines
// cannot blur the boundaries.
const char* const kInventory = R"sql(
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT format('schema %L owner %L comment %L', nspname, pg_catalog.pg_get_userbyid(nspowner),
                pg_catalog.obj_description(oid, 'pg_namespace')) AS line
    FROM pg_catalog.pg_namespace
   WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'
  UNION ALL
  SELECT format('relation %L.%L kind %s owner %L comment %L', n.nspname, c.relname, c.relkind,
                pg_catalog.pg_get_userbyid(c.relowner), pg_catalog.obj_description(c.oid, 'pg_class'))
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT format('column %L.%L.%L %s default %L', n.nspname, c.relname, a.attname,
                pg_catalog.format_type(a.atttypid, a.atttypmod),
                pg_catalog.pg_get_expr(d.adbin, d.adrelid))
    FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v')
     AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT format('constraint %L on %L.%L: %s', co.conname, n.nspname, c.relname,
                pg_catalog.pg_get_constraintdef(co.oid))
    FROM pg_catalog.pg_constraint co JOIN pg_catalog.pg_class c ON c.oid = co.conrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT format('index %s', pg_catalog.pg_get_indexdef(i.indexrelid))
    FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT format('function %L.%L body %L owner %L comment %L', n.nspname, p.proname, p.prosrc,
                pg_catalog.pg_get_userbyid(p.proowner), pg_catalog.obj_description(p.oid, 'pg_proc'))
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT format('view %L.%L: %s', schemaname, viewname, definition) FROM pg_catalog.pg_views
   WHERE schemaname NOT LIKE 'pg\_%' AND schemaname <> 'information_schema'
  UNION ALL
  SELECT format('sequence %L.%L last %s', schemaname, sequencename, last_value)
    FROM pg_catalog.pg_sequences
) inventory
)sql";

class HostileNamesTest : public testing::SourceAndTargetTest {
 protected:
  void SetUp() override {
    testing::SourceAndTargetOptions options;
    options.database = "shop";
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
    markers_ = {source_->base_dir() + "/pwned-comment", source_->base_dir() + "/pwned-function",
                source_->base_dir() + "/pwned-name", source_->base_dir() + "/pwned-data",
                source_->base_dir() + "/pwned-view"};
  }

  std::vector<std::string> markers_;
};

TEST_F(HostileNamesTest, EverythingMovesExactlyAndNothingRuns) {
  const std::string touch = "\n\\! touch ";
  std::string table_of_tables(21 * 3, ' ');  // 21 three-byte characters: 63 bytes
  table_of_tables.clear();
  for (int i = 0; i < 21; ++i) table_of_tables += "表";
  const std::vector<std::string> names = {
      "\"; DROP TABLE x; --",
      "a\"b",
      "back\\slash",
      "new\nline",
      "$$",
      "ünï©ødé ✓",
      std::string(63, 'L'),  // NAMEDATALEN - 1
      table_of_tables,
      touch + markers_[2] + "\n",
      "Mixed Case; SELECT 1",
  };
  ASSERT_EQ(names[6].size(), 63u);
  ASSERT_EQ(names[7].size(), 63u);

  std::unique_ptr<Connection> conn = Connect(*source_, "shop");
  ASSERT_NE(conn, nullptr);
  auto run = [&conn](const std::string& sql) {
    Status s = conn->Run(sql);
    ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << sql;
  };
  // Names longer than 63 bytes are cut by the server (with a notice); the
  // prefixes keep names distinct within a schema.
  auto name = [](const std::string& prefix, const std::string& n) {
    return QuoteIdent(prefix + n);
  };
  int id = 0;
  for (const auto& n : names) {
    ++id;
    const std::string schema = QuoteIdent(n);
    const std::string table = schema + "." + QuoteIdent(n);
    const std::string role = name("r", n);
    run("CREATE ROLE " + role + " NOLOGIN");
    run("CREATE SCHEMA " + schema + " AUTHORIZATION " + role);
    run("CREATE SEQUENCE " + schema + "." + name("q", n) + " START 100");
    run(fmt::format(
        "CREATE TABLE {t} ({c} int CONSTRAINT {pk} PRIMARY KEY, {v} text NOT NULL DEFAULT {lit} "
        "CONSTRAINT {ck} CHECK ({v} <> ''), {n} bigint DEFAULT pg_catalog.nextval({seq}))",
        fmt::arg("t", table), fmt::arg("c", QuoteIdent(n)), fmt::arg("pk", name("k", n)),
        fmt::arg("v", name("v", n)), fmt::arg("lit", QuoteLiteral(n)), fmt::arg("ck", name("c", n)),
        fmt::arg("n", name("n", n)), fmt::arg("seq", QuoteLiteral(schema + "." + name("q", n)))));
    run("CREATE UNIQUE INDEX " + name("i", n) + " ON " + table + " (" + name("v", n) + ")");
    run("ALTER TABLE " + table + " OWNER TO " + role);
    run("ALTER SEQUENCE " + schema + "." + name("q", n) + " OWNER TO " + role);
    run("COMMENT ON TABLE " + table + " IS " + QuoteLiteral(touch + markers_[0] + "\n" + n));
    run("COMMENT ON SCHEMA " + schema + " IS " + QuoteLiteral(n + touch + markers_[0]));
    run("CREATE FUNCTION " + schema + "." + name("f", n) +
        "() RETURNS text LANGUAGE sql AS $body$ SELECT " + QuoteLiteral(n) + " /*" + touch +
        markers_[1] + "\n*/ $body$");
    for (size_t row = 0; row < names.size(); ++row) {
      run(fmt::format("INSERT INTO {} ({}, {}) VALUES ({}, {})", table, QuoteIdent(n), name("v", n),
                      row + 1, QuoteLiteral(names[row] + " " + std::to_string(id))));
    }
  }
  run("CREATE TABLE public.strings (id int PRIMARY KEY, s text, b bytea)");
  std::vector<std::string> values = names;
  values.insert(values.end(),
                {"\\.", "\\.\n", "\n\\.\n", "\r\n", "\t", "'", "''", "\\", "\\\\N", "\\N", "NULL",
                 touch + markers_[3], "$body$", "E'\\n'", std::string(100000, 'x')});
  for (size_t i = 0; i < values.size(); ++i) {
    run(fmt::format("INSERT INTO public.strings VALUES ({}, {}, pg_catalog.convert_to({}, 'UTF8'))",
                    i + 1, QuoteLiteral(values[i]), QuoteLiteral(values[i])));
  }
  run("INSERT INTO public.strings VALUES (0, NULL, NULL)");
  run("CREATE VIEW public." + QuoteIdent("v" + touch + markers_[4]) + " AS SELECT " +
      QuoteLiteral(touch + markers_[4]) + "::text AS " + QuoteIdent(touch + markers_[4]));
  // Moved by pgcourier itself (pg_dump writes database comments only with
  // --create); it must not run either.
  run("COMMENT ON DATABASE shop IS " + QuoteLiteral(touch + markers_[0]));
  conn.reset();
  for (const auto& marker : markers_) ASSERT_FALSE(fs::exists(marker)) << marker;

  const std::string dir = source_->base_dir() + "/work";
  ChildWatch watch;
  testing::CliOptions options;
  options.on_start = [&watch](pid_t pid) { watch.Watch(pid); };
  Result<ProcessResult> migrated =
      testing::TryRunCli({"migrate", "--source", source_->ConnString("shop"), "--target",
                          target_->ConnString("postgres"), "--roles", "--preserve-owners",
                          "--method", "copy", "--dir", dir, "--jobs", "2", "--quiet"},
                         options);
  watch.Watch(0);
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  EXPECT_EQ(migrated->exit_code, 0) << migrated->out << migrated->err;
  std::set<std::string> children = watch.seen();
  EXPECT_EQ(children, (std::set<std::string>{"pg_dump", "pg_restore"}))
      << "pgcourier runs pg_dump and pg_restore, nothing else";

  Result<ProcessResult> verified =
      testing::TryRunCli({"verify", "--source", source_->ConnString("shop"), "--target",
                          target_->ConnString("shop"), "--all"},
                         options);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->exit_code, 0) << verified->out << verified->err;

  for (const auto& marker : markers_) EXPECT_FALSE(fs::exists(marker)) << marker;

  // Independently of verify: the same objects, names, owners, comments,
  // bodies and defaults, and the same rows, byte for byte.
  const std::string source_inventory = Value(*source_, "shop", kInventory);
  EXPECT_NE(source_inventory.find("pwned-function"), std::string::npos) << source_inventory;
  EXPECT_EQ(Value(*target_, "shop", kInventory), source_inventory);
  const std::string rows =
      "SELECT pg_catalog.md5(string_agg(pg_catalog.format('%L %L %L', id, s, b), ',' ORDER BY "
      "id)) FROM public.strings";
  EXPECT_EQ(Value(*target_, "shop", rows), Value(*source_, "shop", rows));
  for (const auto& n : names) {
    const std::string table = QuoteIdent(n) + "." + QuoteIdent(n);
    const std::string sql =
        "SELECT pg_catalog.md5(string_agg(t::text, ',' ORDER BY 1)) FROM " + table + " t";
    EXPECT_EQ(Value(*target_, "shop", sql), Value(*source_, "shop", sql)) << n;
  }
  const std::string roles =
      "SELECT string_agg(pg_catalog.quote_ident(rolname), ',' ORDER BY rolname) FROM "
      "pg_catalog.pg_roles WHERE rolname !~ '^pg_' AND rolname <> 'postgres'";
  EXPECT_EQ(Value(*target_, "postgres", roles), Value(*source_, "postgres", roles));
}

}  // namespace
}  // namespace pgcourier
