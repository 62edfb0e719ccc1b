// The hash migrate compares a table with: the rows a copy relayed from the
// source against the rows the target stored, read back once. Equal rows in
// another order hash alike; a row missing or doubled, 1.0 for 1.00 or 0 for
// -0 do not.
#include "copy/row_hash.h"

#include <gtest/gtest.h>

#include "copy/progress_marks.h"
#include "copy/table_copy.h"
#include "pg_cluster.h"
#include "two_servers.h"

namespace pgcourier {
namespace {

std::unique_ptr<Connection> ConnectTo(const testing::PgCluster& cluster) {
  Result<std::unique_ptr<Connection>> conn =
      Connection::Connect(*ConnInfo::Parse(cluster.ConnString("postgres")), ConnectOptions{});
  EXPECT_TRUE(conn.ok()) << conn.status().ToString();
  return conn.ok() ? std::move(*conn) : nullptr;
}

class RowHashTest : public testing::SourceAndTargetTest {};

TEST_F(RowHashTest, TheTargetsRowsHashLikeTheRelayedOnesOnlyWhenTheyAreTheSame) {
  ASSERT_NO_FATAL_FAILURE(StartServers());
  ASSERT_TRUE(
      source_
          ->Sql("CREATE TABLE public.t (id int, n numeric, f float8, s text);"
                "INSERT INTO public.t VALUES (1, 1.00, '-0', 'a\tb'), (2, 'NaN', 'NaN', NULL),"
                " (3, 2.50, 1e-300, 'ü');"
                "INSERT INTO public.t SELECT g, g / 7.0, g / 3.0, md5(g::text) "
                "FROM generate_series(4, 3000) g;")
          .ok());
  ASSERT_TRUE(target_->Sql("CREATE TABLE public.t (id int, n numeric, f float8, s text)").ok());
  auto src = ConnectTo(*source_);
  auto dst = ConnectTo(*target_);
  ASSERT_TRUE(src && dst);
  ASSERT_TRUE(CreateProgressMarks(*dst).ok());
  TableToCopy t;
  t.schema = "public";
  t.name = "t";
  t.column_list = "\"id\", \"n\", \"f\", \"s\"";
  ASSERT_TRUE(src->Run("BEGIN ISOLATION LEVEL REPEATABLE READ").ok());

  // In two slices, whose hashes add up; and the mark keeps each one's.
  Result<TableCopyStats> first =
      CopyTable(*src, *dst, t, Slice{Slice::Kind::kBlocks, 0, 5}, 2, "copy t first");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Result<TableCopyStats> rest =
      CopyTable(*src, *dst, t, Slice{Slice::Kind::kBlocks, 5, -1}, 2, "copy t rest");
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  ProgressMark mark;
  ASSERT_TRUE(*HasProgressMark(*dst, "copy t first", &mark));
  EXPECT_EQ(mark.rows_hash, first->hash.Digest());
  RowSetHash relayed = first->hash;
  relayed.Add(rest->hash);
  EXPECT_EQ(relayed.rows(), 3000);

  auto stored = [&]() -> RowSetHash {
    Result<RowSetHash> h = HashTargetRows(*dst, t, src->client_encoding());
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? *h : RowSetHash();
  };
  EXPECT_EQ(stored(), relayed);

  // The same rows in another physical order.
  ASSERT_TRUE(target_->Sql("UPDATE public.t SET s = s WHERE id % 2 = 0").ok());
  EXPECT_EQ(stored(), relayed);

  // One row doubled and another missing: the count agrees, the hash does not.
  ASSERT_TRUE(target_
                  ->Sql("DELETE FROM public.t WHERE id = 10;"
                        "INSERT INTO public.t SELECT * FROM public.t WHERE id = 11")
                  .ok());
  EXPECT_EQ(stored().rows(), relayed.rows());
  EXPECT_NE(stored(), relayed);

  // The whole table in one copy hashes as its slices did; then single
  // values changed on the target.
  Result<TableCopyStats> whole = CopyTable(*src, *dst, t, std::nullopt, 1, "copy t whole");
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(whole->hash, relayed) << "slices and the whole table hash alike";
  EXPECT_EQ(stored(), relayed);
  ASSERT_TRUE(target_->Sql("UPDATE public.t SET n = 1.0 WHERE id = 1").ok());
  EXPECT_NE(stored(), relayed) << "1.0 and 1.00 are told apart";
  ASSERT_TRUE(target_->Sql("UPDATE public.t SET n = 1.00, f = 0 WHERE id = 1").ok());
  EXPECT_NE(stored(), relayed) << "-0 and 0 are told apart";
  ASSERT_TRUE(target_->Sql("UPDATE public.t SET f = '-0' WHERE id = 1").ok());
  EXPECT_EQ(stored(), relayed);
}

}  // namespace
}  // namespace pgcourier
