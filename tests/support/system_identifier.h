// A cluster's system identifier, as the test harness sets it on a copy of a
// template data directory (pg_cluster.cc): initdb runs once per major, user
// and locale, and each test cluster starts from a copy of its result. A copy
// would share its template's system identifier, which pgcourier reads as "the
// target is a physical copy of the source" (servers.distinct), so every copy
// gets a new one, written where the server checks it: pg_control (with its
// CRC) and the long page header at the start of each WAL segment.
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace pgcourier::testing {

// A new random identifier, made like initdb's: seconds since the epoch in the
// high 32 bits, random low bits.
uint64_t NewSystemIdentifier();

// The system identifier in `data_dir`'s global/pg_control (after checking the
// file's CRC).
Result<uint64_t> ReadSystemIdentifier(const std::string& data_dir);

// Gives the cluster in `data_dir` (cleanly shut down, not running) the system
// identifier `id`: pg_control's (its CRC recomputed) and that of every WAL
// segment in pg_wal/, which must all hold the old one. Works for PostgreSQL
// 13 to 18 without knowing their pg_control layout beyond the identifier
// coming first: the CRC's place is found by checking it.
Status SetSystemIdentifier(const std::string& data_dir, uint64_t id);

// CRC-32C (Castagnoli), as PostgreSQL computes pg_control's.
uint32_t Crc32c(const unsigned char* data, size_t size);

}  // namespace pgcourier::testing
