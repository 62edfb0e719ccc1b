#include "util/status.h"

#include <gtest/gtest.h>

namespace pgcourier {
namespace {

TEST(StatusTest, OkHasNoMessage) {
  Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.ToString(), "ok");
  EXPECT_FALSE(ok.retryable());
}

TEST(StatusTest, ConnectionClassIsRetryable) {
  EXPECT_TRUE(Status(StatusCode::kServerError, "x", "", "08006").retryable());
  EXPECT_TRUE(Status(StatusCode::kServerError, "x", "", "08001").retryable());
  EXPECT_TRUE(Status(StatusCode::kServerError, "x", "", "57P03").retryable());
  EXPECT_TRUE(Status(StatusCode::kServerError, "x", "", "53300").retryable());
  EXPECT_TRUE(Status(StatusCode::kConnectionFailed, "lost").retryable());
  EXPECT_TRUE(Status(StatusCode::kTimeout, "slow").retryable());
}

TEST(StatusTest, OtherErrorsAreNotRetryable) {
  EXPECT_FALSE(Status(StatusCode::kServerError, "x", "", "42P01").retryable());
  EXPECT_FALSE(Status(StatusCode::kServerError, "x", "", "23505").retryable());
  EXPECT_FALSE(Status(StatusCode::kInvalidArgument, "bad password", "", "28P01").retryable());
  EXPECT_FALSE(Status(StatusCode::kCancelled, "stop").retryable());
}

TEST(StatusTest, ContextKeepsCodeHintAndSqlstate) {
  Status s = Status(StatusCode::kServerError, "relation missing", "create it", "42P01")
                 .WithContext("reading shop");
  EXPECT_EQ(s.message(), "reading shop: relation missing");
  EXPECT_EQ(s.hint(), "create it");
  EXPECT_EQ(s.sqlstate(), "42P01");
  EXPECT_EQ(s.ToString(), "reading shop: relation missing (SQLSTATE 42P01)");
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<int> value = 42;
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, 42);
  EXPECT_TRUE(value.status().ok());
  Result<int> error = Status(StatusCode::kNotFound, "gone");
  EXPECT_FALSE(error.ok());
  EXPECT_EQ(error.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace pgcourier
