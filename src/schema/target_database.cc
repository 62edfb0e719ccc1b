#include "schema/target_database.h"

#include <fmt/format.h>

#include "pg/quote.h"

namespace pgcourier {
namespace {

// The CREATE DATABASE statement for the source database's row of
// pg_database (encoding, collate, ctype, provider, ICU or builtin locale).
Result<std::string> CreateStatement(const QueryResult& db, const std::string& target_name,
                                    int target_version) {
  std::string sql =
      fmt::format("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}",
                  QuoteIdent(target_name), QuoteLiteral(db.GetString(0, 0)),
                  QuoteLiteral(db.GetString(0, 1)), QuoteLiteral(db.GetString(0, 2)));
  const std::string provider = db.GetString(0, 3);
  if (provider == "i" || provider == "b") {
    if (target_version < 150000) {
      return Status(StatusCode::kFailedPrecondition,
                    "the source database uses the ICU locale provider, which the target's "
                    "version does not support",
                    "use a target running PostgreSQL 15 or newer");
    }
    sql += provider == "i" ? " LOCALE_PROVIDER icu ICU_LOCALE "
                           : " LOCALE_PROVIDER builtin BUILTIN_LOCALE ";
    sql += QuoteLiteral(db.GetString(0, 4));
  }
  return sql;
}

}  // namespace

Status CreateTargetDatabase(Connection& source, Connection& target, const TargetDatabaseSpec& spec,
                            const std::function<Status()>& before_create) {
  const int version = source.server_version();
  const std::string provider = version >= 150000 ? "d.datlocprovider" : "'c'";
  const std::string icu = version >= 170000   ? "d.datlocale"
                          : version >= 150000 ? "d.daticulocale"
                                              : "NULL";
  Result<QueryResult> db =
      source.ExecParams("SELECT pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, " +
                            provider + ", " + icu + " FROM pg_database d WHERE d.datname = $1",
                        {spec.source_name});
  if (!db.ok()) return db.status();
  if (db->rows() != 1) {
    return Status(StatusCode::kNotFound,
                  "database " + spec.source_name + " vanished on the source");
  }
  Result<std::string> sql = CreateStatement(*db, spec.target_name, target.server_version());
  if (!sql.ok()) return sql.status();
  if (before_create) PGC_RETURN_IF_ERROR(before_create());
  Status created = target.Run(*sql);
  if (!created.ok()) {
    return created.WithContext("creating database " + spec.target_name + " on the target")
        .WithHint("the target must offer the source's encoding and locale (" + db->GetString(0, 1) +
                  "); install the locale or create the database by hand");
  }
  return Status::Ok();
}

Status DropTargetDatabase(Connection& target, const std::string& name) {
  return target
      .Run("DROP DATABASE IF EXISTS " + QuoteIdent(name) +
           (target.server_version() >= 130000 ? " WITH (FORCE)" : ""))
      .WithContext("dropping the target database " + name);
}

Result<bool> TargetDatabaseExists(Connection& target, const std::string& name) {
  Result<QueryResult> found =
      target.ExecParams("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", {name});
  if (!found.ok()) return found.status();
  return found->rows() > 0;
}

}  // namespace pgcourier
