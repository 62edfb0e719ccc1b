#include "schema/present_objects.h"

#include <map>
#include <regex>
#include <sstream>

namespace pgcourier {
namespace {

// Per catalog: a query returning (oid, name) of its objects, the name
// qualified enough to be unique, the same on both servers.
const std::map<uint32_t, std::string>& NameQueries() {
  static const std::map<uint32_t, std::string> kQueries = {
      {2606,  // pg_constraint (of tables)
       "SELECT x.oid, pg_catalog.format('%I.%I.%I', n.nspname, c.relname, x.conname) "
       "FROM pg_catalog.pg_constraint x JOIN pg_catalog.pg_class c ON c.oid = x.conrelid "
       "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"},
      {2620,  // pg_trigger
       "SELECT x.oid, pg_catalog.format('%I.%I.%I', n.nspname, c.relname, x.tgname) "
       "FROM pg_catalog.pg_trigger x JOIN pg_catalog.pg_class c ON c.oid = x.tgrelid "
       "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"},
      {2618,  // pg_rewrite
       "SELECT x.oid, pg_catalog.format('%I.%I.%I', n.nspname, c.relname, x.rulename) "
       "FROM pg_catalog.pg_rewrite x JOIN pg_catalog.pg_class c ON c.oid = x.ev_class "
       "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"},
      {3256,  // pg_policy
       "SELECT x.oid, pg_catalog.format('%I.%I.%I', n.nspname, c.relname, x.polname) "
       "FROM pg_catalog.pg_policy x JOIN pg_catalog.pg_class c ON c.oid = x.polrelid "
       "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"},
      {1259,  // pg_class (indexes)
       "SELECT x.oid, pg_catalog.format('%I.%I', n.nspname, x.relname) "
       "FROM pg_catalog.pg_class x JOIN pg_catalog.pg_namespace n ON n.oid = x.relnamespace "
       "WHERE x.relkind IN ('i', 'I')"},
      {3381,  // pg_statistic_ext
       "SELECT x.oid, pg_catalog.format('%I.%I', n.nspname, x.stxname) "
       "FROM pg_catalog.pg_statistic_ext x "
       "JOIN pg_catalog.pg_namespace n ON n.oid = x.stxnamespace"},
      {3466,  // pg_event_trigger
       "SELECT x.oid, pg_catalog.quote_ident(x.evtname) FROM pg_catalog.pg_event_trigger x"},
      {6104,  // pg_publication
       "SELECT x.oid, pg_catalog.quote_ident(x.pubname) FROM pg_catalog.pg_publication x"},
      {6106,  // pg_publication_rel
       "SELECT x.oid, pg_catalog.format('%I:%I.%I', p.pubname, n.nspname, c.relname) "
       "FROM pg_catalog.pg_publication_rel x "
       "JOIN pg_catalog.pg_publication p ON p.oid = x.prpubid "
       "JOIN pg_catalog.pg_class c ON c.oid = x.prrelid "
       "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"},
  };
  return kQueries;
}

}  // namespace

std::vector<ArchiveEntry> ParseArchiveList(const std::string& list) {
  static const std::regex kEntry(R"(^\d+; (\d+) (\d+) (.*)$)");
  std::vector<ArchiveEntry> entries;
  std::istringstream lines(list);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, kEntry)) continue;
    entries.push_back({static_cast<uint32_t>(std::stoul(m[1].str())),
                       static_cast<uint32_t>(std::stoul(m[2].str())), m[3].str()});
  }
  return entries;
}

Result<std::set<std::pair<uint32_t, uint32_t>>> FindPresentObjects(
    Connection& source, Connection& target, const std::vector<ArchiveEntry>& entries) {
  std::set<std::pair<uint32_t, uint32_t>> present;
  std::map<uint32_t, std::set<uint32_t>> wanted;  // catalog -> OIDs
  for (const auto& e : entries) {
    if (NameQueries().count(e.catalog) != 0) wanted[e.catalog].insert(e.oid);
  }
  for (const auto& [catalog, oids] : wanted) {
    const std::string& sql = NameQueries().at(catalog);
    Result<QueryResult> on_target = target.Exec(sql);
    if (!on_target.ok()) {
      return on_target.status().WithContext("listing the target's objects of catalog " +
                                            std::to_string(catalog));
    }
    std::set<std::string> target_names;
    for (int r = 0; r < on_target->rows(); ++r) target_names.insert(on_target->GetString(r, 1));
    Result<QueryResult> on_source = source.Exec(sql);
    if (!on_source.ok()) {
      return on_source.status().WithContext("listing the source's objects of catalog " +
                                            std::to_string(catalog));
    }
    for (int r = 0; r < on_source->rows(); ++r) {
      const auto oid = static_cast<uint32_t>(on_source->GetInt(r, 0));
      if (oids.count(oid) != 0 && target_names.count(on_source->GetString(r, 1)) != 0) {
        present.insert({catalog, oid});
      }
    }
  }
  return present;
}

}  // namespace pgcourier
