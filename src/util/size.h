// Byte sizes as users write them ("50GB", "1.5 TiB", "200MB") and as
// pgcourier shows them.
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace pgcourier {

// Accepts a number with an optional unit: B, kB/KB/KiB, MB/MiB, GB/GiB, TB/TiB
// (PostgreSQL's convention: 1 kB = 1024 bytes, as in pg_size_pretty).
Result<int64_t> ParseByteSize(const std::string& text);
// 1536 -> "1.5 kB", like pg_size_pretty but with one decimal.
std::string FormatBytes(int64_t bytes);

}  // namespace pgcourier
