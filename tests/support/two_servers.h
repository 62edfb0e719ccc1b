// A source server and a target server for a test, started afresh for it:
//
//   class ShopTest : public pgcourier::testing::SourceAndTargetTest {
//    protected:
//     void SetUp() override {
//       pgcourier::testing::SourceAndTargetOptions options;
//       options.logical_source = true;
//       options.target.major = 17;
//       options.database = "shop";
//       options.database_sql = "CREATE TABLE public.items (id int PRIMARY KEY)";
//       ASSERT_NO_FATAL_FAILURE(StartServers(options));
//     }
//   };
//   TEST_F(ShopTest, Moves) { ... source_->ConnString("shop") ... dir_ ... }
//   TEST_F(ShopTest, Replicates) {
//     ASSERT_NO_FATAL_FAILURE(StartReplicating(MigrationOptions("shop", Method::kReplication)));
//     ...
//   }
//
// A test that needs servers of its own kind calls StartServers in its body;
// parameterised tests derive from SourceAndTargetFixture<TestWithParam<T>>.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "migrate/migration.h"
#include "pg_cluster.h"

namespace pgcourier::testing {

// A role to connect as instead of the bootstrap superuser: created once its
// server runs, and asked for its password (scram-sha-256) over TCP.
struct LoginRole {
  std::string name;  // empty: no such role
  std::string password;
  // Attributes after LOGIN: "SUPERUSER", or say "REPLICATION" or "CREATEDB"
  // for a user that is no superuser. With REPLICATION, replication
  // connections of the role ask for the password too.
  std::string attributes = "SUPERUSER";
};

struct SourceAndTargetOptions {
  // Each server's own options; both are PostgreSQL 15 unless `major` says
  // otherwise.
  PgClusterOptions source;
  PgClusterOptions target;
  // The source is ready for logical replication: LogicalReplicationSettings()
  // come before source.settings (which may override them).
  bool logical_source = false;
  // Roles made on each server; their pg_hba.conf lines come before
  // source.hba_lines and target.hba_lines.
  LoginRole source_role;
  LoginRole target_role;
  // A database made on the source (after source_role), and SQL run in it.
  std::string database;
  std::string database_sql;
};

// The settings that make a server ready for logical replication (as a
// source): wal_level = logical, max_replication_slots = 10 and
// max_wal_senders = 10.
std::vector<std::string> LogicalReplicationSettings();

// Starts the source, then the target (even when the source failed), and
// prepares them as `options` say. Any failure is recorded (the servers' at
// `file`:`line`, with the server log) and fatal: call it in
// ASSERT_NO_FATAL_FAILURE, or check HasFatalFailure() after it.
void StartSourceAndTarget(const SourceAndTargetOptions& options, std::unique_ptr<PgCluster>& source,
                          std::unique_ptr<PgCluster>& target, const char* file = __builtin_FILE(),
                          int line = __builtin_LINE());

// The options of a migration of `database` from `source` into `target`
// (whose string names `postgres`, so the database keeps its name) with
// `method`, 2 jobs, a 10 s connect timeout and `work_dir`.
MigrateOptions MigrationOptionsFor(const PgCluster& source, const PgCluster& target,
                                   const std::string& database, Method method,
                                   const std::string& work_dir);

// Migrates with `options` (replication), expecting its one database to
// replicate ("syncing"); a failure is fatal and names what blocked it: the
// failed checks, the database's error and the differences found.
void StartReplicating(const MigrateOptions& options, const char* file = __builtin_FILE(),
                      int line = __builtin_LINE());

// A gtest fixture with a source and a target server; Base is ::testing::Test
// or a ::testing::TestWithParam<T>.
template <typename Base>
class SourceAndTargetFixture : public Base {
 protected:
  // Starts source_ and target_ as StartSourceAndTarget does, and names dir_.
  void StartServers(const SourceAndTargetOptions& options = {}, const char* file = __builtin_FILE(),
                    int line = __builtin_LINE()) {
    StartSourceAndTarget(options, source_, target_, file, line);
    if (source_ != nullptr) dir_ = source_->base_dir() + "/work";
  }

  // MigrationOptionsFor these servers, into dir_.
  MigrateOptions MigrationOptions(const std::string& database, Method method) const {
    return MigrationOptionsFor(*source_, *target_, database, method, dir_);
  }

  std::unique_ptr<PgCluster> source_;
  std::unique_ptr<PgCluster> target_;
  // A work directory for pgcourier (--dir), in the source's temporary
  // directory: it does not exist yet, and goes with the source.
  std::string dir_;
};

using SourceAndTargetTest = SourceAndTargetFixture<::testing::Test>;

}  // namespace pgcourier::testing
