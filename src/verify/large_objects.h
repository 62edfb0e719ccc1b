// The large objects of a database compared between the two sides of a
// verification (verify/verifier.h). Private to src/verify/.
#pragma once

#include <vector>

#include "pg/connection.h"
#include "verify/verifier.h"

namespace pgcourier {

// Compares the large objects of the databases `source` and `target` are
// connected to, each read in its session's transaction: their number
// ("large objects"), and per object its data (length and SHA-256, computed
// on the server in 1 MB pieces read with lo_get, so no data travels and no
// object is held whole in the server's memory), comment, and with
// options.owners its owner, with options.grants its privileges (the owner
// as "(owner)"). Objects that differ get one entry per differing attribute
// ("large object 16401: data"), the first 20 of them, then one entry for the
// rest. Nothing when neither side has any. A side that may not read an
// object (no SELECT on it) is a difference naming the server's refusal.
// Errors are lost connections and cancellation.
Result<std::vector<PropertyVerification>> CompareLargeObjects(Connection& source,
                                                              Connection& target,
                                                              const VerifyOptions& options);

}  // namespace pgcourier
