#!/usr/bin/env bash
# Runs every test: unit tests (each kernel on every instruction set this CPU has), the same
# unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, the integration tests that
# check edgeq's files with independent tools (gguf-py, safetensors), the malformed-input tests
# against the sanitized binary, and each fuzz target for a bounded time.
# Expects scripts/setup.sh to have run. FUZZ_SECONDS (default 25) bounds each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
FUZZ_SECONDS=${FUZZ_SECONDS:-25}
export EDGEQ_SHARED_DATA=${EDGEQ_SHARED_DATA:-$(cd .. && pwd)/shared/data}

step() { printf '\n==> %s\n' "$*"; }

step "unit tests (release build, every ISA)"
cmake --build build
ctest --test-dir build --output-on-failure -j "$JOBS"

step "unit tests under AddressSanitizer + UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DEDGEQ_SANITIZE=ON >/dev/null
cmake --build build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$JOBS"

step "integration tests (gguf-py, safetensors, the edgeq binary)"
.venv/bin/python -m pytest -q tests/integration

step "malformed inputs against the sanitized binary"
EDGEQ_BIN=build-asan/edgeq EDGEQ_SYNTH_BIN=build-asan/edgeq-synth \
  ASAN_OPTIONS=detect_leaks=1 .venv/bin/python -m pytest -q tests/integration -k "damaged or malformed"

step "fuzz targets (${FUZZ_SECONDS}s each)"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEQ_FUZZ=ON -DEDGEQ_BUILD_TESTS=OFF \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
# Only the fuzz targets (and the library they link): the instrumented CLI and tools are not needed.
fuzz_targets=()
for source in tests/fuzz/*.cpp; do fuzz_targets+=("$(basename "$source" .cpp)"); done
cmake --build build-fuzz --target "${fuzz_targets[@]}"
for fuzzer in build-fuzz/*-fuzz; do
  name=$(basename "$fuzzer" -fuzz)
  corpus="build-fuzz/corpus-$name"
  mkdir -p "$corpus"
  cp -n tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
  echo "fuzzing $name"
  # libFuzzer exits non-zero when an input crashes, leaks, times out or trips a sanitizer,
  # and writes that input under build-fuzz/artifacts-<name>/.
  mkdir -p "build-fuzz/artifacts-$name"
  status=0
  "$fuzzer" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts-$name/" "$corpus" >"build-fuzz/$name.log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|Done|ERROR|SUMMARY)" "build-fuzz/$name.log" || true
  if [ "$status" -ne 0 ]; then
    echo "fuzz target $name failed (exit $status): $(ls "build-fuzz/artifacts-$name")"
    tail -40 "build-fuzz/$name.log"
    exit 1
  fi
done

step "all tests passed"
