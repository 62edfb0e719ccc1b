#include <gtest/gtest.h>

#include <thread>

#include "util/cancel.h"
#include "util/pattern.h"
#include "util/process.h"
#include "util/redact.h"
#include "util/size.h"

namespace pgcourier {
namespace {

TEST(SizeTest, ParsesUnits) {
  EXPECT_EQ(*ParseByteSize("512"), 512);
  EXPECT_EQ(*ParseByteSize("1kB"), 1024);
  EXPECT_EQ(*ParseByteSize("10GB"), int64_t{10} << 30);
  EXPECT_EQ(*ParseByteSize("10 GiB"), int64_t{10} << 30);
  EXPECT_EQ(*ParseByteSize("1.5TB"), int64_t{3} << 39);
  EXPECT_FALSE(ParseByteSize("ten").ok());
  EXPECT_FALSE(ParseByteSize("10 parsecs").ok());
  EXPECT_FALSE(ParseByteSize("-1GB").ok());
}

TEST(SizeTest, Formats) {
  EXPECT_EQ(FormatBytes(100), "100 bytes");
  EXPECT_EQ(FormatBytes(1536), "1.5 kB");
  EXPECT_EQ(FormatBytes(int64_t{3} << 30), "3.0 GB");
}

TEST(PatternTest, Globs) {
  EXPECT_TRUE(MatchesPattern("shop", "shop"));
  EXPECT_FALSE(MatchesPattern("shop", "shop2"));
  EXPECT_TRUE(MatchesPattern("shop*", "shop2"));
  EXPECT_TRUE(MatchesPattern("app_?", "app_1"));
  EXPECT_TRUE(MatchesAnyPattern({"a", "b*"}, "blog"));
  EXPECT_FALSE(MatchesAnyPattern({}, "blog"));
}

TEST(RedactTest, MasksEveryPasswordForm) {
  EXPECT_EQ(MaskPasswords("postgresql://app:s3cret@host/db"), "postgresql://app:******@host/db");
  EXPECT_EQ(MaskPasswords("postgres://app:p@ss@host/db"), "postgres://app:****@host/db");
  EXPECT_EQ(MaskPasswords("host=h password=s3cret user=u"), "host=h password=****** user=u");
  EXPECT_EQ(MaskPasswords("host=h password='a b' user=u"), "host=h password=***** user=u");
  EXPECT_EQ(MaskPasswords("postgresql://h/db?sslmode=require&password=s3cret"),
            "postgresql://h/db?sslmode=require&password=******");
  EXPECT_EQ(MaskPasswords("postgresql://app@host/db"), "postgresql://app@host/db");
  std::string text = "x postgresql://a:b@c y";
  EXPECT_EQ(MaskPasswords(text).size(), text.size());
}

TEST(ProcessTest, CapturesOutputAndExitCode) {
  Result<ProcessResult> r = RunProcess({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(ProcessTest, PassesEnvironmentNotArgv) {
  ProcessOptions options;
  options.env["PGCOURIER_TEST_VALUE"] = "from-env";
  Result<ProcessResult> r =
      RunProcess({"sh", "-c", "printf %s \"$PGCOURIER_TEST_VALUE\""}, options);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "from-env");
}

TEST(ProcessTest, MissingProgramIsNotFound) {
  Result<ProcessResult> r = RunProcess({"pgcourier-no-such-program"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST(ProcessTest, TimeoutKillsTheChild) {
  ProcessOptions options;
  options.timeout = std::chrono::milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  Result<ProcessResult> r = RunProcess({"sleep", "30"}, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(ProcessTest, CancelStopsTheChild) {
  CancelToken token;
  ProcessOptions options;
  options.cancel = &token;
  std::thread canceller([&token] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    token.Cancel();
  });
  auto start = std::chrono::steady_clock::now();
  Result<ProcessResult> r = RunProcess({"sleep", "30"}, options);
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(CancelTest, CancelWakesAWaitAtOnce) {
  CancelToken token;
  std::thread canceller([&token] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    token.Cancel();
  });
  auto start = std::chrono::steady_clock::now();
  bool completed = SleepFor(std::chrono::seconds(30), &token);
  canceller.join();
  EXPECT_FALSE(completed);
  EXPECT_TRUE(token.cancelled());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(CancelTest, DeadlinePasses) {
  Deadline d = Deadline::After(std::chrono::milliseconds(20));
  EXPECT_FALSE(Deadline::Never().passed());
  EXPECT_EQ(Deadline::Never().PollTimeoutMs(), -1);
  EXPECT_TRUE(SleepFor(std::chrono::milliseconds(30), nullptr));
  EXPECT_TRUE(d.passed());
  EXPECT_EQ(d.PollTimeoutMs(), 0);
}

}  // namespace
}  // namespace pgcourier
