#include "schema/schema_dump.h"

#include <fstream>
#include <regex>
#include <sstream>
#include <utility>

#include "pg/quote.h"
#include "util/process.h"
#include "util/redact.h"

namespace pgcourier {
namespace {

// Environment for a child that connects: the password, and none of the
// caller's PG* settings that could send it elsewhere.
ProcessOptions ChildOptions(const ConnInfo& info, const CancelToken* cancel) {
  ProcessOptions options;
  options.cancel = cancel;
  options.unset_env = {"PGDATABASE", "PGSERVICE", "PGOPTIONS"};
  if (info.Has("password")) options.env["PGPASSWORD"] = info.Get("password");
  options.timeout = std::chrono::hours(24);
  return options;
}

Status ToolFailed(const std::string& what, const ProcessResult& result) {
  std::string err = result.err;
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  // Keep the tail: the first error is what matters, but pg_restore prints
  // context lines after it.
  if (err.size() > 4000) err = "..." + err.substr(err.size() - 4000);
  return Status(
      StatusCode::kFailedPrecondition,
      what + " failed (exit " + std::to_string(result.exit_code) + "): " + MaskPasswords(err));
}

}  // namespace

std::vector<std::string> DumpExclusionArgs(const ResolvedObjectFilter& excluded) {
  std::vector<std::string> args;
  args.reserve(excluded.excluded_schemas.size() + excluded.excluded_tables.size());
  for (const auto& schema : excluded.excluded_schemas) {
    args.push_back("--exclude-schema=" + QuoteIdent(schema));
  }
  for (const auto& table : excluded.excluded_tables) {
    args.push_back("--exclude-table=" + QualifiedName(table.schema, table.name));
  }
  return args;
}

Status DumpSchema(const SchemaTools& tools, const ConnInfo& source_db, const std::string& snapshot,
                  const ResolvedObjectFilter& excluded, const std::string& archive) {
  std::vector<std::string> argv = {tools.pg_dump, "--schema-only", "--format=custom",
                                   "--file=" + archive,
                                   "--dbname=" + source_db.ToKeyValueWithoutSecrets()};
  if (!snapshot.empty()) argv.push_back("--snapshot=" + snapshot);
  for (auto& arg : DumpExclusionArgs(excluded)) argv.push_back(std::move(arg));
  if (tools.lock_wait_timeout.count() > 0) {
    // Without it pg_dump waits for a table locked by another session as
    // long as that session keeps its lock, saying nothing.
    argv.push_back("--lock-wait-timeout=" + std::to_string(tools.lock_wait_timeout.count()));
  }
  Result<ProcessResult> ran = RunProcess(argv, ChildOptions(source_db, tools.cancel));
  if (!ran.ok()) return ran.status().WithContext("pg_dump");
  if (!ran->ok()) return ToolFailed("pg_dump --schema-only", *ran);
  return Status::Ok();
}

namespace {

// Whether a `pg_restore --list` line names an entry `filter` leaves out.
// Lines look like "215; 1259 16390 INDEX public orders_customer_idx owner":
// dump id; catalog (pg_class 1259, pg_constraint 2606) and OID of the object
// on the source; description; schema; name; owner.
bool Filtered(const std::string& line, const RestoreListFilter& filter) {
  static const std::regex kEntry(R"(^\d+; (\d+) (\d+) (.*)$)");
  std::smatch m;
  if (!std::regex_match(line, m, kEntry)) return false;
  const std::string rest = m[3].str();
  for (const auto& ext : filter.extensions) {
    if (rest.rfind("EXTENSION - " + ext + " ", 0) == 0 ||
        rest.rfind("COMMENT - EXTENSION " + ext + " ", 0) == 0) {
      return true;
    }
  }
  // "PUBLICATION - name owner", "COMMENT - PUBLICATION name owner", and the
  // members: "PUBLICATION TABLE schema name table", "PUBLICATION TABLES IN
  // SCHEMA - name schema".
  for (const auto& pub : filter.publications) {
    if (rest.rfind("PUBLICATION - " + pub + " ", 0) == 0 ||
        rest.rfind("COMMENT - PUBLICATION " + pub + " ", 0) == 0) {
      return true;
    }
    static const std::regex kMember(R"(^PUBLICATION (TABLE|TABLES IN SCHEMA) \S+ (\S+) .*$)");
    std::smatch member;
    if (std::regex_match(rest, member, kMember) && member[2].str() == pub) return true;
  }
  const auto catalog = static_cast<uint32_t>(std::stoul(m[1].str()));
  const auto oid = static_cast<uint32_t>(std::stoul(m[2].str()));
  if (filter.present.count({catalog, oid}) != 0) return true;
  if (catalog == 1259 && rest.rfind("INDEX ", 0) == 0 && rest.rfind("INDEX ATTACH ", 0) != 0) {
    return filter.index_oids.count(oid) != 0;
  }
  if (catalog == 2606 && rest.rfind("CONSTRAINT ", 0) == 0) {
    return filter.constraint_oids.count(oid) != 0;
  }
  return false;
}

}  // namespace

Result<std::string> ListArchive(const SchemaTools& tools, const std::string& archive) {
  ProcessOptions options;
  options.timeout = std::chrono::minutes(10);
  options.cancel = tools.cancel;
  Result<ProcessResult> ran = RunProcess({tools.pg_restore, "--list", archive}, options);
  if (!ran.ok()) return ran.status().WithContext("pg_restore --list");
  if (!ran->ok()) return ToolFailed("pg_restore --list", *ran);
  return std::move(ran->out);
}

Result<int> WriteRestoreList(const std::string& listing, const RestoreListFilter& filter,
                             const std::string& list_path) {
  std::ofstream list(list_path);
  if (!list) return Status(StatusCode::kIoError, "cannot write " + list_path);
  std::istringstream lines(listing);
  std::string line;
  int kept = 0;
  while (std::getline(lines, line)) {
    if (Filtered(line, filter)) {
      list << ";" << line << "\n";  // commented out: not restored
      continue;
    }
    list << line << "\n";
    if (!line.empty() && line[0] != ';') ++kept;
  }
  if (!list.flush()) return Status(StatusCode::kIoError, "cannot write " + list_path);
  return kept;
}

Status RestoreSection(const SchemaTools& tools, const ConnInfo& target_db,
                      const std::string& archive, const std::string& list_path,
                      const std::string& section, int jobs, const RestorePolicy& policy) {
  std::vector<std::string> argv = {tools.pg_restore, "--section=" + section, "--exit-on-error",
                                   "--use-list=" + list_path,
                                   "--dbname=" + target_db.ToKeyValueWithoutSecrets()};
  if (!policy.preserve_owners) argv.emplace_back("--no-owner");
  if (!policy.preserve_acl) argv.emplace_back("--no-privileges");
  if (section == "pre-data") {
    argv.emplace_back("--single-transaction");
  } else if (jobs > 1) {
    argv.push_back("--jobs=" + std::to_string(jobs));
  }
  argv.push_back(archive);
  Result<ProcessResult> ran = RunProcess(argv, ChildOptions(target_db, tools.cancel));
  if (!ran.ok()) return ran.status().WithContext("pg_restore");
  if (!ran->ok()) return ToolFailed("pg_restore --section=" + section, *ran);
  return Status::Ok();
}

Result<std::string> RestoreScript(const SchemaTools& tools, const std::string& archive,
                                  const std::string& list_path, const RestorePolicy& policy,
                                  const std::string& section) {
  std::vector<std::string> argv = {tools.pg_restore, "--file=-", "--use-list=" + list_path};
  if (!section.empty()) argv.push_back("--section=" + section);
  if (!policy.preserve_owners) argv.emplace_back("--no-owner");
  if (!policy.preserve_acl) argv.emplace_back("--no-privileges");
  argv.push_back(archive);
  ProcessOptions options;
  options.timeout = std::chrono::minutes(10);
  options.cancel = tools.cancel;
  Result<ProcessResult> ran = RunProcess(argv, options);
  if (!ran.ok()) return ran.status().WithContext("pg_restore --file=-");
  if (!ran->ok()) return ToolFailed("pg_restore --file=-", *ran);
  return std::move(ran->out);
}

}  // namespace pgcourier
