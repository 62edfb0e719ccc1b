// Finding a pg_dump/pg_restore pair that fits the servers: pg_dump refuses a
// server newer than itself, and the output of a much newer pg_dump can carry
// settings an older target does not know. Old binaries first on PATH after
// an upgrade are a classic trap, so every candidate is found and reported.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace pgcourier {

struct PgDumpCandidate {
  std::string bindir;      // directory holding pg_dump (and pg_restore)
  std::string pg_dump;     // path
  std::string pg_restore;  // path; empty when absent beside pg_dump
  int major = 0;
  std::string version_text;  // first line of `pg_dump --version`
  std::string origin;        // "--pg-bindir", "PATH", "/usr/lib/postgresql"
};

// Candidates in search order: the explicit bindirs, then PATH, then
// /usr/lib/postgresql/*/bin (newest first). The same binary found twice is
// listed once. Binaries that do not run are skipped.
std::vector<PgDumpCandidate> FindPgDumpCandidates(const std::vector<std::string>& explicit_bindirs);

// The first pg_dump on PATH, if any (whether it fits or not).
std::optional<PgDumpCandidate> FirstPgDumpOnPath(const std::vector<PgDumpCandidate>& candidates);

// Picks the candidate to use for a source of major `source_major` restored
// into `target_major`: it must have pg_restore beside it and major >=
// source_major. An explicit bindir that fits wins; otherwise the newest one
// not newer than the target, else the oldest newer one. nullopt when none fits.
std::optional<PgDumpCandidate> ChoosePgDump(const std::vector<PgDumpCandidate>& candidates,
                                            int source_major, int target_major);

// The Debian package to install for a major, for hints.
std::string PgClientPackageHint(int major);

}  // namespace pgcourier
