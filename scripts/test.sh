#!/usr/bin/env bash
# pgcourier's test command (what CI runs through .ci/run):
#
#   1. scripts/setup.sh                       (dependencies, PostgreSQL 13 to 18)
#   2. build      build-ci/ with -Werror       (scripts/build.sh --werror --line-tables build-ci)
#   3. ctest      on build-ci/                 (the whole version matrix, and the
#                 Debian package installed into a clean Debian 12 root:
#                 tests/package/clean_root_test.cc, which needs the network)
#   4. asan-build build-asan/ with -Werror, ASan + UBSan
#   5. asan-ctest on build-asan/               (a subset of the matrix:
#                 tests/support/version_pairs.h)
#   6. format     clang-format --dry-run -Werror over the *.h and *.cc files
#   7. tidy       clang-tidy (.clang-tidy) over the src/ and cli/ *.cc files
#
# PGCOURIER_TEST_QUICK=1 skips steps 4, 5 and 7, for local iteration.
#
# Every step runs even when an earlier one failed (except that a suite is not
# run when its build failed); the script then says which failed and exits 1.
# The summary lists the 15 slowest tests of each ctest run; the last line
# sums up both ctest runs as "tests: N passed, N failed".
#
# ctest -j2 starts the tests that took longest first (its cost data,
# BUILD_DIR/Testing/Temporary/CTestCostData.txt), so that no long test starts
# last while the other core idles. A build directory without cost data of its
# own gets tests/ctest_costs.txt (the slowest tests of a CI run), and the
# sanitizer run gets the regular run's.
#
# Both builds keep line tables only for debug information (scripts/build.sh
# --line-tables): the sanitizers' stack traces still name files and lines.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
root="$(pwd -P)"
started=${SECONDS}
quick="${PGCOURIER_TEST_QUICK:-0}"
[[ "${quick}" == "1" ]] || quick=0

logdir="$(mktemp -d)"
trap 'rm -rf "${logdir}"' EXIT

failed=()   # names of failed steps
results=()  # "name: ok|FAILED|skipped ..." lines for the summary

heading() { printf '\n==> %s\n' "$*"; }
pass() { results+=("$1: ok"); }
fail() {
  failed+=("$1")
  results+=("$1: FAILED${2:+ ($2)}")
}
skip() { results+=("$1: skipped ($2)"); }

# --- 1. setup ----------------------------------------------------------------

heading "setup: scripts/setup.sh"
if ! bash scripts/setup.sh; then
  echo "FAILED: scripts/setup.sh failed; nothing can be built or tested without it." >&2
  exit 1
fi

# --- builds and test suites --------------------------------------------------

# Totals over all ctest runs, for the closing line.
tests_total=0
tests_failed=0
tests_skipped=0

# seed_costs BUILD_DIR FILE: gives BUILD_DIR FILE as its ctest cost data
# unless it has its own.
seed_costs() {
  local costs="$1/Testing/Temporary/CTestCostData.txt"
  [[ -s "${costs}" || ! -s "$2" ]] && return 0
  mkdir -p "$(dirname "${costs}")" && cp "$2" "${costs}"
}

# slowest STEP LOG: the 15 slowest tests of a ctest log, for the summary.
slowest() {
  python3 - "$2" >"${logdir}/$1.slowest" <<'PY'
import re, sys
line_re = re.compile(r"^\s*\d+/\d+ Test +#\d+: (\S+).*? \.+(?:\*\*\*)?\s*(.*?)\s+([0-9.]+) sec$")
rows = []
for line in open(sys.argv[1], errors="replace"):
    m = line_re.match(line.rstrip("\n"))
    if m:
        rows.append((float(m.group(3)), m.group(1), m.group(2)))
rows.sort(reverse=True)
for seconds, name, result in rows[:15]:
    print(f"{seconds:9.1f} s  {result:<8} {name}")
PY
}

# run_ctest STEP BUILD_DIR [ENV=VALUE...]: runs the suite, output visible.
run_ctest() {
  local step="$1" dir="$2"
  shift 2
  local log="${logdir}/${step}.log"
  heading "${step}: ctest --test-dir ${dir}"
  env "$@" ctest --test-dir "${dir}" --output-on-failure -j2 --timeout 600 \
    --no-tests=error 2>&1 | tee "${log}"
  local rc=${PIPESTATUS[0]}
  # "100% tests passed, 0 tests failed out of 42"
  local line total nfailed nskipped
  line="$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "${log}" | tail -n1)"
  if [[ -n "${line}" ]]; then
    total="$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"${line}")"
    nfailed="$(sed -E 's/.* ([0-9]+) tests? failed.*/\1/' <<<"${line}")"
    nskipped="$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)[[:space:]]*$' "${log}" || true)"
    tests_total=$((tests_total + total))
    tests_failed=$((tests_failed + nfailed))
    tests_skipped=$((tests_skipped + nskipped))
  fi
  slowest "${step}" "${log}"
  if ((rc == 0)); then
    pass "${step}"
  else
    fail "${step}" "ctest exit ${rc}"
  fi
}

heading "build: scripts/build.sh --werror --line-tables build-ci"
if bash scripts/build.sh --werror --line-tables build-ci; then
  pass build
  seed_costs build-ci tests/ctest_costs.txt
  run_ctest ctest build-ci
else
  fail build
  fail ctest "not run: build failed"
fi

if ((quick)); then
  skip asan-build "PGCOURIER_TEST_QUICK=1"
  skip asan-ctest "PGCOURIER_TEST_QUICK=1"
