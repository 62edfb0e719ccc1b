// What pgcourier needs to know about one database's contents, read over a
// connection to that database. Reading never changes anything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "util/status.h"

namespace pgcourier {

struct TableName {
  std::string schema;
  std::string name;
  std::string Display() const { return schema + "." + name; }
};

struct InstalledExtension {
  std::string name;
  std::string version;
  std::string schema;
};

struct Language {
  std::string name;
  bool from_extension = false;  // created by CREATE EXTENSION (plpgsql, plperl, ...)
};

struct DatabaseFacts {
  std::string name;
  std::vector<InstalledExtension> extensions;
  std::vector<Language> languages;
  // Roles that own objects of the database or hold privileges on them
  // (pg_* roles left out).
  std::vector<std::string> referenced_roles;
  // User relations (tables, partitioned tables, materialized views, views,
  // sequences) outside system schemas and not created by an extension.
  int64_t user_relations = 0;
  std::vector<TableName> sample_user_relations;  // the first few, for messages
  int64_t user_tables = 0;                       // ordinary and partitioned tables
  // Logged ordinary tables that have neither a primary key nor a usable
  // replica identity: publishing them makes UPDATE/DELETE fail on the source.
  std::vector<TableName> tables_without_identity;
  std::vector<TableName> unlogged_tables;
  int64_t large_objects = 0;
  // Tables the connected user neither owns nor is a member of the owner of:
  // a non-superuser cannot add them to a publication.
  std::vector<TableName> tables_not_owned;
  bool can_create_in_database = false;  // CREATE privilege on the database
};

Result<DatabaseFacts> ReadDatabaseFacts(Connection& conn, Deadline deadline);

}  // namespace pgcourier
