// `pgcourier verify` as one call: every selected database of the source
// compared with its counterpart on the target (verify/verifier.h). Reads both
// servers; writes nothing anywhere.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "catalog/object_filter.h"
#include "util/cancel.h"
#include "util/status.h"
#include "verify/verifier.h"

namespace pgcourier {

struct VerifyServersOptions {
  std::string source;  // connection strings as libpq takes them
  std::string target;
  std::vector<std::string> include_databases;  // glob patterns; empty: all
  std::vector<std::string> exclude_databases;
  int jobs = 4;         // tables checksummed in parallel, on each side
  ObjectFilter filter;  // objects left out on both sides (see VerifyDatabase)
  bool owners = false;  // VerifyOptions::owners
  bool grants = false;  // VerifyOptions::grants
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  // VerifyOptions::lock_timeout: past it, a read waiting for a lock fails
  // the verification naming the sessions that hold it.
  std::chrono::milliseconds lock_timeout{std::chrono::minutes(10)};
  const CancelToken* cancel = nullptr;
};

// Selects the databases as `pgcourier check` and `migrate` do: the one the
// source connection string names, when it names one and no include pattern
// is given (compared with the database the target string names, if it names
// one: a rename); otherwise every connectable database of the source that is
// not a template or a provider's admin database, narrowed by the include and
// exclude patterns, each compared with the target database of the same name.
// Then compares them one after the other with VerifyDatabase, leaving out
// the provider-only extensions, and returns one result per database in the
// order of the selection.
//
// Before its first session on a side in each database, that side is probed
// for a connection pooler (pg/pooler.h): one in transaction or statement
// mode is refused (kFailedPrecondition, check's message and hint) before
// anything is read.
//
// Differences are in the results, never an error. Errors: an unparsable
// connection string (kInvalidArgument, with the context "--source" or
// "--target"), a selection that matches no database (kInvalidArgument), a
// pooler in transaction mode, a server that cannot be reached or read, a
// lock not had within lock_timeout (kFailedPrecondition, naming the side,
// the table and the sessions holding it), and cancellation; the first error
// ends the verification.
Result<std::vector<DatabaseVerification>> VerifyServers(const VerifyServersOptions& options);

}  // namespace pgcourier
