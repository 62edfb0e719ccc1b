#include "two_servers.h"

#include "pg/quote.h"
#include "state_names.h"

namespace pgcourier::testing {
namespace {

// The options of one server: the role's pg_hba.conf lines before the test's
// own, and the source's logical replication settings before its own.
PgClusterOptions ServerOptions(PgClusterOptions options, const LoginRole& role, bool logical) {
  if (!role.name.empty()) {
    std::vector<std::string> hba = {"host all " + role.name + " 127.0.0.1/32 scram-sha-256"};
    if (role.attributes.find("REPLICATION") != std::string::npos) {
      hba.push_back("host replication " + role.name + " 127.0.0.1/32 scram-sha-256");
    }
    options.hba_lines.insert(options.hba_lines.begin(), hba.begin(), hba.end());
  }
  if (logical) {
    const std::vector<std::string> settings = LogicalReplicationSettings();
    options.settings.insert(options.settings.begin(), settings.begin(), settings.end());
  }
  return options;
}

void CreateRole(const PgCluster& cluster, const LoginRole& role) {
  if (role.name.empty()) return;
  Result<std::string> made = cluster.Sql("SET password_encryption = 'scram-sha-256'; CREATE ROLE " +
                                         QuoteIdent(role.name) + " LOGIN " + role.attributes +
                                         " PASSWORD " + QuoteLiteral(role.password));
  ASSERT_TRUE(made.ok()) << "role " << role.name << ": " << made.status().ToString();
}

}  // namespace

std::vector<std::string> LogicalReplicationSettings() {
  return {"wal_level = logical", "max_replication_slots = 10", "max_wal_senders = 10"};
}

void StartSourceAndTarget(const SourceAndTargetOptions& options, std::unique_ptr<PgCluster>& source,
                          std::unique_ptr<PgCluster>& target, const char* file, int line) {
  source = StartClusterOrFail(
      ServerOptions(options.source, options.source_role, options.logical_source), file, line);
  target =
      StartClusterOrFail(ServerOptions(options.target, options.target_role, false), file, line);
  ::testing::ScopedTrace trace(file, line, "preparing the source and the target");
  ASSERT_NE(source, nullptr);
  ASSERT_NE(target, nullptr);
  ASSERT_NO_FATAL_FAILURE(CreateRole(*source, options.source_role));
  ASSERT_NO_FATAL_FAILURE(CreateRole(*target, options.target_role));
  if (options.database.empty()) return;
  Result<std::string> created = source->Sql("CREATE DATABASE " + QuoteIdent(options.database));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  if (options.database_sql.empty()) return;
  Result<std::string> built = source->Sql(options.database_sql, options.database);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
}

MigrateOptions MigrationOptionsFor(const PgCluster& source, const PgCluster& target,
                                   const std::string& database, Method method,
                                   const std::string& work_dir) {
  MigrateOptions options;
  options.check.source = source.ConnString(database);
  options.check.target = target.ConnString("postgres");
  options.check.method = method;
  options.check.jobs = 2;
  options.check.connect_timeout = std::chrono::seconds(10);
  options.work_dir = work_dir;
  return options;
}

void StartReplicating(const MigrateOptions& options, const char* file, int line) {
  ::testing::ScopedTrace trace(file, line, "migrating with the replication method");
  Result<MigrationOutcome> migrated = Migrate(options);
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  std::string blocked;
  for (const auto& item : migrated->check.items) {
    if (item.status == CheckStatus::kFail) blocked += item.code + ": " + item.detail + "; ";
  }
  ASSERT_TRUE(migrated->checks_passed) << blocked;
  ASSERT_EQ(migrated->databases.size(), 1u);
  const DatabaseOutcome& db = migrated->databases[0];
  std::string differences;
  if (db.verification) {
    for (const auto& t : db.verification->tables) {
      if (!t.match()) differences += " table " + t.name + " " + t.error;
    }
    for (const auto& q : db.verification->sequences) {
      if (!q.match()) differences += " sequence " + q.name + " " + q.error;
    }
  }
  ASSERT_EQ(db.state, "syncing") << db.error << differences;
  ASSERT_EQ(db.method, "replication");
}

}  // namespace pgcourier::testing
