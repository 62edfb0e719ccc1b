// `pgcourier check` against real servers set up to pass and to fail each
// check: the library's verdicts here, the command line's exit statuses and
// JSON in check_cli_test.cc.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "pg/connection.h"
#include "pg_cluster.h"
#include "preflight/checker.h"
#include "two_servers.h"
#include "version_pairs.h"

namespace pgcourier {
namespace {

using testing::PgCluster;
using testing::PgClusterOptions;
using testing::StartClusterOrFail;

// A connection string for the whole cluster (no database named).
std::string ClusterConn(const PgCluster& c, const std::string& user = "postgres") {
  return fmt::format("host=127.0.0.1 port={} user={}", c.port(), user);
}

// A source ready for logical replication and a target, both 15.
testing::SourceAndTargetOptions LogicalSource() {
  testing::SourceAndTargetOptions options;
  options.logical_source = true;
  return options;
}

const CheckItem* Find(const CheckReport& report, const std::string& code,
                      const std::string& object_part = "") {
  for (const auto& item : report.items) {
    if (item.code == code && item.object.find(object_part) != std::string::npos) return &item;
  }
  return nullptr;
}

std::string Dump(const CheckReport& report) {
  std::string out;
  for (const auto& i : report.items) {
    out += fmt::format("{} {} [{}] {}\n", CheckStatusName(i.status), i.code, i.object, i.detail);
  }
  return out;
}

// Whether the report has a `code` item about `object_part` with `expected`.
::testing::AssertionResult HasCheck(const CheckReport& report, const std::string& code,
                                    const std::string& object_part, CheckStatus expected) {
  const CheckItem* item = Find(report, code, object_part);
  if (item == nullptr) {
    return ::testing::AssertionFailure() << "no " << code << " about '" << object_part << "'\n"
                                         << Dump(report);
  }
  if (item->status != expected) {
    return ::testing::AssertionFailure()
           << code << " [" << item->object << "] is " << CheckStatusName(item->status)
           << ", expected " << CheckStatusName(expected) << ": " << item->detail << "\n"
           << Dump(report);
  }
  return ::testing::AssertionSuccess();
}

Result<CheckReport> Check(const std::string& source, const std::string& target,
                          Method method = Method::kAuto) {
  CheckOptions options;
  options.source = source;
  options.target = target;
  options.method = method;
  options.connect_timeout = std::chrono::seconds(3);
  return RunChecks(options);
}

constexpr const char* kShopSchema = R"sql(
  CREATE DATABASE shop;
  \c shop
  CREATE TABLE public.customers (id bigserial PRIMARY KEY, email text UNIQUE);
  CREATE TABLE public.orders (id bigserial PRIMARY KEY, customer_id bigint REFERENCES public.customers);
  INSERT INTO public.customers (email) SELECT 'c' || g || '@example.com' FROM generate_series(1, 100) g;
)sql";

// Every pair of majors the machine has, source <= target, source 15 (the
// pg_dump installed here is 15).
class CheckPairTest : public testing::SourceAndTargetFixture<::testing::TestWithParam<int>> {};

TEST_P(CheckPairTest, ReadyPairChoosesReplication) {
  testing::SourceAndTargetOptions servers = LogicalSource();
  servers.target.major = GetParam();
  ASSERT_NO_FATAL_FAILURE(StartServers(servers));
  ASSERT_TRUE(source_->Sql(kShopSchema).ok());

  Result<CheckReport> report = Check(ClusterConn(*source_), ClusterConn(*target_));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(report->blocked()) << Dump(*report);
  EXPECT_EQ(report->Count(CheckStatus::kFail), 0) << Dump(*report);
  ASSERT_TRUE(HasCheck(*report, check_code::kServersDistinct, "", CheckStatus::kPass));
  ASSERT_TRUE(HasCheck(*report, check_code::kVersionCompatible, "", CheckStatus::kPass));
  ASSERT_TRUE(HasCheck(*report, check_code::kPgDump, "", CheckStatus::kPass));
  ASSERT_TRUE(HasCheck(*report, check_code::kWalLevel, "", CheckStatus::kPass));
  ASSERT_TRUE(HasCheck(*report, check_code::kReplicaIdentity, "shop", CheckStatus::kPass));
  EXPECT_EQ(report->tools.major, 15);
  ASSERT_EQ(report->databases.size(), 2u) << "postgres and shop";
  for (const auto& db : report->databases) {
    EXPECT_EQ(db.method, Method::kReplication) << db.name << ": " << db.reason;
    EXPECT_GT(db.size_bytes, 0);
  }
  EXPECT_EQ(report->source.major, 15);
  EXPECT_EQ(report->target.major, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Versions, CheckPairTest, ::testing::ValuesIn(testing::TargetMajors()),
                         testing::VersionPairName);

class CheckTest : public testing::SourceAndTargetTest {};

TEST_F(CheckTest, SameServerUnderTwoNamesIsCaught) {
  PgClusterOptions logical;
  logical.settings = testing::LogicalReplicationSettings();
  source_ = StartClusterOrFail(logical);
  ASSERT_NE(source_, nullptr);
  Result<CheckReport> report =
      Check(fmt::format("postgresql://postgres@localhost:{}", source_->port()),
            fmt::format("host=127.0.0.1 port={} user=postgres dbname=template1", source_->port()));
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->blocked());
  ASSERT_TRUE(HasCheck(*report, check_code::kServersDistinct, "", CheckStatus::kFail));
  EXPECT_TRUE(report->databases.empty()) << "nothing else is read from a server twice";
}

TEST_F(CheckTest, WalLevelReplicaFallsBackToCopyUnderAuto) {
  // wal_level = replica (the default)
  ASSERT_NO_FATAL_FAILURE(StartServers());
  ASSERT_TRUE(source_->Sql(kShopSchema).ok());

  Result<CheckReport> report = Check(ClusterConn(*source_), ClusterConn(*target_));
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->blocked()) << Dump(*report);
  ASSERT_TRUE(HasCheck(*report, check_code::kWalLevel, "", CheckStatus::kWarn));
  for (const auto& db : report->databases) {
    EXPECT_EQ(db.method, Method::kCopy);
    EXPECT_NE(db.reason.find("wal_level"), std::string::npos) << db.reason;
  }

