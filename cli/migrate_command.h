#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace pgcourier::cli {

// Registers `pgcourier migrate` on `app`.
void AddMigrateCommand(CLI::App& app, std::function<int()>& run);

}  // namespace pgcourier::cli
