// Masking secrets in text that came from a user (argument lists, messages
// that may quote a connection string) before it is shown or stored.
#pragma once

#include <string>

namespace pgcourier {

// Replaces every password in connection strings found in `text` with '*'s of
// the same length: URI user info (postgresql://user:SECRET@host), key=value
// pairs (password=SECRET, password='SECRET') and URI query parameters
// (?password=SECRET). The length is kept so the result can overwrite the
// original in place.
std::string MaskPasswords(std::string text);

}  // namespace pgcourier