  Result<CheckReport> strict =
      Check(ClusterConn(*source_), ClusterConn(*target_), Method::kReplication);
  ASSERT_TRUE(strict.ok());
  EXPECT_TRUE(strict->blocked());
  ASSERT_TRUE(HasCheck(*strict, check_code::kWalLevel, "", CheckStatus::kFail));
  ASSERT_TRUE(HasCheck(*strict, check_code::kMethod, "shop", CheckStatus::kFail));

  Result<CheckReport> copy = Check(ClusterConn(*source_), ClusterConn(*target_), Method::kCopy);
  ASSERT_TRUE(copy.ok());
  EXPECT_FALSE(copy->blocked());
  EXPECT_EQ(Find(*copy, check_code::kWalLevel), nullptr) << "no replication checks for copy";
}

TEST_F(CheckTest, SlotsAndOriginsAreCounted) {
  testing::SourceAndTargetOptions servers = LogicalSource();
  servers.source.settings = {"max_replication_slots = 1"};
  servers.target.settings = {"max_replication_slots = 0"};
  ASSERT_NO_FATAL_FAILURE(StartServers(servers));
  ASSERT_TRUE(source_->Sql(kShopSchema).ok());  // two databases: postgres and shop

  Result<CheckReport> report =
      Check(ClusterConn(*source_), ClusterConn(*target_), Method::kReplication);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->blocked());
  ASSERT_TRUE(HasCheck(*report, check_code::kReplicationSlots, "source", CheckStatus::kFail));
  ASSERT_TRUE(HasCheck(*report, check_code::kTargetOrigins, "target", CheckStatus::kFail));
  ASSERT_TRUE(HasCheck(*report, check_code::kWalLevel, "", CheckStatus::kPass));

  // One database needs one slot: the source's single slot is enough.
  Result<CheckReport> one = Check(source_->ConnString("shop"), ClusterConn(*target_));
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->databases.size(), 1u);
  ASSERT_TRUE(HasCheck(*one, check_code::kReplicationSlots, "source", CheckStatus::kPass));
  ASSERT_TRUE(HasCheck(*one, check_code::kTargetOrigins, "target", CheckStatus::kWarn));
  EXPECT_EQ(one->databases[0].method, Method::kCopy);
}

