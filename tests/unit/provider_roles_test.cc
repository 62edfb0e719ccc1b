#include "roles/provider_roles.h"

#include <gtest/gtest.h>

namespace pgcourier {
namespace {

TEST(ProviderRolesTest, PostgresReservedPrefix) {
  EXPECT_TRUE(IsProviderRole("pg_monitor"));
  EXPECT_TRUE(IsProviderRole("pg_read_all_data"));
  EXPECT_TRUE(IsProviderRole("pg_"));
  EXPECT_FALSE(IsProviderRole("pgadmin")) << "only the pg_ prefix is reserved";
  EXPECT_FALSE(IsProviderRole("app_pg_reader"));
}

TEST(ProviderRolesTest, ManagedProviders) {
  for (const char* name :
       {"rds_superuser", "rdsadmin", "rds_replication", "azure_pg_admin", "azuresu",
        "cloudsqlsuperuser", "cloudsqladmin", "alloydbsuperuser", "google_sql_user",
        "aiven_extras_admin", "neon_superuser", "cloud_admin", "supabase_admin"}) {
    EXPECT_TRUE(IsProviderRole(name)) << name;
  }
}

TEST(ProviderRolesTest, OrdinaryRolesAreNotProviderRoles) {
  for (const char* name : {"postgres", "app_owner", "alice", "", "cloud_admin2", "my_rds_user",
                           "RDS_SUPERUSER", "Azure_pg_admin", "neo", "pg"}) {
    EXPECT_FALSE(IsProviderRole(name)) << "'" << name << "'";
  }
}

}  // namespace
}  // namespace pgcourier
