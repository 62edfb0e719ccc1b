#include "migrate/recorded_run.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <random>
#include <tuple>

namespace pgcourier {

using nlohmann::json;

std::string NewRunId() {
  std::random_device random;
  return fmt::format("{:08x}{:04x}", random(), random() & 0xffffU);
}

json OptionsToJson(const MigrateOptions& o) {
  return {{"jobs", o.check.jobs},
          {"include_databases", o.check.include_databases},
          {"exclude_databases", o.check.exclude_databases},
          {"pg_bindirs", o.check.pg_bindirs},
          {"include_schemas", o.filter.include_schemas},
          {"exclude_schemas", o.filter.exclude_schemas},
          {"include_tables", o.filter.include_tables},
          {"exclude_tables", o.filter.exclude_tables},
          {"exclude_table_data", o.filter.exclude_table_data},
          {"preserve_owners", o.policy.preserve_owners},
          {"preserve_acl", o.policy.preserve_acl},
          {"roles", o.roles},
          {"copy_passwords", o.role_options.copy_passwords},
          {"replica_identity_full", o.replica_identity_full},
          {"verify_counts_only", o.verify_counts_only},
          {"copy_as_text", o.copy_as_text},
          {"split_bytes", o.split_bytes}};
}

Status OptionsFromJson(const std::string& text, MigrateOptions& o) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status(StatusCode::kFailedPrecondition, "the recorded options of the run are unreadable",
                  "start a new migration in another --dir");
  }
  auto list = [&j](const char* key) {
    std::vector<std::string> out;
    if (j.contains(key) && j[key].is_array()) {
      for (const auto& v : j[key]) {
        if (v.is_string()) out.push_back(v.get<std::string>());
      }
    }
    return out;
  };
  o.check.include_databases = list("include_databases");
  o.check.exclude_databases = list("exclude_databases");
  if (o.check.pg_bindirs.empty()) o.check.pg_bindirs = list("pg_bindirs");
  o.filter.include_schemas = list("include_schemas");
  o.filter.exclude_schemas = list("exclude_schemas");
  o.filter.include_tables = list("include_tables");
  o.filter.exclude_tables = list("exclude_tables");
  o.filter.exclude_table_data = list("exclude_table_data");
  o.policy.preserve_owners = j.value("preserve_owners", false);
  o.policy.preserve_acl = j.value("preserve_acl", false);
  o.roles = j.value("roles", false);
  o.role_options.copy_passwords = j.value("copy_passwords", true);
  o.replica_identity_full = j.value("replica_identity_full", false);
  o.verify_counts_only = j.value("verify_counts_only", false);
  o.copy_as_text = j.value("copy_as_text", false);
  o.split_bytes = j.value("split_bytes", o.split_bytes);
  return Status::Ok();
}

Status ResolveServers(const StoredRun& run, const std::string& work_dir, std::string& source,
                      std::string& target) {
  for (auto [given, recorded, side] : {std::make_tuple(&source, &run.source, "source"),
                                       std::make_tuple(&target, &run.target, "target")}) {
    if (given->empty()) {
      *given = *recorded;
      continue;
    }
    Result<ConnInfo> parsed = ConnInfo::Parse(*given);
    if (!parsed.ok()) return parsed.status();
    if (parsed->Redacted() != *recorded) {
      return Status(StatusCode::kInvalidArgument,
                    fmt::format("the migration in {} moves {} -> {}; the {} given now is {}",
                                work_dir, run.source, run.target, side, parsed->Redacted()),
                    "give the same --source and --target, or none");
    }
  }
  return Status::Ok();
}

json PlannedDatabasesToJson(const std::vector<StoredDatabase>& planned) {
  json out = json::array();
  for (const auto& db : planned) {
    out.push_back({{"name", db.name},
                   {"target_name", db.target_name},
                   {"reason", db.method_reason},
                   {"method", Name(db.method)},
                   {"bytes", db.bytes_total}});
  }
  return out;
}

std::vector<StoredDatabase> PlannedDatabasesFromJson(const std::string& options_json) {
  std::vector<StoredDatabase> out;
  json recorded = json::parse(options_json, nullptr, false);
  if (!recorded.is_object() || !recorded.contains("databases") ||
      !recorded["databases"].is_array()) {
    return out;
  }
  for (const auto& planned : recorded["databases"]) {
    StoredDatabase db;
    db.name = planned.value("name", "");
    if (db.name.empty()) continue;
    db.target_name = planned.value("target_name", db.name);
    db.method = ParseName<Method>(planned.value("method", "copy")).value_or(Method::kCopy);
    db.method_reason = planned.value("reason", "");
    db.bytes_total = planned.value("bytes", int64_t{0});
    out.push_back(std::move(db));
  }
  return out;
}

void DatabaseRecord::Write() {
  Status put = store_.PutDatabase(db_);
  if (!put.ok()) spdlog::warn("recording the state of {}: {}", db_.name, put.ToString());
}

void DatabaseRecord::Step(StoredStep step) {
  step.database = db_.name;
  Status put = store_.PutStep(step);
  if (!put.ok()) spdlog::warn("recording a step of {}: {}", db_.name, put.ToString());
}

StoredDatabase DatabaseRecord::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  return db_;
}

Status DatabaseRecord::Change(Side side, const std::string& object, const std::string& undo) {
  return store_.RecordChange({db_.name, side, object, undo, ChangeState::kMade, ""});
}

RecordChangeFn DatabaseRecord::ChangeRecorder(Side side) {
  return [this, side](const std::string& object, const std::string& undo) {
    return Change(side, object, undo);
  };
}

Status UndoChange(Connection& conn, StateStore& store, const StoredChange& change) {
  PGC_RETURN_IF_ERROR(conn.Run(change.undo_sql).WithContext("undoing " + change.object));
  return store.MarkChangeUndone(change);
}

Result<RecordedMigration> OpenRecorded(const std::string& work_dir, const std::string& source,
                                       const std::string& target) {
  RecordedMigration m;
  Result<std::unique_ptr<StateStore>> opened = StateStore::OpenForRun(work_dir);
  if (!opened.ok()) return opened.status();
  m.store = std::move(*opened);
  Result<std::optional<StoredRun>> run = m.store->Run();
  if (!run.ok()) return run.status();
  if (!*run) {
    return Status(StatusCode::kInvalidArgument, "there is no migration in " + work_dir,
                  "start one with pgcourier migrate --dir " + work_dir);
  }
  m.run = **run;
  PGC_RETURN_IF_ERROR(OptionsFromJson(m.run.options_json, m.options));
  m.options.work_dir = work_dir;
  m.options.check.source = source;
  m.options.check.target = target;
  PGC_RETURN_IF_ERROR(
      ResolveServers(m.run, work_dir, m.options.check.source, m.options.check.target));
  Result<ConnInfo> s = ConnInfo::Parse(m.options.check.source);
  if (!s.ok()) return s.status();
  Result<ConnInfo> t = ConnInfo::Parse(m.options.check.target);
  if (!t.ok()) return t.status();
  m.source = std::move(*s);
  m.target = std::move(*t);
  Result<std::vector<StoredDatabase>> dbs = m.store->Databases();
  if (!dbs.ok()) return dbs.status();
  m.databases = std::move(*dbs);
  return m;
}

}  // namespace pgcourier
