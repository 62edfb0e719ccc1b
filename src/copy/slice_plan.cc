#include "copy/slice_plan.h"

#include <algorithm>

#include "pg/quote.h"

namespace pgcourier {

int64_t SliceBytes(int64_t split_bytes, int64_t total_bytes, int jobs) {
  return std::max<int64_t>(split_bytes, total_bytes / std::max(1, jobs * 4));
}

int64_t SliceCount(int64_t table_bytes, int64_t slice_bytes, int jobs) {
  if (slice_bytes <= 0 || table_bytes <= slice_bytes * 3 / 2) return 0;
  int64_t count = (table_bytes + slice_bytes - 1) / slice_bytes;
  // A multiple of the jobs: the last slices run side by side, not one alone.
  const int64_t every = std::clamp<int64_t>(jobs, 1, kMaxSlices);
  count = (count + every - 1) / every * every;
  return std::min<int64_t>(kMaxSlices / every * every, count);
}

std::vector<Slice> BlockSlices(int64_t blocks, int64_t count) {
  std::vector<Slice> slices;
  count = std::min(count, blocks);
  if (count < 2) return slices;
  const int64_t step = blocks / count;
  for (int64_t i = 0; i < count; ++i) {
    // The last slice is open-ended: it reads to the end of the table.
    slices.push_back({Slice::Kind::kBlocks, i * step, i + 1 == count ? -1 : (i + 1) * step});
  }
  return slices;
}

std::vector<Slice> KeySlices(int64_t lo, int64_t hi, int64_t count) {
  std::vector<Slice> slices;
  if (count < 1 || hi < lo) return slices;
  // Unsigned arithmetic: hi - lo can exceed INT64_MAX.
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  if (span < static_cast<uint64_t>(count)) count = static_cast<int64_t>(span) + 1;
  // At least one key per slice: a range narrower than `count` gets one
  // slice per key, none of them empty.
  const uint64_t step = std::max<uint64_t>(1, span / static_cast<uint64_t>(count));
  uint64_t offset = 0;
  for (int64_t i = 0; i < count; ++i) {
    uint64_t next = i + 1 == count ? span + 1 : offset + step;
    slices.push_back({Slice::Kind::kKeys, static_cast<int64_t>(static_cast<uint64_t>(lo) + offset),
                      static_cast<int64_t>(static_cast<uint64_t>(lo) + next - 1)});
    offset = next;
  }
  return slices;
}

Result<std::vector<Slice>> PlanTableSlices(Connection& at_snapshot, const TableToCopy& table,
                                           int64_t slice_bytes, int jobs) {
  const bool by_blocks = at_snapshot.server_version() >= 140000;
  const int64_t count = SliceCount(table.bytes, slice_bytes, jobs);
  if (count == 0 || (!by_blocks && table.split_column.empty())) return std::vector<Slice>();
  if (by_blocks) {
    Result<QueryResult> size = at_snapshot.ExecParams(
        "SELECT pg_catalog.pg_relation_size($1::regclass, 'main') / "
        "pg_catalog.current_setting('block_size')::bigint",
        {table.QualifiedName()});
    if (!size.ok()) return size.status();
    return BlockSlices(size->GetInt(0, 0), count);
  }
  const std::string column = QuoteIdent(table.split_column);
  Result<QueryResult> bounds = at_snapshot.Exec("SELECT min(" + column + "), max(" + column +
                                                ") FROM ONLY " + table.QualifiedName());
  if (!bounds.ok()) return bounds.status();
  if (bounds->IsNull(0, 0)) return std::vector<Slice>();
  return KeySlices(bounds->GetInt(0, 0), bounds->GetInt(0, 1), count);
}

}  // namespace pgcourier
