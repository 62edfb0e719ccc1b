// Small helpers of tests that watch a run from outside while it works: the
// files of /proc, and the target's progress marks.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "pg/connection.h"

namespace pgcourier::testing {

// The whole file, or what could be read of it: a /proc entry can vanish
// (ESRCH) or be a directory, and iostreams would throw then.
std::string ReadBytes(const std::filesystem::path& path);

// True once some of `object`'s slices are committed on the target and others
// are not (its progress marks in _pgcourier.steps), so that a kill then hits
// a partly copied table. `object` is the quoted name as the marks hold it
// ("public"."events"). `shop` is the watching connection to `conn_string`,
// (re)made here when missing or broken; false while the marks cannot be read.
bool PartlyCopied(std::unique_ptr<Connection>& shop, const std::string& conn_string,
                  std::string_view object);

}  // namespace pgcourier::testing
