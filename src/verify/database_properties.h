// The properties of a database kept in the server's shared catalogs,
// compared between the two sides of a verification (verify/verifier.h).
// Private to src/verify/.
#pragma once

#include <vector>

#include "pg/connection.h"
#include "verify/verifier.h"

namespace pgcourier {

// Compares the databases `source` and `target` are connected to, each read
// in its session's transaction:
//   - "setting NAME": ALTER DATABASE ... SET, by meaning
//     (SettingValueForComparison: list values as their parsed names), except
//     default_transaction_read_only, which a move never copies
//     (schema/database_properties.h);
//   - "role ROLE: setting NAME": ALTER ROLE ... IN DATABASE ... SET, of every
//     role but the providers' (those of a role the target does not have are
//     listed, left out: a move copies them for the roles present only);
//   - "comment", "connection limit";
//   - "grants" with options.grants: the database's privileges, the owner as
//     "(owner)" (catalog/acl.h).
// One entry per property either side has. Errors are failed reads.
Result<std::vector<PropertyVerification>> CompareDatabaseProperties(Connection& source,
                                                                    Connection& target,
                                                                    const VerifyOptions& options);

}  // namespace pgcourier
