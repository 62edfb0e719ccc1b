#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace pgcourier::cli {

// Registers `pgcourier status` on `app`: reads a work directory's catalog
// (also while a migration writes it) and shows how far the migration is.
void AddStatusCommand(CLI::App& app, std::function<int()>& run);

}  // namespace pgcourier::cli
