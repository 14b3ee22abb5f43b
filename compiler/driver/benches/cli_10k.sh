#!/usr/bin/env bash
# Times the real CLI on the 10,000-binding pipeline of benches/check_plan.rs:
# `mlp check FILE`, then `mlp plan FILE -o /dev/null`, release build, process start included.
# Uses hyperfine when installed (apt install hyperfine), /usr/bin/time otherwise.
#
#   compiler/driver/benches/cli_10k.sh [FILE]      (default /tmp/mlp_bench_10k.mlp)
#   MLP_BENCH_BINDINGS=20000 compiler/driver/benches/cli_10k.sh
set -euo pipefail

root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
file="${1:-/tmp/mlp_bench_10k.mlp}"
target="${CARGO_TARGET_DIR:-$root/target}"
mlp="$target/release/mlp"

cargo build --release -p mlp
# The same generator as the criterion bench: the bench binary writes the file and exits.
MLP_BENCH_WRITE="$file" cargo bench -p mlp --bench check_plan
echo "$(grep -c '^ *let ' "$file") bindings, $(wc -c <"$file") bytes: $file"

# Sanity: the file checks clean and plans.
"$mlp" check "$file"
"$mlp" plan "$file" -o /dev/null

if command -v hyperfine >/dev/null; then
    hyperfine --warmup 2 --min-runs 10 \
        --command-name "mlp check" "$mlp check $file" \
        --command-name "mlp plan" "$mlp plan $file -o /dev/null" \
        --command-name "mlp check && mlp plan" "$mlp check $file && $mlp plan $file -o /dev/null"
else
    for cmd in "check $file" "plan $file -o /dev/null"; do
        echo "mlp $cmd"
        for _ in 1 2 3 4 5; do
            /usr/bin/time -f "  %e s wall, %U s user, %M KiB max RSS" "$mlp" $cmd 2>&1 >/dev/null | grep -v '^checked'
        done
    done
fi
