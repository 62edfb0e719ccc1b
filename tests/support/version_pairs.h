// The version pairs integration tests run on.
//
// The matrix (MatrixPairs, MatrixPairTest): sources 13, 14 and 15, each with
// every target from its own major up to 18, as far as they are installed
// (scripts/setup.sh installs them all). pg_dump is always Debian's 15, which
// dumps 13 and 14 servers too. A build with the sanitizers
// (PGCOURIER_SANITIZE, which defines PGCOURIER_SANITIZED_BUILD for the tests)
// runs a subset of it, kSanitizerPairs; PGCOURIER_TEST_MATRIX=full or
// =subset in the environment chooses either way.
//
// The classic pairs (TargetMajors, VersionPairTest): a 15 source with a 15
// and a 17 target, for the suites that test one feature across a version
// boundary rather than the whole matrix.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <ostream>
#include <string>
#include <vector>

#include "pg_cluster.h"
#include "two_servers.h"

namespace pgcourier::testing {

struct VersionPair {
  int source = 15;
  int target = 15;
  bool operator==(const VersionPair&) const = default;
};

// "pg13_to_pg18".
inline std::string PairName(const VersionPair& pair) {
  return "pg" + std::to_string(pair.source) + "_to_pg" + std::to_string(pair.target);
}

// How gtest prints a parameter.
inline void PrintTo(const VersionPair& pair, std::ostream* os) { *os << PairName(pair); }

inline constexpr int kMatrixSources[] = {13, 14, 15};
inline constexpr int kNewestTarget = 18;
// Under the sanitizers: the oldest source to the newest target, the same
// major, and the classic cross-version pair.
inline constexpr VersionPair kSanitizerPairs[] = {{13, 18}, {15, 15}, {15, 17}};

// True when the matrix is cut to kSanitizerPairs.
inline bool MatrixSubsetOnly() {
  const char* chosen = std::getenv("PGCOURIER_TEST_MATRIX");
  std::string how = chosen == nullptr ? "" : chosen;
  if (how == "full") return false;
  if (how == "subset") return true;
#ifdef PGCOURIER_SANITIZED_BUILD
  return true;
#else
  return false;
#endif
}

// The installed pairs of the matrix, sources ascending, then targets.
inline std::vector<VersionPair> MatrixPairs() {
  const bool subset = MatrixSubsetOnly();
  std::vector<VersionPair> out;
  for (int source : kMatrixSources) {
    if (!HavePgMajor(source)) continue;
    for (int target = source; target <= kNewestTarget; ++target) {
      if (!HavePgMajor(target)) continue;
      VersionPair pair{source, target};
      if (subset && std::find(std::begin(kSanitizerPairs), std::end(kSanitizerPairs), pair) ==
                        std::end(kSanitizerPairs)) {
        continue;
      }
      out.push_back(pair);
    }
  }
  return out;
}

// Test name suffix for a matrix pair: "pg13_to_pg18".
inline std::string MatrixPairName(const ::testing::TestParamInfo<VersionPair>& param_info) {
  return PairName(param_info.param);
}

// A fixture with a source and a target of the test's pair (the parameter),
// both started afresh for each test. A subclass's SetUp calls this one first
// and returns if it failed (HasFatalFailure()).
class MatrixPairTest : public SourceAndTargetFixture<::testing::TestWithParam<VersionPair>> {
 protected:
  void SetUp() override {
    SourceAndTargetOptions options;
    options.source.major = GetParam().source;
    options.target.major = GetParam().target;
    ASSERT_NO_FATAL_FAILURE(StartServers(options));
  }
};

// The classic pairs' installed targets for a 15 source (15 and 17),
// ascending.
inline std::vector<int> TargetMajors() {
  std::vector<int> out;
  for (int major : {15, 17}) {
    if (HavePgMajor(major)) out.push_back(major);
  }
  return out;
}

// Test name suffix for a classic pair's target major: "pg15_to_pg17".
inline std::string VersionPairName(const ::testing::TestParamInfo<int>& param_info) {
  return PairName({15, param_info.param});
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
