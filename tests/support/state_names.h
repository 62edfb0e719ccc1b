// Tests compare the states of runs, databases, steps and changes with the
// text the store and the JSON use ("done", "syncing", ...), and gtest prints
// them by that text when an assertion fails.
#pragma once

#include <ostream>
#include <string_view>

#include "migrate/cutover.h"
#include "state/run_states.h"

namespace pgcourier {

template <typename E>
requires NamedState<E>
bool operator==(E value, std::string_view text) { return text == Name(value); }

template <typename E>
requires NamedState<E>
void PrintTo(const E& value, std::ostream* os) { *os << Name(value); }

}  // namespace pgcourier
