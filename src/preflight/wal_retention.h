// replication.wal_retention: how much WAL a replication slot will keep on
// the source while the bulk copy runs. The slot holds every WAL segment the
// source writes from its creation until the target has applied it, and the
// subscription is only made once the copy is verified: so the WAL retained
// is about the source's WAL rate times the copy's duration. SQL cannot read
// the free space of the source's disk (managed services do not expose it),
// so the estimate is said, and a large one is a warning: the user compares
// it with the disk.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "pg/connection.h"
#include "preflight/check.h"
#include "util/cancel.h"
#include "util/status.h"

namespace pgcourier {

// The copy rate the estimate assumes: a quarter of what the local benchmark
// measures (docs/performance.md, about 85 MB/s), since a copy across a
// network or into a busy target is often slower. Conservative: a slower
// copy means a longer one, and more WAL retained.
inline constexpr int64_t kConservativeCopyBytesPerSecond = int64_t{20} << 20;
// An estimate above this is a warning (the same 1 GiB past which status
// warns about the WAL a slot retains).
inline constexpr int64_t kWalRetentionWarningBytes = int64_t{1} << 30;
// The shortest interval the WAL rate is sampled over.
inline constexpr std::chrono::milliseconds kWalRateSample{1000};

// A reading of the source's WAL write position.
struct WalPosition {
  std::string lsn;  // pg_current_wal_lsn()
  std::chrono::steady_clock::time_point at;
};

// Reads pg_current_wal_lsn() (a primary's; a standby has none).
Result<WalPosition> ReadWalPosition(Connection& source, Deadline deadline);

// The WAL the source wrote since `first`, in bytes per second, read over
// `source`; when less than `at_least` has passed since `first`, it waits
// for the rest first (cancellable: kCancelled).
struct WalRate {
  double bytes_per_second = 0;
  double seconds = 0;  // the interval it was sampled over
};
Result<WalRate> MeasureWalRate(Connection& source, const WalPosition& first,
                               std::chrono::milliseconds at_least, const CancelToken* cancel,
                               Deadline deadline);

struct WalRetention {
  WalRate rate;
  int64_t data_bytes = 0;   // the databases to move
  double copy_seconds = 0;  // data_bytes at kConservativeCopyBytesPerSecond
  int64_t retained_bytes = 0;
};

// The WAL retained while `data_bytes` are copied at the conservative rate
// and the source writes WAL at `rate`.
WalRetention EstimateWalRetention(const WalRate& rate, int64_t data_bytes);

// The finding (code replication.wal_retention, object "source"): the
// estimate, a warning above kWalRetentionWarningBytes with the hint to make
// room, mind max_slot_wal_keep_size and watch pg_replication_slots; a pass
// otherwise. `keep_size`: the source's max_slot_wal_keep_size in bytes, -1
// when unlimited.
CheckItem WalRetentionItem(const WalRetention& estimate, int64_t keep_size);

// The warning line migrate prints before creating a slot: the
// replication.wal_retention warning of `report`, detail and hint; empty
// when the check passed or was not made.
std::string WalRetentionWarning(const CheckReport& report);

}  // namespace pgcourier
