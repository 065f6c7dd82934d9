#!/bin/bash
# Every fuzz target for FUZZ_SECONDS seconds each (default 30), one after
# the other: first the inputs under regressions/ (each once failed; each
# must pass now), then libFuzzer from the checked-in seeds, the seeds made
# for this build's formats, and the corpus kept from earlier runs
# (corpus/, not checked in). Prints the executions per target; exits 1 when
# a target failed, with the input under artifacts/TARGET/ and the panic.
#
#   FUZZ_SECONDS=N      seconds per target
#   FUZZ_TARGETS="a b"  only these targets
#   FUZZ_TOOLCHAIN=...  the nightly toolchain (default: nightly)
#   FUZZ_RUNS=N         stop a target after N executions (if sooner)
set -euo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-30}
toolchain=${FUZZ_TOOLCHAIN:-nightly}
all="plan_bytes plan_records plan_built config kmod_index cmdline blockid trace uevent"
targets=${FUZZ_TARGETS:-$all}
bin=target/x86_64-unknown-linux-gnu/release

cargo "+$toolchain" fuzz build -O
"$bin/seeds" plans corpus/plan_bytes corpus/plan_records
"$bin/seeds" trace corpus/trace

failed=""
total=0
printf '%-13s %12s %8s %10s\n' target executions seconds "per second"
for t in $targets; do
  [ -x "$bin/$t" ] || { echo "fuzz: no target '$t' (targets: $all)" >&2; exit 2; }
  mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
  log="artifacts/$t/last.log"
  if [ -d "regressions/$t" ] && ! "$bin/$t" -runs=1 regressions/"$t"/* >"$log" 2>&1; then
    echo "fuzz: $t: a regression input fails again:" >&2
    grep -A4 -m1 'panicked' "$log" >&2 || tail -20 "$log" >&2
    failed="$failed $t"
    continue
  fi
  opts=()
  [ -f "dict/$t.dict" ] && opts=(-dict="dict/$t.dict")
  [ -n "${FUZZ_RUNS:-}" ] && opts+=(-runs="$FUZZ_RUNS")
  set +e
  nice "$bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -close_fd_mask=2 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" "${opts[@]}" "corpus/$t" "seeds/$t" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  printf '%-13s %12s %8s %10s\n' "$t" "${runs:-?}" "${took:-$seconds}" "${rate:-?}"
  total=$((total + ${runs:-0}))
  if [ $rc -ne 0 ]; then
    input=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -1)
    echo "fuzz: $t failed (exit $rc) on ${input:-an input, see $log}:" >&2
    if [ -n "$input" ] && [ -f "$input" ]; then
      "$bin/$t" "$input" 2>&1 | grep -A6 -m1 'panicked\|ERROR: AddressSanitizer\|ERROR: libFuzzer' >&2 || true
    fi
    failed="$failed $t"
  fi
done
echo "fuzz: $total executions in all"
if [ -n "$failed" ]; then
  echo "fuzz: failed:$failed (reproduce: $bin/TARGET INPUT; each fix gets a regression test in cargo test and its input under fuzz/regressions/TARGET/)" >&2
  exit 1
fi
