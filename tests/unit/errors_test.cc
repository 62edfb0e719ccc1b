#include "pg/errors.h"

#include <gtest/gtest.h>

namespace pgcourier {
namespace {

struct Case {
  const char* libpq_message;
  StatusCode code;
  const char* sqlstate;
  const char* cause_fragment;
  const char* hint_fragment;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.sqlstate << " " << c.cause_fragment; }

class TranslateTest : public ::testing::TestWithParam<Case> {};

TEST_P(TranslateTest, GivesCauseAndFix) {
  const Case& c = GetParam();
  Status s = TranslateConnectFailure(c.libpq_message, "source (postgresql://u@h:5432/db)");
  EXPECT_EQ(s.code(), c.code) << s.message();
  EXPECT_EQ(s.sqlstate(), c.sqlstate);
  EXPECT_NE(s.message().find("source (postgresql://u@h:5432/db)"), std::string::npos);
  EXPECT_NE(s.message().find(c.cause_fragment), std::string::npos) << s.message();
  EXPECT_NE(s.hint().find(c.hint_fragment), std::string::npos) << s.hint();
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << "one line: " << s.message();
}

// Messages as libpq 15 prints them.
INSTANTIATE_TEST_SUITE_P(
    LibpqMessages, TranslateTest,
    ::testing::Values(
        Case{"server does not support SSL, but SSL was required\n", StatusCode::kInvalidArgument,
             "08P01", "does not accept SSL", "sslmode=disable"},
        Case{"connection to server at \"10.0.0.1\", port 5432 failed: FATAL:  password "
             "authentication failed for user \"app\"\n",
             StatusCode::kInvalidArgument, "28P01", "rejected the password", ".pgpass"},
        Case{"connection to server at \"10.0.0.1\", port 5432 failed: FATAL:  no pg_hba.conf "
             "entry for host \"10.0.0.2\", user \"app\", database \"shop\", no encryption\n",
             StatusCode::kInvalidArgument, "28000", "pg_hba.conf", "sslmode=require"},
        Case{"could not translate host name \"nosuch.example\" to address: Name or service not "
             "known\n",
             StatusCode::kInvalidArgument, "08001", "could not be resolved", "spelling"},
        Case{"connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs "
             "the server running on that host and accepting TCP/IP connections?\n",
             StatusCode::kConnectionFailed, "08001", "nothing accepts connections",
             "listen_addresses"},
        Case{"timeout expired\n", StatusCode::kTimeout, "08001", "did not answer in time",
             "--connect-timeout"},
        Case{"connection to server at \"h\", port 5432 failed: FATAL:  sorry, too many clients "
             "already\n",
             StatusCode::kConnectionFailed, "53300", "no free connection slots", "--jobs"},
        Case{"connection to server at \"h\", port 5432 failed: FATAL:  remaining connection "
             "slots are reserved for non-replication superuser connections\n",
             StatusCode::kConnectionFailed, "53300", "reserved", "max_connections"},
        Case{"connection to server at \"h\", port 5432 failed: FATAL:  the database system is "
             "starting up\n",
             StatusCode::kConnectionFailed, "57P03", "still starting", "wait"},
        Case{"connection to server at \"h\", port 5432 failed: FATAL:  database \"nope\" does "
             "not exist\n",
             StatusCode::kInvalidArgument, "3D000", "does not exist", "dbname"}));

TEST(TranslateTest, RetryableMatchesTransientFailures) {
  EXPECT_TRUE(TranslateConnectFailure("Connection refused", "x").retryable());
  EXPECT_TRUE(TranslateConnectFailure("timeout expired", "x").retryable());
  EXPECT_TRUE(TranslateConnectFailure("FATAL:  sorry, too many clients already", "x").retryable());
  // A server replaying WAL after a crash lets clients in once it is done.
  EXPECT_TRUE(
      TranslateConnectFailure("FATAL:  the database system is not yet accepting connections\n"
                              "DETAIL:  Consistent recovery state has not been yet reached.",
                              "x")
          .retryable());
  EXPECT_TRUE(
      TranslateConnectFailure("FATAL:  the database system is in recovery mode", "x").retryable());
  EXPECT_FALSE(TranslateConnectFailure("password authentication failed", "x").retryable());
  EXPECT_FALSE(TranslateConnectFailure("no pg_hba.conf entry", "x").retryable());
  EXPECT_FALSE(TranslateConnectFailure("Name or service not known", "x").retryable());
}

TEST(TranslateTest, UnknownMessageStillNamesTheServer) {
  Status s = TranslateConnectFailure("connection to server at \"h\" failed: something new\n",
                                     "target (postgresql://h/)");
  EXPECT_EQ(s.code(), StatusCode::kConnectionFailed);
  EXPECT_NE(s.message().find("target (postgresql://h/)"), std::string::npos);
  EXPECT_NE(s.message().find("something new"), std::string::npos);
}

}  // namespace
}  // namespace pgcourier
