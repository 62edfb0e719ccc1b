// Which tables are cut into slices, and where. Tables large enough to keep
// one job busy much longer than the others are cut, so that every job has
// work to the end: into ranges of heap blocks where the source has TID range
// scans (14+), each slice reading only its blocks; else into ranges of an
// integer key. The pure functions need no server.
//
// A slice costs both servers more per row than a whole table's copy: on the
// source a TID range scan reads through shared buffers (a whole-table COPY
// uses a small ring of them and evicts nothing), and on the target its COPY
// cannot be FREEZE (that needs the TRUNCATE in the same transaction), so the
// rows are hinted and frozen later by the read-back, the index builds and
// autovacuum, with WAL for the freezing. Hence the default slice size of
// 1 GB (MigrateOptions::split_bytes): see docs/performance.md.
#pragma once

#include <cstdint>
#include <vector>

#include "catalog/copy_catalog.h"
#include "copy/table_copy.h"
#include "pg/connection.h"

namespace pgcourier {

// At most this many slices per table.
inline constexpr int64_t kMaxSlices = 64;

// The size of a slice: `split_bytes`, or a quarter of one job's share of
// `total_bytes` when that is larger.
int64_t SliceBytes(int64_t split_bytes, int64_t total_bytes, int jobs);

// How many slices a table of `table_bytes` is cut into: 0 (copied whole)
// up to 1.5 slices, else one per slice begun, rounded up to a multiple of
// `jobs` so that the last ones keep every job busy (3 GB at 1 GB slices
// and 2 jobs: 4 slices), at most kMaxSlices.
int64_t SliceCount(int64_t table_bytes, int64_t slice_bytes, int jobs = 1);

// `count` ranges of `blocks` heap blocks, the last one open-ended; none
// when fewer than two would be left.
std::vector<Slice> BlockSlices(int64_t blocks, int64_t count);

// Up to `count` ranges covering lo..hi of an integer key, both included;
// arithmetic on the span is unsigned, so the whole int64 range works.
std::vector<Slice> KeySlices(int64_t lo, int64_t hi, int64_t count);

// The slices of `table` (none: copied whole), read from the source at the
// migration's snapshot (`at_snapshot`): its size in blocks, or its key's
// range when the server has no TID range scans.
Result<std::vector<Slice>> PlanTableSlices(Connection& at_snapshot, const TableToCopy& table,
                                           int64_t slice_bytes, int jobs = 1);

}  // namespace pgcourier
