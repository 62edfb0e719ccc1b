// Progress marks commit with the rows they describe, and a schema of the
// same name that pgcourier did not make is never taken over.
#include "copy/progress_marks.h"

#include <gtest/gtest.h>

#include "copy/snapshot.h"
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

class ProgressMarksTest : public testing::SourceAndTargetTest {};

TEST_F(ProgressMarksTest, MarkCommitsWithTheSliceAndNotWithoutIt) {
  ASSERT_NO_FATAL_FAILURE(StartServers());
  const char* table = "CREATE TABLE public.t (id int, v text);";
  ASSERT_TRUE(source_
                  ->Sql(std::string(table) + "INSERT INTO public.t SELECT g, repeat('x', 200) "
                                             "FROM generate_series(1, 5000) g;")
                  .ok());
  ASSERT_TRUE(target_->Sql(table).ok());
  auto src = ConnectTo(*source_, "postgres");
  auto dst = ConnectTo(*target_, "postgres");
  ASSERT_TRUE(src && dst);
  ASSERT_TRUE(CreateProgressMarks(*dst).ok());
  ASSERT_TRUE(CreateProgressMarks(*dst).ok()) << "an earlier run's marks are found again";

  TableToCopy t;
  t.schema = "public";
  t.name = "t";
  t.column_list = "\"id\", \"v\"";
  ASSERT_TRUE(src->Run("BEGIN ISOLATION LEVEL REPEATABLE READ").ok());
  Slice first{Slice::Kind::kBlocks, 0, 10};
  Slice rest{Slice::Kind::kBlocks, 10, -1};
  Result<TableCopyStats> copied = CopyTable(*src, *dst, t, first, 2, "copy t first");
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  ProgressMark mark;
  Result<bool> has = HasProgressMark(*dst, "copy t first", &mark);
  ASSERT_TRUE(has.ok());
  EXPECT_TRUE(*has);
  EXPECT_EQ(mark.rows, copied->rows);
  EXPECT_EQ(mark.parts, 2);
  EXPECT_EQ(mark.object, "\"public\".\"t\"");
  EXPECT_GT(mark.rows, 0);
  has = HasProgressMark(*dst, "copy t rest", nullptr);
  ASSERT_TRUE(has.ok());
  EXPECT_FALSE(*has);
  copied = CopyTable(*src, *dst, t, rest, 2, "copy t rest");
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(mark.rows + copied->rows, 5000);
  EXPECT_EQ(*target_->Sql("SELECT count(*), count(DISTINCT id) FROM public.t"), "5000|5000");
  Result<std::map<std::string, ProgressMark>> marks = ReadProgressMarks(*dst);
  ASSERT_TRUE(marks.ok());
  EXPECT_EQ(marks->size(), 2u);

  // A copy that fails leaves neither rows nor a mark: the target's COPY is
  // refused (a value too long for the column) after some rows went in.
  ASSERT_TRUE(
      target_->Sql("TRUNCATE public.t; ALTER TABLE public.t ALTER v TYPE varchar(10)").ok());
  copied = CopyTable(*src, *dst, t, first, 2, "copy t again");
  EXPECT_FALSE(copied.ok());
  has = HasProgressMark(*dst, "copy t again", nullptr);
  ASSERT_TRUE(has.ok()) << has.status().ToString();
  EXPECT_FALSE(*has);
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM public.t"), "0");

  // A table copied again from empty loses its rows and its copy marks.
  ASSERT_TRUE(target_->Sql("ALTER TABLE public.t ALTER v TYPE text").ok());
  ASSERT_TRUE(CopyTable(*src, *dst, t, std::nullopt, 1, "copy t whole").ok());
  ASSERT_TRUE(ResetTableCopy(*dst, t.QualifiedName()).ok());
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM public.t"), "0");
  marks = ReadProgressMarks(*dst);
  ASSERT_TRUE(marks.ok());
  EXPECT_TRUE(marks->empty());

  ASSERT_TRUE(DropProgressMarks(*dst).ok());
  EXPECT_EQ(*target_->Sql("SELECT count(*) FROM pg_namespace WHERE nspname = '_pgcourier'"), "0");
}

TEST_F(ProgressMarksTest, ForeignSchemaOfTheSameNameIsRefused) {
  auto target = testing::StartClusterOrFail({});
  ASSERT_NE(target, nullptr);
  ASSERT_TRUE(target->Sql("CREATE SCHEMA _pgcourier; CREATE TABLE _pgcourier.mine (x int);").ok());
  auto dst = ConnectTo(*target, "postgres");
  ASSERT_TRUE(dst);
  Status created = CreateProgressMarks(*dst);
  EXPECT_EQ(created.code(), StatusCode::kFailedPrecondition) << created.ToString();
  EXPECT_FALSE(created.hint().empty());
  EXPECT_EQ(*target->Sql("SELECT count(*) FROM _pgcourier.mine"), "0") << "left as it was";
}

}  // namespace
}  // namespace pgcourier