TEST_F(CheckTest, MissingExtensionOnNewerTarget) {
  if (!testing::HavePgMajor(17)) GTEST_SKIP() << "PostgreSQL 17 is not installed";
  testing::SourceAndTargetOptions servers = LogicalSource();
  servers.target.major = 17;
  ASSERT_NO_FATAL_FAILURE(StartServers(servers));
  ASSERT_TRUE(source_
                  ->Sql("CREATE DATABASE app; \\c app\nCREATE EXTENSION adminpack; "
                        "CREATE EXTENSION hstore;")
                  .ok());

  Result<CheckReport> report = Check(ClusterConn(*source_), ClusterConn(*target_));
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->blocked());
  ASSERT_TRUE(HasCheck(*report, check_code::kExtensionAvailable, "app: extension adminpack",
                       CheckStatus::kFail));
  ASSERT_TRUE(HasCheck(*report, check_code::kExtensionAvailable, "app: extension hstore",
                       CheckStatus::kPass));
  const CheckItem* adminpack = Find(*report, check_code::kExtensionAvailable, "adminpack");
  EXPECT_NE(adminpack->hint.find("install"), std::string::npos);
}

TEST_F(CheckTest, ExtensionOnlyASuperuserMayCreate) {
  ASSERT_NO_FATAL_FAILURE(StartServers(LogicalSource()));
  ASSERT_TRUE(source_
                  ->Sql("CREATE DATABASE app; \\c app\nCREATE EXTENSION pg_stat_statements; "
                        "CREATE EXTENSION hstore;")
                  .ok());
  ASSERT_TRUE(target_->Sql("CREATE ROLE mover LOGIN CREATEDB").ok());
  Result<CheckReport> report = Check(ClusterConn(*source_), ClusterConn(*target_, "mover"));
  ASSERT_TRUE(report.ok());
  // pg_stat_statements is not trusted; hstore is.
  ASSERT_TRUE(HasCheck(*report, check_code::kExtensionAvailable, "extension pg_stat_statements",
                       CheckStatus::kFail));
  ASSERT_TRUE(
      HasCheck(*report, check_code::kExtensionAvailable, "extension hstore", CheckStatus::kPass));
  // Once the administrator created it in the target database, it passes.
  ASSERT_TRUE(target_
                  ->Sql("CREATE DATABASE app OWNER mover; \\c app\n"
                        "CREATE EXTENSION pg_stat_statements;")
                  .ok());
  Result<CheckReport> again = Check(ClusterConn(*source_), ClusterConn(*target_, "mover"));
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(HasCheck(*again, check_code::kExtensionAvailable, "extension pg_stat_statements",
                       CheckStatus::kPass));
}

