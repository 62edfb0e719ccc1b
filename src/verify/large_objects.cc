#include "verify/large_objects.h"

#include <fmt/format.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "catalog/acl.h"
#include "verify/verify_session.h"

namespace pgcourier {
namespace {

constexpr size_t kMaxDifferencesListed = 20;

// Length and SHA-256 of every large object, read in pieces of 1 MB: the
// recursion keeps one row per object and piece (an offset and a hash), never
// the data.
constexpr const char* kLargeObjectsSql = R"sql(
WITH RECURSIVE piece(lo, n, len, hash) AS (
  SELECT m.oid, 0::bigint, pg_catalog.length(p.data), pg_catalog.sha256(p.data)
    FROM pg_catalog.pg_largeobject_metadata m
   CROSS JOIN LATERAL (SELECT pg_catalog.lo_get(m.oid, 0, 1048576) AS data) p
  UNION ALL
  SELECT c.lo, c.n + 1, pg_catalog.length(p.data), pg_catalog.sha256(p.data)
    FROM piece c
   CROSS JOIN LATERAL (SELECT pg_catalog.lo_get(c.lo, (c.n + 1) * 1048576, 1048576) AS data) p
   WHERE c.len = 1048576
), whole AS (
  SELECT lo, sum(len) AS size,
         pg_catalog.encode(pg_catalog.sha256(pg_catalog.string_agg(hash, ''::bytea ORDER BY n)),
                           'hex') AS hash
    FROM piece GROUP BY lo
)
SELECT m.oid, w.size::text || ' bytes, sha256 ' || pg_catalog.left(w.hash, 16),
       pg_catalog.obj_description(m.oid, 'pg_largeobject'),
       pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(m.lomowner)), )sql";

PropertyVerification Entry(std::string property, std::string source, std::string target) {
  PropertyVerification v;
  v.property = std::move(property);
  v.source_value = std::move(source);
  v.target_value = std::move(target);
  return v;
}

struct LargeObject {
  std::string data;
  std::string comment;
  std::string owner;
  std::string grants;
};

struct Side {
  std::map<int64_t, LargeObject> objects;
  std::string error;  // the server's refusal to read them
};

Result<Side> ReadSide(Connection& conn) {
  Side side;
  Result<verify_internal::Read> read = verify_internal::GuardedRead(
      conn, std::string(kLargeObjectsSql) + AclTextSql("m.lomacl", "m.lomowner", 'L') +
                " FROM pg_catalog.pg_largeobject_metadata m JOIN whole w ON w.lo = m.oid");
  if (!read.ok()) return read.status();
  if (!read->result) {
    side.error = read->error;
    return side;
  }
  const QueryResult& rows = *read->result;
  for (int r = 0; r < rows.rows(); ++r) {
    LargeObject& lo = side.objects[rows.GetInt(r, 0)];
    lo.data = rows.GetString(r, 1);
    lo.comment = rows.GetString(r, 2);
    lo.owner = rows.GetString(r, 3);
    lo.grants = rows.GetString(r, 4);
  }
  return side;
}

// The attributes of one object that differ, each as an entry.
void CompareObject(int64_t oid, const LargeObject* source, const LargeObject* target,
                   const VerifyOptions& options, std::vector<PropertyVerification>& out) {
  const std::string name = fmt::format("large object {}", oid);
  if (source == nullptr || target == nullptr) {
    out.push_back(
        Entry(name, source != nullptr ? "present" : "", target != nullptr ? "present" : ""));
    return;
  }
  auto differs = [&](const char* what, const std::string& a, const std::string& b) {
    if (a != b) out.push_back(Entry(name + ": " + what, a, b));
  };
  differs("data", source->data, target->data);
  differs("comment", source->comment, target->comment);
  if (options.owners) differs("owner", source->owner, target->owner);
  if (options.grants) differs("grants", source->grants, target->grants);
}

}  // namespace

Result<std::vector<PropertyVerification>> CompareLargeObjects(Connection& source,
                                                              Connection& target,
                                                              const VerifyOptions& options) {
  Result<Side> source_side = ReadSide(source);
  if (!source_side.ok())
    return source_side.status().WithContext("reading the source's large objects");
  Result<Side> target_side = ReadSide(target);
  if (!target_side.ok())
    return target_side.status().WithContext("reading the target's large objects");
  std::vector<PropertyVerification> out;
  if (!source_side->error.empty() || !target_side->error.empty()) {
    out.push_back(Entry("large objects",
                        source_side->error.empty() ? "" : "source: " + source_side->error,
                        target_side->error.empty() ? "" : "target: " + target_side->error));
    if (out.back().match()) out.back().target_value = "(not read)";
    return out;
  }
  const auto& sources = source_side->objects;
  const auto& targets = target_side->objects;
  if (sources.empty() && targets.empty()) return out;
  out.push_back(
      Entry("large objects", std::to_string(sources.size()), std::to_string(targets.size())));
  std::set<int64_t> oids;
  for (const auto& [oid, lo] : sources) oids.insert(oid);
  for (const auto& [oid, lo] : targets) oids.insert(oid);
  std::vector<PropertyVerification> differences;
  for (int64_t oid : oids) {
    auto s = sources.find(oid);
    auto t = targets.find(oid);
    CompareObject(oid, s == sources.end() ? nullptr : &s->second,
                  t == targets.end() ? nullptr : &t->second, options, differences);
  }
  for (size_t i = 0; i < differences.size() && i < kMaxDifferencesListed; ++i) {
    out.push_back(std::move(differences[i]));
  }
  if (differences.size() > kMaxDifferencesListed) {
    out.push_back(Entry("large objects: more differences",
                        std::to_string(differences.size() - kMaxDifferencesListed), "not listed"));
  }
  return out;
}

}  // namespace pgcourier
