// Moving the rows of extensions' configuration tables
// (catalog/extension_config.h) after the schema restore made the extensions:
// the rows the extension's condition selects are replaced by the source's,
// the values of its configuration sequences set.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "catalog/extension_config.h"
#include "pg/connection.h"

namespace pgcourier {

// The progress mark of the configuration tables' copy.
inline constexpr const char* kExtensionConfigStep = "extension configuration";

struct ExtensionConfigCopied {
  int64_t tables = 0;
  int64_t rows = 0;
  int64_t sequences = 0;
};

// In one target transaction: the rows each table's condition selects
// deleted on the target (referencing tables first), then the source's rows
// selected by the same condition copied in (referenced tables first), each
// configuration sequence set to the source's value, and, when `mark` is
// given, that progress mark recorded. Deleting first makes it idempotent:
// the rows the extension's CREATE EXTENSION inserted are outside its
// condition and stay; rows of an earlier copy are replaced. `at_snapshot`
// reads the source in a transaction at the migration's snapshot (with
// row_security off for the copy: a policy that would hide rows is an error,
// never a silent loss); `target` must be idle.
Result<ExtensionConfigCopied> CopyExtensionConfig(Connection& at_snapshot, Connection& target,
                                                  const std::vector<ExtensionConfigTable>& tables,
                                                  const std::optional<std::string>& mark);

}  // namespace pgcourier
