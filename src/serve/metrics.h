// The Prometheus text exposition (format 0.0.4) of what `pgcourier status`
// read: one family per quantity, one series per database. Rendering only:
// it reads nothing. Every metric is listed with its meaning in
// docs/metrics.md.
#pragma once

#include <string>

#include "migrate/run_status.h"

namespace pgcourier {

// The families, each with its # HELP and # TYPE lines, in a fixed order;
// a family with no series (no replicating database, no cutover yet) keeps
// its HELP and TYPE lines. `read_at_unix` is when `view` was read (seconds
// since the epoch), `read_ok` whether that read succeeded (the metrics are
// then of the last good one).
std::string PrometheusText(const StatusView& view, double read_at_unix, bool read_ok);

// `value` escaped for a label value: backslash, double quote and newline.
std::string EscapeLabelValue(const std::string& value);

}  // namespace pgcourier