TEST_F(CheckTest, NonSuperusersOnBothSides) {
  ASSERT_NO_FATAL_FAILURE(StartServers(LogicalSource()));
  ASSERT_TRUE(source_
                  ->Sql(R"sql(
    CREATE ROLE app LOGIN;
    CREATE DATABASE shop OWNER app;
    \c shop
    CREATE TABLE public.mine (id int PRIMARY KEY);
    ALTER TABLE public.mine OWNER TO app;
    CREATE TABLE public.theirs (id int PRIMARY KEY);)sql")
                  .ok());
  ASSERT_TRUE(target_->Sql("CREATE ROLE mover LOGIN").ok());

  Result<CheckReport> report =
      Check(ClusterConn(*source_, "app") + " dbname=shop", ClusterConn(*target_, "mover"));
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(
      HasCheck(*report, check_code::kSourceReplicationPrivilege, "source", CheckStatus::kWarn));
  ASSERT_TRUE(
      HasCheck(*report, check_code::kTargetSubscriptionPrivilege, "target", CheckStatus::kWarn));
  ASSERT_TRUE(HasCheck(*report, check_code::kPublishPrivilege, "shop", CheckStatus::kWarn));
  ASSERT_TRUE(HasCheck(*report, check_code::kRolesPasswords, "roles", CheckStatus::kWarn));
  // mover may not create the database.
  ASSERT_TRUE(HasCheck(*report, check_code::kDatabaseTarget, "shop", CheckStatus::kFail));
  const CheckItem* publish = Find(*report, check_code::kPublishPrivilege, "shop");
  EXPECT_NE(publish->detail.find("public.theirs"), std::string::npos) << publish->detail;
  EXPECT_EQ(publish->detail.find("public.mine"), std::string::npos) << publish->detail;
  // pg_dump could not read public.theirs.
  ASSERT_TRUE(HasCheck(*report, check_code::kDatabaseReadable, "shop", CheckStatus::kFail));
  EXPECT_NE(Find(*report, check_code::kDatabaseReadable, "shop")->detail.find("public.theirs"),
            std::string::npos);

  // With REPLICATION, CREATEDB and SELECT on public.theirs the remaining
  // blockers are ownership and the target's subscription right.
  ASSERT_TRUE(source_->Sql("GRANT SELECT ON public.theirs TO app", "shop").ok());
  ASSERT_TRUE(source_->Sql("ALTER ROLE app REPLICATION").ok());
  ASSERT_TRUE(target_->Sql("ALTER ROLE mover CREATEDB").ok());
  Result<CheckReport> better =
      Check(ClusterConn(*source_, "app") + " dbname=shop", ClusterConn(*target_, "mover"));
  ASSERT_TRUE(better.ok());
  ASSERT_TRUE(
      HasCheck(*better, check_code::kSourceReplicationPrivilege, "source", CheckStatus::kPass));
  ASSERT_TRUE(HasCheck(*better, check_code::kDatabaseTarget, "shop", CheckStatus::kPass));
  EXPECT_FALSE(better->blocked()) << Dump(*better);
  ASSERT_EQ(better->databases.size(), 1u);
  EXPECT_EQ(better->databases[0].method, Method::kCopy);
}

TEST_F(CheckTest, SubscriptionRightOnPostgres16Plus) {
  int major = 0;
  for (int m : testing::AvailablePgMajors()) {
    if (m >= 16) major = m;
  }
  if (major == 0) GTEST_SKIP() << "no PostgreSQL 16+ installed";
  testing::SourceAndTargetOptions servers = LogicalSource();
  servers.target.major = major;
  ASSERT_NO_FATAL_FAILURE(StartServers(servers));
  ASSERT_TRUE(target_
                  ->Sql("CREATE ROLE mover LOGIN CREATEDB; "
                        "GRANT pg_create_subscription TO mover;")
                  .ok());
  Result<CheckReport> report = Check(ClusterConn(*source_), ClusterConn(*target_, "mover"));
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(
      HasCheck(*report, check_code::kTargetSubscriptionPrivilege, "target", CheckStatus::kPass));
}

TEST_F(CheckTest, UnreachableSourceIsTranslated) {
  target_ = StartClusterOrFail({});
  ASSERT_NE(target_, nullptr);
  auto gone = StartClusterOrFail({});
  ASSERT_NE(gone, nullptr);
  int port = gone->port();
  gone.reset();  // nothing listens there any more
  Result<CheckReport> report =
      Check(fmt::format("host=127.0.0.1 port={} user=postgres", port), ClusterConn(*target_));
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->blocked());
  ASSERT_TRUE(HasCheck(*report, check_code::kSourceConnect, "source", CheckStatus::kFail));
  const CheckItem* item = Find(*report, check_code::kSourceConnect);
  EXPECT_NE(item->detail.find("nothing accepts connections"), std::string::npos) << item->detail;
  EXPECT_FALSE(item->hint.empty());
  ASSERT_TRUE(HasCheck(*report, check_code::kTargetConnect, "target", CheckStatus::kPass));
}

