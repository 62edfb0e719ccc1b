#include "preflight/wal_retention.h"

#include <gtest/gtest.h>

namespace pgcourier {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kGiB = int64_t{1} << 30;

TEST(WalRetentionTest, RetainedIsTheWalRateTimesTheConservativeCopyTime) {
  // 100 GiB at 20 MB/s: 5120 s; 1 MB/s of WAL meanwhile: 5 GiB.
  const WalRetention estimate = EstimateWalRetention({double(kMiB), 1.0}, 100 * kGiB);
  EXPECT_DOUBLE_EQ(estimate.copy_seconds, 5120.0);
  EXPECT_EQ(estimate.retained_bytes, 5 * kGiB);
  EXPECT_EQ(estimate.data_bytes, 100 * kGiB);

  // An idle source retains nothing, whatever the size; an unknown size
  // (-1) counts as nothing to copy.
  EXPECT_EQ(EstimateWalRetention({0.0, 1.0}, 100 * kGiB).retained_bytes, 0);
  EXPECT_EQ(EstimateWalRetention({double(kMiB), 1.0}, -1).retained_bytes, 0);
}

TEST(WalRetentionTest, WarnsOnlyAboveOneGibibyte) {
  // 1 GiB exactly (1 MB/s over 1024 s of copying 20 GiB): a pass.
  const WalRetention at_limit = EstimateWalRetention({double(kMiB), 1.0}, 20 * kGiB);
  ASSERT_EQ(at_limit.retained_bytes, kWalRetentionWarningBytes);
  const CheckItem pass = WalRetentionItem(at_limit, -1);
  EXPECT_EQ(pass.code, "replication.wal_retention");
  EXPECT_EQ(pass.status, CheckStatus::kPass);
  EXPECT_EQ(pass.object, "source");
  EXPECT_TRUE(pass.hint.empty());
  EXPECT_NE(pass.detail.find("about 1.0 GB of WAL"), std::string::npos) << pass.detail;
  EXPECT_NE(pass.detail.find("cannot be read over SQL"), std::string::npos) << pass.detail;

  // Twice the data: 2 GiB, a warning whose hint says what to do.
  const CheckItem warn = WalRetentionItem(EstimateWalRetention({double(kMiB), 1.0}, 40 * kGiB), -1);
  EXPECT_EQ(warn.status, CheckStatus::kWarn);
  EXPECT_NE(warn.detail.find("about 2.0 GB of WAL"), std::string::npos) << warn.detail;
  EXPECT_NE(warn.detail.find("1.0 MB/s (sampled over 1.0 s)"), std::string::npos) << warn.detail;
  EXPECT_NE(warn.detail.find("copying 40.0 GB at 20.0 MB/s takes about 34 min"), std::string::npos)
      << warn.detail;
  EXPECT_NE(warn.hint.find("free room"), std::string::npos) << warn.hint;
  EXPECT_NE(warn.hint.find("pg_replication_slots"), std::string::npos) << warn.hint;
  EXPECT_NE(warn.hint.find("now unlimited"), std::string::npos) << warn.hint;
}

TEST(WalRetentionTest, HintNamesAKeepSizeBelowTheEstimate) {
  const WalRetention estimate = EstimateWalRetention({double(kMiB), 1.0}, 40 * kGiB);
  const CheckItem below = WalRetentionItem(estimate, kGiB);
  EXPECT_NE(below.hint.find("max_slot_wal_keep_size (1.0 GB) is below the estimate"),
            std::string::npos)
      << below.hint;
  const CheckItem above = WalRetentionItem(estimate, 4 * kGiB);
  EXPECT_NE(above.hint.find("max_slot_wal_keep_size (4.0 GB) caps it"), std::string::npos)
      << above.hint;
}

TEST(WalRetentionTest, MigrateRepeatsTheCheckWarningOnly) {
  CheckReport report;
  EXPECT_EQ(WalRetentionWarning(report), "");
  report.items.push_back(
      WalRetentionItem(EstimateWalRetention({double(kMiB), 1.0}, 20 * kGiB), -1));
  EXPECT_EQ(WalRetentionWarning(report), "");  // a pass is not repeated
  report.items.push_back(
      WalRetentionItem(EstimateWalRetention({double(kMiB), 1.0}, 40 * kGiB), -1));
  const std::string line = WalRetentionWarning(report);
  EXPECT_EQ(line, report.items.back().detail + "; " + report.items.back().hint);
}

}  // namespace
}  // namespace pgcourier
