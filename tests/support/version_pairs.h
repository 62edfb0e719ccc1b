// The version pairs integration tests run on: a PostgreSQL 15 source (the
// pg_dump this machine has) and every installed target of 15 or newer.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pg_cluster.h"
#include "two_servers.h"

namespace pgcourier::testing {

// Installed majors that can be a target for a 15 source, ascending.
inline std::vector<int> TargetMajors() {
  std::vector<int> out;
  for (int major : AvailablePgMajors()) {
    if (major >= 15) out.push_back(major);
  }
  return out;
}

// Test name suffix for a target major: "pg15_to_pg17".
inline std::string VersionPairName(const ::testing::TestParamInfo<int>& param_info) {
  return "pg15_to_pg" + std::to_string(param_info.param);
}

// A fixture with a PostgreSQL 15 source and a target of the test's major
// (the parameter), both started afresh for each test. A subclass's SetUp
// calls this one first and returns if it failed (HasFatalFailure()).
class VersionPairTest : public SourceAndTargetFixture<::testing::TestWithParam<int>> {
 protected:
  void SetUp() override {
    SourceAndTargetOptions options;
    options.target.major = GetParam();
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }
};

}  // namespace pgcourier::testing