TEST_F(CheckTest, FullTargetServer) {
  testing::SourceAndTargetOptions servers = LogicalSource();
  // --jobs 4 and one database need 14 target sessions (MigrationSessions);
  // with 3 of 12 slots held, 9 are free: enough for --jobs 2.
  servers.target.settings = {"max_connections = 12", "superuser_reserved_connections = 0"};
  ASSERT_NO_FATAL_FAILURE(StartServers(servers));
  Result<ConnInfo> info = ConnInfo::Parse(target_->ConnString());
  ASSERT_TRUE(info.ok());
  std::vector<std::unique_ptr<Connection>> held;
  auto hold = [&](int count) {
    for (int i = 0; i < count; ++i) {
      Result<std::unique_ptr<Connection>> c = Connection::Connect(*info, ConnectOptions{});
      ASSERT_TRUE(c.ok()) << c.status().ToString();
      held.push_back(std::move(*c));
    }
  };
  ASSERT_NO_FATAL_FAILURE(hold(3));
  Result<CheckReport> tight = Check(ClusterConn(*source_), ClusterConn(*target_));
  ASSERT_TRUE(tight.ok());
  ASSERT_TRUE(HasCheck(*tight, check_code::kTargetConnections, "target", CheckStatus::kWarn));
  EXPECT_NE(Find(*tight, check_code::kTargetConnections)->hint.find("--jobs 2"), std::string::npos)
      << Find(*tight, check_code::kTargetConnections)->hint;

  ASSERT_NO_FATAL_FAILURE(hold(9));  // now every slot is taken
  Result<CheckReport> full = Check(ClusterConn(*source_), ClusterConn(*target_));
  ASSERT_TRUE(full.ok());
  EXPECT_TRUE(full->blocked());
  ASSERT_TRUE(HasCheck(*full, check_code::kTargetConnect, "target", CheckStatus::kFail));
  EXPECT_NE(Find(*full, check_code::kTargetConnect)->detail.find("no free connection slots"),
            std::string::npos);
}

TEST_F(CheckTest, TargetDatabaseWithDataIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartServers(LogicalSource()));
  ASSERT_TRUE(source_->Sql(kShopSchema).ok());
  ASSERT_TRUE(
      target_->Sql("CREATE DATABASE shop; \\c shop\nCREATE TABLE public.old (x int);").ok());
  Result<CheckReport> report = Check(ClusterConn(*source_), ClusterConn(*target_));
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->blocked());
  ASSERT_TRUE(HasCheck(*report, check_code::kDatabaseTarget, "shop", CheckStatus::kFail));
  EXPECT_NE(Find(*report, check_code::kDatabaseTarget, "shop")->detail.find("public.old"),
            std::string::npos);
  ASSERT_TRUE(HasCheck(*report, check_code::kDatabaseTarget, "postgres", CheckStatus::kPass));
}

TEST_F(CheckTest, DatabaseSelection) {
  ASSERT_NO_FATAL_FAILURE(StartServers(LogicalSource()));
  ASSERT_TRUE(source_
                  ->Sql("CREATE DATABASE shop; CREATE DATABASE shop_archive; "
                        "CREATE DATABASE blog; CREATE DATABASE rdsadmin;")
                  .ok());
  auto names = [](const CheckReport& r) {
    std::vector<std::string> out;
    for (const auto& d : r.databases) out.push_back(d.name + ">" + d.target_name);
    return out;
  };

  Result<CheckReport> all = Check(ClusterConn(*source_), ClusterConn(*target_));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(names(*all), (std::vector<std::string>{"blog>blog", "postgres>postgres", "shop>shop",
                                                   "shop_archive>shop_archive"}))
      << "templates and provider admin databases are left out";

  CheckOptions options;
  options.source = ClusterConn(*source_);
  options.target = ClusterConn(*target_);
  options.include_databases = {"shop*"};
  options.exclude_databases = {"*archive"};
  Result<CheckReport> filtered = RunChecks(options);
  ASSERT_TRUE(filtered.ok());
  EXPECT_EQ(names(*filtered), (std::vector<std::string>{"shop>shop"}));

  options.include_databases = {"nomatch*"};
  options.exclude_databases.clear();
  Result<CheckReport> none = RunChecks(options);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->blocked()) << "a filter that matches nothing never means everything";
  ASSERT_TRUE(HasCheck(*none, check_code::kDatabasesSelected, "", CheckStatus::kFail));

  // A database named in the source string is moved alone, into the one the
  // target string names.
  Result<CheckReport> renamed =
      Check(source_->ConnString("blog"), ClusterConn(*target_) + " dbname=neondb");
  ASSERT_TRUE(renamed.ok()) << renamed.status().ToString();
  EXPECT_EQ(names(*renamed), (std::vector<std::string>{"blog>neondb"}));
  ASSERT_TRUE(HasCheck(*renamed, check_code::kTargetConnect, "target", CheckStatus::kPass));
}

