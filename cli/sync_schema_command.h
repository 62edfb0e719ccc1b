#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace pgcourier::cli {

// Registers `pgcourier sync-schema` on `app`.
void AddSyncSchemaCommand(CLI::App& app, std::function<int()>& run);

}  // namespace pgcourier::cli
