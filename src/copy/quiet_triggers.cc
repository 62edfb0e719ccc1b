#include "copy/quiet_triggers.h"

#include <set>

#include "pg/quote.h"

namespace pgcourier {
namespace {

struct Trigger {
  std::string name;
  char enabled = 'O';  // pg_trigger.tgenabled: O origin, A always, R replica, D disabled
};

// May the target user SET session_replication_role?
Result<bool> MaySetReplicaRole(Connection& target) {
  const std::string granted =
      target.server_version() >= 150000
          ? "pg_catalog.has_parameter_privilege('session_replication_role', 'SET')"
          : "false";
  Result<QueryResult> may = target.Exec("SELECT r.rolsuper OR " + granted +
                                        " FROM pg_catalog.pg_roles r WHERE r.rolname = "
                                        "current_user");
  if (!may.ok()) return may.status().WithContext("reading the target user's rights");
  return may->rows() > 0 && may->GetBool(0, 0);
}

QuietTriggers Plan(const std::string& table, const std::vector<Trigger>& triggers,
                   bool may_replica) {
  QuietTriggers quiet;
  std::vector<const Trigger*> fire_as_origin;
  bool fire_as_replica = false;
  for (const auto& t : triggers) {
    if (t.enabled == 'O' || t.enabled == 'A') fire_as_origin.push_back(&t);
    fire_as_replica = fire_as_replica || t.enabled == 'R' || t.enabled == 'A';
  }
  if (fire_as_origin.empty()) return quiet;
  if (may_replica && !fire_as_replica) {
    quiet.before = "SET LOCAL session_replication_role = replica";
    quiet.how = "session_replication_role = replica";
    return quiet;
  }
  quiet.how = "user triggers disabled for the copy:";
  for (const Trigger* t : fire_as_origin) {
    const std::string alter = "ALTER TABLE ONLY " + table + " ";
    const std::string name = QuoteIdent(t->name);
    quiet.before += (quiet.before.empty() ? "" : "; ") + alter + "DISABLE TRIGGER " + name;
    quiet.after += (quiet.after.empty() ? "" : "; ") + alter +
                   (t->enabled == 'A' ? "ENABLE ALWAYS TRIGGER " : "ENABLE TRIGGER ") + name;
    quiet.how += (t == fire_as_origin.front() ? " " : ", ") + t->name;
  }
  return quiet;
}

}  // namespace

Result<std::map<std::string, QuietTriggers>> PlanQuietTriggers(
    Connection& target, const std::vector<TableToCopy>& tables) {
  std::map<std::string, QuietTriggers> out;
  if (tables.empty()) return out;
  // A partition's clone of its parent's trigger fires on the partition's
  // rows; before 15 clones are marked internal, and tgparentid names them.
  const std::string user_trigger = target.server_version() >= 130000
                                       ? "(NOT t.tgisinternal OR t.tgparentid <> 0)"
                                       : "NOT t.tgisinternal";
  Result<QueryResult> found = target.Exec(
      "SELECT n.nspname, c.relname, t.tgname, t.tgenabled FROM pg_catalog.pg_trigger t "
      "JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid "
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE " +
      user_trigger + " AND t.tgenabled <> 'D' ORDER BY 1, 2, 3");
  if (!found.ok()) return found.status().WithContext("reading the target's triggers");
  std::set<std::string> wanted;
  for (const auto& t : tables) wanted.insert(t.QualifiedName());
  std::map<std::string, std::vector<Trigger>> triggers;
  for (int r = 0; r < found->rows(); ++r) {
    std::string table = QualifiedName(found->GetString(r, 0), found->GetString(r, 1));
    if (wanted.count(table) == 0) continue;
    const std::string enabled = found->GetString(r, 3);
    triggers[table].push_back({found->GetString(r, 2), enabled.empty() ? 'O' : enabled[0]});
  }
  if (triggers.empty()) return out;
  Result<bool> may_replica = MaySetReplicaRole(target);
  if (!may_replica.ok()) return may_replica.status();
  for (const auto& [table, list] : triggers) {
    QuietTriggers quiet = Plan(table, list, *may_replica);
    if (!quiet.how.empty()) out.emplace(table, std::move(quiet));
  }
  return out;
}

}  // namespace pgcourier
