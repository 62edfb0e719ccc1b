// Progress marks: a small table on the target, in pgcourier's own schema,
// that records each step of the data phase (a table or a slice copied) in the
// same transaction as the step's rows. After any interruption - a lost
// connection whose COMMIT may or may not have happened, a killed run - the
// marks say exactly which steps committed, so nothing is copied twice and
// nothing is skipped. The schema is dropped when the database is done.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

// The schema on the target that holds the marks while a migration runs.
inline constexpr const char* kProgressSchema = "_pgcourier";

// Creates the schema and its table, or finds the ones an earlier run of the
// same migration made. A schema of that name that pgcourier did not make (the
// source's own, restored with its schema) is an error, never reused.
Status CreateProgressMarks(Connection& target, Deadline deadline = Deadline::Never());

// Whether the target holds pgcourier's progress schema (an error when a
// schema of that name is not pgcourier's).
Result<bool> ProgressMarksExist(Connection& target, Deadline deadline = Deadline::Never());

struct ProgressMark {
  std::string object;  // the table (or index) the step was about, quoted and qualified
  int parts = 1;       // how many steps of the same kind its object was cut into
  int64_t rows = 0;
  int64_t bytes = 0;
  // A copy's rows as they came from the source (copy/row_hash.h): 32 hex
  // digits; empty for an index, and for a copy marked by a pgcourier that
  // did not record it.
  std::string rows_hash;
};

// The marks committed so far, by step; empty when the schema does not exist
// (an error when it is not pgcourier's, as in ProgressMarksExist).
Result<std::map<std::string, ProgressMark>> ReadProgressMarks(
    Connection& target, Deadline deadline = Deadline::Never());

// Whether `step` committed; its counts in *mark when it did.
Result<bool> HasProgressMark(Connection& target, const std::string& step, ProgressMark* mark,
                             Deadline deadline = Deadline::Never());

// The statement that records `step` (run inside the step's transaction).
std::string InsertProgressMarkSql(const std::string& step, const ProgressMark& mark);

// Empties `table` (quoted, qualified) and forgets its copy marks, in one
// transaction: a table whose slices were copied at an older snapshot is
// copied again from empty. With `partition_tree`, `table` is the root of a
// tree loaded through it, emptied with all its partitions.
Status ResetTableCopy(Connection& target, const std::string& table, bool partition_tree = false,
                      Deadline deadline = Deadline::Never());

// Drops the schema with its marks (nothing else is in it).
Status DropProgressMarks(Connection& target, Deadline deadline = Deadline::Never());

}  // namespace pgcourier
