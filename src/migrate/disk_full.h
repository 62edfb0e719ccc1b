// A server that ran out of disk space (SQLSTATE 53100 disk_full, the rest
// of class 53 but too many connections and configuration limits, or
// "No space left on device" from pg_dump or pg_restore): the database fails
// with what to free and how to continue, since everything committed so far
// is kept by the progress marks.
#pragma once

#include <string>

#include "util/status.h"

namespace pgcourier {

// True for a status that says a server (or the work directory's disk) is
// out of space or memory.
bool IsOutOfSpace(const Status& status);

// `status` with the hint to free space and run `migrate --resume --dir
// work_dir` when IsOutOfSpace; else `status` unchanged.
Status ExplainOutOfSpace(const Status& status, const std::string& work_dir);

}  // namespace pgcourier
