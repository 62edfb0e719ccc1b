// Turns libpq's connection failure messages into one line of cause and one of
// fix, so a user who typed the wrong port or forgot sslmode knows what to do.
#pragma once

#include <string>

#include "util/status.h"

namespace pgcourier {

// `libpq_message` is PQerrorMessage() of a failed connection; `who` names the
// server in the message (for example "source (postgresql://app@db:5432/shop)").
// The Status code says whether trying again can help: kConnectionFailed
// (refused, timed out, reset, too many connections, starting up) is
// retryable; kInvalidArgument (unknown host, bad password, missing pg_hba
// entry, missing database or role, SSL not supported) is not.
Status TranslateConnectFailure(const std::string& libpq_message, const std::string& who);

}  // namespace pgcourier