TEST_F(CheckTest, MissingRolesAreListedProviderRolesLeftOut) {
  ASSERT_NO_FATAL_FAILURE(StartServers(LogicalSource()));
  ASSERT_TRUE(source_
                  ->Sql(R"sql(
    CREATE ROLE shop_owner; CREATE ROLE reporting; CREATE ROLE azure_pg_admin;
    CREATE DATABASE shop;
    \c shop
    CREATE TABLE public.orders (id int PRIMARY KEY);
    ALTER TABLE public.orders OWNER TO shop_owner;
    GRANT SELECT ON public.orders TO reporting;
    ALTER SCHEMA public OWNER TO azure_pg_admin;)sql")
                  .ok());
  Result<CheckReport> report = Check(ClusterConn(*source_), ClusterConn(*target_));
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(HasCheck(*report, check_code::kRolesMissing, "roles", CheckStatus::kWarn));
  const CheckItem* item = Find(*report, check_code::kRolesMissing);
  EXPECT_NE(item->detail.find("shop_owner"), std::string::npos) << item->detail;
  EXPECT_NE(item->detail.find("reporting"), std::string::npos) << item->detail;
  EXPECT_NE(item->detail.find("provider roles left out: azure_pg_admin"), std::string::npos)
      << item->detail;
  ASSERT_TRUE(HasCheck(*report, check_code::kRolesPasswords, "roles", CheckStatus::kPass));
  EXPECT_FALSE(report->blocked()) << "missing roles do not block the default owner policy";
}

TEST_F(CheckTest, LanguageMissingOnTarget) {
  ASSERT_NO_FATAL_FAILURE(StartServers(LogicalSource()));
  // A procedural language that is not an extension, as old databases have.
  ASSERT_TRUE(source_
                  ->Sql(R"sql(
    CREATE DATABASE legacy;
    \c legacy
    CREATE FUNCTION public.legacy_handler() RETURNS language_handler
      AS '$libdir/plpgsql', 'plpgsql_call_handler' LANGUAGE c;
    CREATE LANGUAGE pllegacy HANDLER public.legacy_handler;)sql")
                  .ok());
  Result<CheckReport> report = Check(ClusterConn(*source_), ClusterConn(*target_));
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(HasCheck(*report, check_code::kLanguageAvailable, "legacy: language pllegacy",
                       CheckStatus::kFail));
  EXPECT_TRUE(report->blocked());
}

