#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace pgcourier::cli {

// Registers `pgcourier check` on `app`; `run` is set to the code that runs it
// after parsing and returns the exit status.
void AddCheckCommand(CLI::App& app, std::function<int()>& run);

}  // namespace pgcourier::cli
