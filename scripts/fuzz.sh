#!/usr/bin/env bash
# Runs the cargo-fuzz targets of the control-protocol core briefly (libFuzzer, AddressSanitizer).
#
#   scripts/fuzz.sh                 # every target, 30 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh reply_parser
#
# Needs a nightly Rust toolchain (cargo-fuzz builds with -Zsanitizer) and cargo-fuzz, which this
# script installs from crates.io if missing. Where no nightly toolchain is installed and none can
# be installed (rustup downloads toolchains from the Rust project's own server, not from a package
# registry), the script says so and exits 77 without fuzzing; with FUZZ_SKIP_OK=1 it exits 0
# instead (for CI on machines without nightly). It never reports a skipped run as passed.
#
# Seeds are in fuzz/seeds/<target>/ (real tor replies); the growing corpus is fuzz/corpus/<target>/
# and crashes land in fuzz/artifacts/<target>/ (both git-ignored).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$here/fuzz"
seconds="${FUZZ_SECONDS:-30}"
all_targets=(reply_parser reply_interpreters descriptor)
if (($# > 0)); then
    targets=("$@")
else
    targets=("${all_targets[@]}")
fi

skip() {
    echo "fuzz.sh: fuzzing NOT run: $1" >&2
    if [[ "${FUZZ_SKIP_OK:-0}" == 1 ]]; then
        echo "fuzz.sh: FUZZ_SKIP_OK=1, exiting 0 (skipped, not passed)" >&2
        exit 0
    fi
    exit 77
}

command -v cargo >/dev/null || skip "cargo is not installed"
command -v rustup >/dev/null || skip "rustup is not installed, so no nightly toolchain can be selected"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: no nightly toolchain; trying: rustup toolchain install nightly --profile minimal" >&2
    if ! rustup toolchain install nightly --profile minimal; then
        skip "no nightly toolchain, and rustup could not download one (no access to the Rust project's toolchain server here?)"
    fi
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    skip "the nightly toolchain is listed but 'cargo +nightly' does not run"
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz from crates.io" >&2
    cargo +stable install cargo-fuzz --locked || skip "cargo install cargo-fuzz failed"
fi

# A C++ compiler builds libFuzzer itself (libfuzzer-sys).
if ! command -v c++ >/dev/null; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        # shellcheck source=scripts/lib/apt.sh
        . "$here/scripts/lib/apt.sh"
        need_packages --recommends cmd:c++:g++
    else
        skip "no C++ compiler to build libFuzzer (apt-get install g++)"
    fi
fi

passed=0
failed=0
failed_names=()
# Where CARGO_TARGET_DIR is set (.ci/run keeps one in the tests' cache), the fuzz builds go in a
# folder of their own inside it, named to cargo-fuzz, which then finds its binaries there; else in
# fuzz/target/ as cargo-fuzz does by itself.
target_args=()
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    target_args=(--target-dir "$CARGO_TARGET_DIR/fuzz")
    unset CARGO_TARGET_DIR
fi
cd "$fuzz_dir"
for t in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$t"
    mkdir -p "$corpus"
    if [[ -d "$fuzz_dir/seeds/$t" ]]; then
        cp -n "$fuzz_dir/seeds/$t"/* "$corpus"/ 2>/dev/null || true
    fi
    echo "fuzz.sh: $t for ${seconds}s (corpus $corpus)"
    log="$(mktemp)"
    if cargo +nightly fuzz run "${target_args[@]}" "$t" "$corpus" -- \
        -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=1024 -print_final_stats=1 \
        >"$log" 2>&1; then
        runs="$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n1)"
        peak="$(grep -E '^stat::peak_rss_mb' "$log" | awk '{print $2}' | tail -n1)"
        echo "fuzz.sh: $t ok: ${runs:-?} inputs in ${seconds}s, peak RSS ${peak:-?} MB, corpus $(find "$corpus" -type f | wc -l) files"
        passed=$((passed + 1))
    else
        tail -n 40 "$log" >&2
        echo "fuzz.sh: $t FAILED; reproducer(s) in $fuzz_dir/artifacts/$t/" >&2
        failed=$((failed + 1))
        failed_names+=("$t")
    fi
    rm -f "$log"
done

if ((failed > 0)); then
    echo "fuzz.sh: failed targets: ${failed_names[*]}" >&2
fi
echo "$passed passed, $failed failed"
((failed == 0))
