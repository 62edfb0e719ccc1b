#include "preflight/pg_tools.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "pg/version.h"
#include "util/process.h"

namespace pgcourier {
namespace {

namespace fs = std::filesystem;

bool IsExecutable(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

std::optional<PgDumpCandidate> Probe(const fs::path& bindir, const std::string& origin) {
  fs::path dump = bindir / "pg_dump";
  if (!IsExecutable(dump)) return std::nullopt;
  ProcessOptions options;
  options.timeout = std::chrono::seconds(20);
  Result<ProcessResult> ran = RunProcess({dump.string(), "--version"}, options);
  if (!ran.ok() || !ran->ok()) return std::nullopt;
  std::string line = ran->out.substr(0, ran->out.find('\n'));
  std::optional<int> major = MajorFromVersionText(line);
  if (!major) return std::nullopt;
  PgDumpCandidate c;
  c.bindir = bindir.string();
  c.pg_dump = dump.string();
  fs::path restore = bindir / "pg_restore";
  if (IsExecutable(restore)) c.pg_restore = restore.string();
  c.major = *major;
  c.version_text = line;
  c.origin = origin;
  return c;
}

std::vector<fs::path> PathDirs() {
  std::vector<fs::path> dirs;
  const char* path = std::getenv("PATH");
  if (path == nullptr) return dirs;
  std::string all(path);
  size_t start = 0;
  while (start <= all.size()) {
    size_t end = all.find(':', start);
    if (end == std::string::npos) end = all.size();
    if (end > start) dirs.emplace_back(all.substr(start, end - start));
    start = end + 1;
  }
  return dirs;
}

}  // namespace

std::vector<PgDumpCandidate> FindPgDumpCandidates(
    const std::vector<std::string>& explicit_bindirs) {
  std::vector<std::pair<fs::path, std::string>> dirs;
  dirs.reserve(explicit_bindirs.size());
  for (const auto& d : explicit_bindirs) dirs.emplace_back(d, "--pg-bindir");
  for (const auto& d : PathDirs()) dirs.emplace_back(d, "PATH");
  std::vector<fs::path> installed;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    installed.push_back(entry.path() / "bin");
  }
  std::sort(installed.begin(), installed.end(), [](const fs::path& a, const fs::path& b) {
    return std::atoi(a.parent_path().filename().c_str()) >
           std::atoi(b.parent_path().filename().c_str());
  });
  for (const auto& d : installed) dirs.emplace_back(d, "/usr/lib/postgresql");

  std::vector<PgDumpCandidate> out;
  std::set<std::string> seen;
  for (const auto& [dir, origin] : dirs) {
    // Debian's /usr/bin/pg_dump is a wrapper that picks a version itself;
    // resolving symlinks makes the same binary count once.
    std::error_code canon_ec;
    fs::path real = fs::canonical(dir / "pg_dump", canon_ec);
    std::string key = canon_ec ? (dir / "pg_dump").string() : real.string();
    if (seen.count(key) != 0) continue;
    std::optional<PgDumpCandidate> c = Probe(dir, origin);
    if (!c) continue;
    seen.insert(key);
    out.push_back(std::move(*c));
  }
  return out;
}

std::optional<PgDumpCandidate> FirstPgDumpOnPath(const std::vector<PgDumpCandidate>& candidates) {
  for (const auto& c : candidates) {
    if (c.origin == "PATH") return c;
  }
  return std::nullopt;
}

std::optional<PgDumpCandidate> ChoosePgDump(const std::vector<PgDumpCandidate>& candidates,
                                            int source_major, int target_major) {
  std::vector<const PgDumpCandidate*> fitting;
  for (const auto& c : candidates) {
    if (c.major >= source_major && !c.pg_restore.empty()) fitting.push_back(&c);
  }
  if (fitting.empty()) return std::nullopt;
  for (const auto* c : fitting) {
    if (c->origin == "--pg-bindir") return *c;
  }
  const PgDumpCandidate* best = nullptr;
  for (const auto* c : fitting) {  // newest not newer than the target
    if (c->major <= target_major && (best == nullptr || c->major > best->major)) best = c;
  }
  if (best == nullptr) {
    for (const auto* c : fitting) {  // else the oldest newer one
      if (best == nullptr || c->major < best->major) best = c;
    }
  }
  return *best;
}

std::string PgClientPackageHint(int major) { return "postgresql-client-" + std::to_string(major); }

}  // namespace pgcourier