else
  heading "asan-build: scripts/build.sh --werror --sanitize --line-tables build-asan"
  if bash scripts/build.sh --werror --sanitize --line-tables build-asan; then
    pass asan-build
    seed_costs build-asan build-ci/Testing/Temporary/CTestCostData.txt
    seed_costs build-asan tests/ctest_costs.txt
    run_ctest asan-ctest build-asan \
      ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  else
    fail asan-build
    fail asan-ctest "not run: build failed"
  fi
fi

# --- 6. formatting -----------------------------------------------------------

# The C++ files under version control (plus new files not yet added, so a
# local run sees them too; ignored files such as build/ are left out).
cxx_files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  while IFS= read -r f; do
    [[ -f "${f}" ]] && cxx_files+=("${f}")
  done < <(git ls-files --cached --others --exclude-standard -- '*.h' '*.cc' | sort -u)
else
  while IFS= read -r f; do
    cxx_files+=("${f#./}")
  done < <(find . \( -path './build*' -o -path './.git' \) -prune -o \
             -type f \( -name '*.h' -o -name '*.cc' \) -print | sort)
fi

heading "format: clang-format --dry-run -Werror over ${#cxx_files[@]} files"
if ((${#cxx_files[@]} == 0)); then
  echo "no *.h or *.cc files found"
  pass format
else
  unformatted=()
  for f in "${cxx_files[@]}"; do
    if ! clang-format --dry-run -Werror "${f}" >/dev/null 2>&1; then
      unformatted+=("${f}")
    fi
  done
  if ((${#unformatted[@]} == 0)); then
    echo "all ${#cxx_files[@]} files are formatted"
    pass format
  else
    # Show what is wrong (bounded), then the one line that matters.
    clang-format --dry-run -Werror "${unformatted[@]}" 2>&1 | head -n 60
    echo "FAILED: clang-format: ${#unformatted[@]} file(s) need formatting: ${unformatted[*]}"
    echo "        fix with: clang-format -i ${unformatted[*]}"
    fail format "${#unformatted[@]} file(s) need formatting"
  fi
fi

# --- 7. clang-tidy -----------------------------------------------------------

if ((quick)); then
  skip tidy "PGCOURIER_TEST_QUICK=1"
else
  heading "tidy: clang-tidy over src/ and cli/ (build-ci/compile_commands.json)"
  db="build-ci/compile_commands.json"
  if [[ ! -f "${db}" ]]; then
    echo "FAILED: clang-tidy: ${db} is missing (the build step did not configure)"
    fail tidy "no compile_commands.json"
  else
    # The src/ and cli/ translation units the build compiles.
    mapfile -t tidy_files < <(python3 - "${db}" "${root}" <<'PY'
import json, os, sys
db_path, root = sys.argv[1], sys.argv[2]
files = set()
for entry in json.load(open(db_path)):
    path = os.path.realpath(os.path.join(entry["directory"], entry["file"]))
    rel = os.path.relpath(path, root)
    if rel.startswith(("src/", "cli/")) and rel.endswith(".cc"):
        files.add(rel)
print("\n".join(sorted(files)))
PY
    )
    if ((${#tidy_files[@]} == 0)); then
      echo "FAILED: clang-tidy: no src/ or cli/ *.cc files in ${db}"
      fail tidy "no files"
    else
      echo "checking ${#tidy_files[@]} files with $(clang-tidy --version | grep -o 'version [0-9.]*')"
      # One clang-tidy per file, two at a time. Each prints its findings in
      # one piece. -Wno-error: compiler warnings are GCC's job (the build
      # uses -Werror); clang-tidy's own findings are errors via .clang-tidy.
      # shellcheck disable=SC2016  # expanded by the inner bash, not here
      tidy_one='
        out="$(clang-tidy -p build-ci --quiet --extra-arg=-Wno-error "$1" 2>&1)"
        rc=$?
        out="$(grep -vE "^[0-9]+ (warnings?|errors?)( and [0-9]+ errors?)? generated\.$|^Error while processing " <<<"$out")"
        if ((rc != 0)); then
          printf "clang-tidy: %s: findings\n%s\n" "$1" "$out"
          exit 1
        fi
        [[ -z "$out" ]] || printf "%s\n" "$out"
        exit 0'
      if printf '%s\0' "${tidy_files[@]}" | xargs -0 -n1 -P2 bash -c "${tidy_one}" tidy; then
        echo "clang-tidy: ${#tidy_files[@]} files clean"
        pass tidy
      else
        echo "FAILED: clang-tidy: findings in src/ or cli/ (see above; config in .clang-tidy)"
        fail tidy "findings"
      fi
    fi
  fi
fi

# --- summary -----------------------------------------------------------------

elapsed=$((SECONDS - started))
heading "summary"
for r in "${results[@]}"; do
  printf '    %s\n' "${r}"
done
for step in ctest asan-ctest; do
  if [[ -s "${logdir}/${step}.slowest" ]]; then
    printf '%s: the 15 slowest tests\n' "${step}"
    cat "${logdir}/${step}.slowest"
  fi
done
printf 'total time: %dm%02ds\n' $((elapsed / 60)) $((elapsed % 60))

tests_passed=$((tests_total - tests_failed - tests_skipped))
if ((${#failed[@]} > 0)); then
  echo "test.sh: FAILED steps: ${failed[*]}"
  echo "tests: ${tests_passed} passed, ${tests_failed} failed, ${tests_skipped} skipped"
  exit 1
fi
echo "tests: ${tests_passed} passed, ${tests_failed} failed, ${tests_skipped} skipped"
