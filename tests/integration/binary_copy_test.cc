// COPY's binary form, per table: the tables whose column types all have a
// version-stable binary form move in it, the others (enums, extension types,
// reg* types, composites) as text; a migration verifies both kinds, and
// --copy-format text moves every table as text. Rows relayed in binary are
// compared with the target's read back in binary as strictly as text rows
// are: numeric scale, -0, NaN, a changed value, a missing or doubled row.
#include "copy/binary_copy.h"

#include <gtest/gtest.h>

#include <map>

#include "catalog/copy_catalog.h"
#include "copy/progress_marks.h"
#include "copy/table_copy.h"
#include "pg_cluster.h"
#include "two_servers.h"

namespace pgcourier {
namespace {

std::unique_ptr<Connection> ConnectTo(const testing::PgCluster& cluster, const std::string& db) {
  Result<std::unique_ptr<Connection>> conn =
      Connection::Connect(*ConnInfo::Parse(cluster.ConnString(db)), ConnectOptions{});
  EXPECT_TRUE(conn.ok()) << conn.status().ToString();
  return conn.ok() ? std::move(*conn) : nullptr;
}

const TableToCopy* Find(const CopyCatalog& catalog, const std::string& name) {
  for (const auto& t : catalog.tables) {
    if (t.name == name) return &t;
  }
  ADD_FAILURE() << "no table " << name << " in the catalog";
  return nullptr;
}

class BinaryFormTest : public testing::SourceAndTargetTest {};

constexpr const char* kTypes = R"sql(
CREATE EXTENSION citext;
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE public.pair AS (a int, b text);
CREATE DOMAIN public.positive AS integer CHECK (VALUE > 0);
CREATE DOMAIN public.positive_too AS public.positive;
CREATE TABLE public.plain (id int PRIMARY KEY, n numeric, f float8, s text, b bytea,
  ts timestamptz, j jsonb, a int[], r int4range, d public.positive_too, c char(3));
INSERT INTO public.plain SELECT g, g / 7.0, g / 3.0, 'ü' || g, decode(md5(g::text), 'hex'),
  '2024-01-01 00:00+00'::timestamptz + g * interval '1 min', jsonb_build_object('g', g),
  ARRAY[g, NULL, -g], int4range(g, g + 5), g, 'x' FROM generate_series(1, 500) g;
INSERT INTO public.plain VALUES (0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE public.feelings (id int, m public.mood);
INSERT INTO public.feelings SELECT g, 'ok' FROM generate_series(1, 50) g;
CREATE TABLE public.mood_lists (id int, ms public.mood[]);
INSERT INTO public.mood_lists VALUES (1, '{sad,happy}');
CREATE TABLE public.names (id int, e public.citext);
INSERT INTO public.names VALUES (1, 'Ann'), (2, NULL);
CREATE TABLE public.refs (id int, r regclass);
INSERT INTO public.refs VALUES (1, 'public.plain');
CREATE TABLE public.pairs (id int, p public.pair);
INSERT INTO public.pairs VALUES (1, '(1,x)');
CREATE TABLE public.tree (id int, k int[], v numeric) PARTITION BY HASH ((ARRAY[id]));
CREATE TABLE public.tree_0 PARTITION OF public.tree FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE public.tree_1 PARTITION OF public.tree FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE public.tree_2 PARTITION OF public.tree FOR VALUES WITH (MODULUS 3, REMAINDER 2);
INSERT INTO public.tree SELECT g, ARRAY[g, g * 2], g / 4.0 FROM generate_series(1, 300) g;
)sql";

TEST_F(BinaryFormTest, BuiltInTypesMoveInBinaryOthersAsTextAndBothVerify) {
  testing::SourceAndTargetOptions options;
  options.database = "bin";
  options.database_sql = kTypes;
  ASSERT_NO_FATAL_FAILURE(StartServers(options));

  // The choice, per table, from its columns' types.
  auto src = ConnectTo(*source_, "bin");
  ASSERT_TRUE(src);
  Result<CopyCatalog> catalog = ReadCopyCatalog(*src, ObjectFilter(), Deadline::Never());
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  const std::map<std::string, std::string> text = {
      {"feelings", "column m is of type public.mood"},
      {"mood_lists", "column ms is of type public.mood[]"},
      {"names", "column e is of type public.citext"},
      {"refs", "column r is of type regclass"},
      {"pairs", "column p is of type public.pair"},
  };
  for (const auto& t : catalog->tables) {
    auto reason = text.find(t.name);
    if (reason == text.end()) {
      EXPECT_TRUE(t.binary) << t.name << ": " << t.text_reason;
      EXPECT_EQ(t.text_reason, "") << t.name;
    } else {
      EXPECT_FALSE(t.binary) << t.name;
      EXPECT_EQ(t.text_reason, reason->second) << t.name;
    }
  }
  const TableToCopy* tree = Find(*catalog, "tree");
  ASSERT_TRUE(tree != nullptr);
  EXPECT_TRUE(tree->through_root()) << "hash partitioned by array_ops: loaded at its root";
  EXPECT_EQ(tree->partitions.size(), 3U);
  EXPECT_EQ(catalog->tables.size(), 7U);

  // A migration moves and verifies both kinds, the tree's three source
  // COPYs in one binary stream into its root, and says which form each took.
  Result<MigrationOutcome> moved = Migrate(MigrationOptions("bin", Method::kCopy));
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  ASSERT_TRUE(moved->ok());
  ASSERT_EQ(moved->databases.size(), 1U);
  ASSERT_TRUE(moved->databases[0].verification.has_value());
  EXPECT_TRUE(moved->databases[0].verification->ok());
  for (const auto& t : moved->databases[0].verification->tables) {
    EXPECT_FALSE(t.source_checksum.empty()) << t.name << ": compared by its rows' hash";
  }
  ASSERT_EQ(moved->databases[0].tables.size(), 7U);
  for (const auto& t : moved->databases[0].tables) {
    const bool as_text = text.count(t.table.substr(t.table.find('.') + 1)) > 0;
    EXPECT_EQ(t.binary, !as_text) << t.table;
    EXPECT_EQ(std::to_string(t.rows), *source_->Sql("SELECT count(*) FROM " + t.table, "bin"))
        << t.table;
  }
  EXPECT_EQ(*target_->Sql("SELECT sum(hashtext(p::text)) FROM public.plain p", "bin"),
            *source_->Sql("SELECT sum(hashtext(p::text)) FROM public.plain p", "bin"));

  // --copy-format text: every table as text, saying so, into another
  // database of the same target.
  MigrateOptions as_text = MigrationOptions("bin", Method::kCopy);
  as_text.check.target = target_->ConnString("bin_text");
  as_text.work_dir = dir_ + "/text";
  as_text.copy_as_text = true;
  moved = Migrate(as_text);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  ASSERT_TRUE(moved->ok());
  ASSERT_EQ(moved->databases[0].tables.size(), 7U);
  for (const auto& t : moved->databases[0].tables) {
    EXPECT_FALSE(t.binary) << t.table;
    if (text.count(t.table.substr(t.table.find('.') + 1)) == 0) {
      EXPECT_EQ(t.text_reason, "--copy-format text") << t.table;
    }
  }
}

TEST_F(BinaryFormTest, BinaryRowsAreComparedAsStrictlyAsText) {
  ASSERT_NO_FATAL_FAILURE(StartServers());
  const std::string table_sql =
      "CREATE TABLE public.t (id int, n numeric, f float8, s text, a numeric[]);";
  ASSERT_TRUE(source_
                  ->Sql(table_sql +
                        "INSERT INTO public.t VALUES (1, 1.00, '-0', 'a\tb', '{1.0,NaN}'),"
                        " (2, 'NaN', 'NaN', NULL, NULL), (3, 2.50, 1e-300, 'ü', '{}');"
                        "INSERT INTO public.t SELECT g, g / 7.0, g / 3.0, md5(g::text), "
                        "ARRAY[g / 3.0] FROM generate_series(4, 3000) g;")
                  .ok());
  ASSERT_TRUE(target_->Sql(table_sql).ok());
  auto src = ConnectTo(*source_, "postgres");
  auto dst = ConnectTo(*target_, "postgres");
  ASSERT_TRUE(src && dst);
  ASSERT_TRUE(CreateProgressMarks(*dst).ok());
  ASSERT_TRUE(src->Run("BEGIN ISOLATION LEVEL REPEATABLE READ").ok());
  Result<CopyCatalog> catalog = ReadCopyCatalog(*src, ObjectFilter(), Deadline::Never());
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  ASSERT_EQ(catalog->tables.size(), 1U);
  const TableToCopy& t = catalog->tables[0];
  ASSERT_TRUE(t.binary) << t.text_reason;

  // In two slices, whose hashes add up to the whole table's.
  Result<TableCopyStats> first =
      CopyTable(*src, *dst, t, Slice{Slice::Kind::kBlocks, 0, 5}, 2, "copy t first");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Result<TableCopyStats> rest =
      CopyTable(*src, *dst, t, Slice{Slice::Kind::kBlocks, 5, -1}, 2, "copy t rest");
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  RowSetHash relayed = first->hash;
  relayed.Add(rest->hash);
  EXPECT_EQ(relayed.rows(), 3000);
  EXPECT_EQ(first->rows + rest->rows, 3000);
  auto stored = [&]() -> RowSetHash {
    Result<RowSetHash> h = HashTargetRows(*dst, t, src->client_encoding());
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? *h : RowSetHash();
  };
  EXPECT_EQ(stored(), relayed);
  Result<TableCopyStats> whole = CopyTable(*src, *dst, t, std::nullopt, 1, "copy t whole");
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(whole->hash, relayed) << "slices and the whole table hash alike";
  ASSERT_EQ(stored(), relayed);
  EXPECT_EQ(*target_->Sql("SELECT n || ' ' || f FROM public.t WHERE id = 1"), "1.00 -0");

  // The same rows in another physical order.
  ASSERT_TRUE(target_->Sql("UPDATE public.t SET s = s WHERE id % 2 = 0").ok());
  EXPECT_EQ(stored(), relayed);

  // Each planted difference, then undone.
  const std::vector<std::pair<std::string, std::string>> planted = {
      {"UPDATE public.t SET n = 1.0 WHERE id = 1", "UPDATE public.t SET n = 1.00 WHERE id = 1"},
      {"UPDATE public.t SET f = 0 WHERE id = 1", "UPDATE public.t SET f = '-0' WHERE id = 1"},
      {"UPDATE public.t SET f = 'Infinity' WHERE id = 2",
       "UPDATE public.t SET f = 'NaN' WHERE id = 2"},
      {"UPDATE public.t SET n = 0 WHERE id = 2", "UPDATE public.t SET n = 'NaN' WHERE id = 2"},
      {"UPDATE public.t SET a = '{1.00,NaN}' WHERE id = 1",
       "UPDATE public.t SET a = '{1.0,NaN}' WHERE id = 1"},
      {"UPDATE public.t SET s = 'a b' WHERE id = 1",
       "UPDATE public.t SET s = E'a\\tb' WHERE id = 1"},
      {"UPDATE public.t SET s = '' WHERE id = 2", "UPDATE public.t SET s = NULL WHERE id = 2"},
      {"DELETE FROM public.t WHERE id = 3",
       "INSERT INTO public.t VALUES (3, 2.50, 1e-300, 'ü', '{}')"},
  };
  for (const auto& [plant, undo] : planted) {
    ASSERT_TRUE(target_->Sql(plant).ok()) << plant;
    EXPECT_NE(stored(), relayed) << plant;
    ASSERT_TRUE(target_->Sql(undo).ok()) << undo;
    EXPECT_EQ(stored(), relayed) << undo;
  }
  // One row doubled and another missing: the count agrees, the hash does not.
  ASSERT_TRUE(target_
                  ->Sql("DELETE FROM public.t WHERE id = 10;"
                        "INSERT INTO public.t SELECT * FROM public.t WHERE id = 11")
                  .ok());
  EXPECT_EQ(stored().rows(), relayed.rows());
  EXPECT_NE(stored(), relayed);
}

}  // namespace
}  // namespace pgcourier