TEST_F(CheckTest, ReplicationCaveatsAreListed) {
  ASSERT_NO_FATAL_FAILURE(StartServers(LogicalSource()));
  ASSERT_TRUE(source_
                  ->Sql(R"sql(
    CREATE DATABASE app;
    \c app
    CREATE TABLE public.with_pk (id int PRIMARY KEY);
    CREATE TABLE public.no_pk (x int);
    CREATE TABLE public.full_identity (x int);
    ALTER TABLE public.full_identity REPLICA IDENTITY FULL;
    CREATE TABLE public.nothing_identity (id int PRIMARY KEY);
    ALTER TABLE public.nothing_identity REPLICA IDENTITY NOTHING;
    CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY);
    SELECT lo_from_bytea(0, 'blob');)sql")
                  .ok());
  Result<CheckReport> report = Check(ClusterConn(*source_), ClusterConn(*target_));
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(HasCheck(*report, check_code::kReplicaIdentity, "app", CheckStatus::kWarn));
  const std::string& detail = Find(*report, check_code::kReplicaIdentity, "app")->detail;
  EXPECT_NE(detail.find("public.no_pk"), std::string::npos) << detail;
  EXPECT_NE(detail.find("public.nothing_identity"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("public.with_pk"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("public.full_identity"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("public.scratch"), std::string::npos) << detail;
  ASSERT_TRUE(HasCheck(*report, check_code::kLargeObjects, "app", CheckStatus::kWarn));
  ASSERT_TRUE(HasCheck(*report, check_code::kUnloggedTables, "app", CheckStatus::kWarn));
  EXPECT_FALSE(report->blocked());
  for (const auto& db : report->databases) EXPECT_EQ(db.method, Method::kReplication) << db.name;
}

TEST_F(CheckTest, OlderTargetAndMissingPgDump) {
  if (!testing::HavePgMajor(17)) GTEST_SKIP() << "PostgreSQL 17 is not installed";
  // A 17 source: this machine has pg_dump 15 only (17's package ships servers).
  testing::SourceAndTargetOptions servers = LogicalSource();
  servers.source.major = 17;
  ASSERT_NO_FATAL_FAILURE(StartServers(servers));
  Result<CheckReport> report = Check(ClusterConn(*source_), ClusterConn(*target_));
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(HasCheck(*report, check_code::kVersionCompatible, "", CheckStatus::kFail));
  ASSERT_TRUE(HasCheck(*report, check_code::kPgDump, "pg_dump", CheckStatus::kFail));
  const CheckItem* tool = Find(*report, check_code::kPgDump, "pg_dump");
  EXPECT_NE(tool->hint.find("postgresql-client-17"), std::string::npos) << tool->hint;
  EXPECT_NE(tool->detail.find("(15)"), std::string::npos)
      << "lists what it found: " << tool->detail;
}

TEST_F(CheckTest, LockTableTooSmallForOneTransactionRestore) {
  testing::SourceAndTargetOptions servers = LogicalSource();
  servers.target.settings = {"max_locks_per_transaction = 10", "max_connections = 20"};
  ASSERT_NO_FATAL_FAILURE(StartServers(servers));
  ASSERT_TRUE(source_->Sql("CREATE DATABASE many").ok());
  ASSERT_TRUE(source_
                  ->Sql("DO $$ BEGIN FOR i IN 1..150 LOOP EXECUTE format('CREATE TABLE t%s (v "
                        "text)', i); END LOOP; END $$",
                        "many")
                  .ok());
  CheckOptions options;
  options.source = source_->ConnString("many");
  options.target = ClusterConn(*target_);
  Result<CheckReport> report = RunChecks(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  // 150 tables and their TOAST tables against 10 x 20 slots on the target;
  // the source's default lock table has room.
  ASSERT_TRUE(HasCheck(*report, check_code::kTargetLocks, "target", CheckStatus::kWarn));
  ASSERT_TRUE(HasCheck(*report, check_code::kSourceLocks, "source", CheckStatus::kPass));
  EXPECT_FALSE(report->blocked()) << "an estimate warns, never blocks";
}

TEST_F(CheckTest, StorageLimit) {
  ASSERT_NO_FATAL_FAILURE(StartServers(LogicalSource()));
  CheckOptions options;
  options.source = ClusterConn(*source_);
  options.target = ClusterConn(*target_);
  options.target_storage_limit = 1024 * 1024;  // 1 MB: less than any database
  Result<CheckReport> report = RunChecks(options);
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(HasCheck(*report, check_code::kTargetSize, "target", CheckStatus::kFail));
  options.target_storage_limit = int64_t{1} << 40;
  Result<CheckReport> roomy = RunChecks(options);
  ASSERT_TRUE(roomy.ok());
  ASSERT_TRUE(HasCheck(*roomy, check_code::kTargetSize, "target", CheckStatus::kPass));
}

TEST_F(CheckTest, ReadOnlyStandbyTargetIsRefused) {
  ASSERT_NO_FATAL_FAILURE(StartServers(LogicalSource()));
  // A target in recovery: a standby made by hand from a base backup is slow
  // to set up; standby.signal on the target's own data directory does it.
  ASSERT_TRUE(target_->Stop().ok());
  {
    std::string signal = target_->data_dir() + "/standby.signal";
    FILE* f = std::fopen(signal.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  ASSERT_TRUE(target_->Restart().ok()) << target_->LogTail();
  Result<CheckReport> report = Check(ClusterConn(*source_), ClusterConn(*target_));
  ASSERT_TRUE(report.ok());
  ASSERT_TRUE(HasCheck(*report, check_code::kTargetWritable, "target", CheckStatus::kFail));
}

TEST(CheckInputTest, BadConnectionStringIsAnInputError) {
  Result<CheckReport> report = Check("host=x bogus=1", "host=y");
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(report.status().message().find("--source"), std::string::npos);
}

}  // namespace
}  // namespace pgcourier
