#!/usr/bin/env bash
# Builds the libFuzzer targets with the stable toolchain (SanitizerCoverage instrumentation,
# no nightly, no cargo-fuzz needed), replays the committed regression inputs, then fuzzes
# each target for FUZZ_SECONDS seconds (default 10).
#
#   fuzz/run.sh                      # smoke run: every target, 10 s each
#   FUZZ_SECONDS=3600 fuzz/run.sh frame open_store   # long run of some targets
#   FUZZ_JOBS=4 FUZZ_SECONDS=0 fuzz/run.sh scan_segment   # 4 workers until stopped
#   FUZZ_ASAN=1 fuzz/run.sh          # also AddressSanitizer (RUSTC_BOOTSTRAP=1 on stable)
#
# Crashes land in fuzz/artifacts/<target>/; copy each into fuzz/regressions/<target>/ and
# add a Rust regression test (rust/eventpak-core/tests/decoder_properties.rs) before fixing.
set -euo pipefail
cd "$(dirname "$0")"
ALL=(frame segment_header scan_segment index_checkpoint cursor_checkpoint hidden_ranges open_store receipt_bytes)
TARGETS=("${@:-${ALL[@]}}")
SECONDS_EACH="${FUZZ_SECONDS:-10}"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
FLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
FLAGS+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
FLAGS+=" -Cllvm-args=-sanitizer-coverage-trace-compares"
if [[ "${FUZZ_ASAN:-0}" == 1 ]]; then
  FLAGS+=" -Zsanitizer=address"
  export RUSTC_BOOTSTRAP=1
fi
# --target keeps the instrumentation out of build scripts and proc macros.
RUSTFLAGS="$FLAGS" cargo build --release --bins --target "$TRIPLE" --quiet
BIN="${CARGO_TARGET_DIR:-target}/$TRIPLE/release"
# Scratch files of the targets (tmpfs when there is one), removed however the run ends.
SHM=/dev/shm; [[ -d $SHM && -w $SHM ]] || SHM="${TMPDIR:-/tmp}"
EVENTPAK_FUZZ_TMP="$(mktemp -d "$SHM/eventpak-fuzz-run.XXXXXX")"
export EVENTPAK_FUZZ_TMP
trap 'rm -rf "$EVENTPAK_FUZZ_TMP"' EXIT
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t" "regressions/$t"
  if compgen -G "regressions/$t/*" > /dev/null; then
    # Committed crashing inputs first: each must now pass.
    if ! "$BIN/$t" -runs=1 regressions/"$t"/* > "artifacts/$t.replay.log" 2>&1; then
      grep -E "panicked|ERROR" -A1 "artifacts/$t.replay.log" >&2 || true
      echo "!! $t: a committed regression input in fuzz/regressions/$t/ still fails" >&2
      exit 1
    fi
    echo "== $t: $(ls regressions/"$t" | wc -l) regression input(s) pass"
  fi
  echo "== $t: ${SECONDS_EACH}s"
  "$BIN/$t" -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" ${FUZZ_JOBS:+-jobs=$FUZZ_JOBS -workers=$FUZZ_JOBS} \
    "corpus/$t" 2>&1 | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|panicked|Test unit written|SUMMARY" || true
  if compgen -G "artifacts/$t/crash-*" > /dev/null || compgen -G "artifacts/$t/oom-*" > /dev/null \
    || compgen -G "artifacts/$t/timeout-*" > /dev/null; then
    echo "!! $t: crashing inputs in fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
