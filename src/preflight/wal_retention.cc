#include "preflight/wal_retention.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "util/size.h"

namespace pgcourier {

Result<WalPosition> ReadWalPosition(Connection& source, Deadline deadline) {
  Result<QueryResult> now = source.Exec("SELECT pg_catalog.pg_current_wal_lsn()::text", deadline);
  if (!now.ok()) return now.status().WithContext("reading the source's WAL position");
  return WalPosition{now->GetString(0, 0), std::chrono::steady_clock::now()};
}

Result<WalRate> MeasureWalRate(Connection& source, const WalPosition& first,
                               std::chrono::milliseconds at_least, const CancelToken* cancel,
                               Deadline deadline) {
  const auto passed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - first.at);
  if (passed < at_least && !SleepFor(at_least - passed, cancel)) {
    return Status(StatusCode::kCancelled, "cancelled");
  }
  // The difference is taken on the server, which knows the LSN arithmetic.
  Result<QueryResult> diff = source.ExecParams(
      "SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), "
      "$1::pg_catalog.pg_lsn)::bigint",
      {first.lsn}, deadline);
  if (!diff.ok()) return diff.status().WithContext("reading the source's WAL position");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - first.at).count();
  WalRate rate;
  rate.seconds = seconds;
  rate.bytes_per_second =
      seconds > 0 ? static_cast<double>(std::max<int64_t>(diff->GetInt(0, 0), 0)) / seconds : 0;
  return rate;
}

WalRetention EstimateWalRetention(const WalRate& rate, int64_t data_bytes) {
  WalRetention out;
  out.rate = rate;
  out.data_bytes = std::max<int64_t>(data_bytes, 0);
  out.copy_seconds =
      static_cast<double>(out.data_bytes) / static_cast<double>(kConservativeCopyBytesPerSecond);
  out.retained_bytes = static_cast<int64_t>(std::llround(rate.bytes_per_second * out.copy_seconds));
  return out;
}

CheckItem WalRetentionItem(const WalRetention& estimate, int64_t keep_size) {
  CheckItem item;
  item.code = check_code::kWalRetention;
  item.object = "source";
  item.detail = fmt::format(
      "the slot will retain about {} of WAL during the copy: the source writes {}/s (sampled "
      "over {:.1f} s) and copying {} at {}/s takes about {}; the source's free disk space "
      "cannot be read over SQL",
      FormatBytes(estimate.retained_bytes),
      FormatBytes(static_cast<int64_t>(std::llround(estimate.rate.bytes_per_second))),
      estimate.rate.seconds, FormatBytes(estimate.data_bytes),
      FormatBytes(kConservativeCopyBytesPerSecond),
      estimate.copy_seconds < 120 ? fmt::format("{:.0f} s", estimate.copy_seconds)
                                  : fmt::format("{:.0f} min", estimate.copy_seconds / 60));
  if (estimate.retained_bytes <= kWalRetentionWarningBytes) {
    item.status = CheckStatus::kPass;
    return item;
  }
  item.status = CheckStatus::kWarn;
  item.hint = fmt::format(
      "the rule here: warn above {}. Make sure the source's disk (pg_wal) has that much free "
      "room beyond its usual needs, or move the busiest databases at a quieter time{}; during "
      "the copy, watch the WAL each slot keeps: SELECT slot_name, "
      "pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) FROM "
      "pg_replication_slots (pgcourier status shows it too)",
      FormatBytes(kWalRetentionWarningBytes),
      keep_size < 0
          ? "; max_slot_wal_keep_size (now unlimited) would cap it, at the price of losing the "
            "slot (and moving the database again) when the cap is reached"
      : keep_size < estimate.retained_bytes
          ? fmt::format("; max_slot_wal_keep_size ({}) is below the estimate: the slot would be "
                        "lost before the copy ends, so raise it (or set -1) if the disk can hold "
                        "the estimate",
                        FormatBytes(keep_size))
          : fmt::format("; max_slot_wal_keep_size ({}) caps it", FormatBytes(keep_size)));
  return item;
}

std::string WalRetentionWarning(const CheckReport& report) {
  for (const auto& item : report.items) {
    if (item.code == check_code::kWalRetention && item.status == CheckStatus::kWarn) {
      return item.detail + "; " + item.hint;
    }
  }
  return "";
}

}  // namespace pgcourier
