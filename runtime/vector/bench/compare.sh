#!/usr/bin/env bash
# Side-by-side benchmark of mlp-vector and hnswlib on the same synthetic data, with the query
# timings of both engines interleaved over several rounds (best of all rounds kept), because a
# shared machine's load changes from minute to minute.
#
#   bash runtime/vector/bench/compare.sh OUT_DIR [ROUNDS] [extra mlp-vector-bench options...]
#
# Needs: cargo, python3 with numpy and hnswlib. Writes OUT_DIR/{ours,hnswlib}-round-N.json.
set -euo pipefail
out=${1:?usage: compare.sh OUT_DIR [ROUNDS] [bench options]}
rounds=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
mkdir -p "$out"
cargo build --release -q -p mlp-vector --bin mlp-vector-bench --manifest-path "$root/Cargo.toml"
bench="$root/target/release/mlp-vector-bench"
OURS_EF=${OURS_EF:-10,12,16,20,24,32,48,64}
HNSW_EF=${HNSW_EF:-16,24,32,40,48,64,96,128,192}
METRIC=${METRIC:-cosine}
# Build both once (timed), saving the indexes.
"$bench" --metric "$METRIC" "$@" --dump "$out/data" --save "$out/ours.mlpv" --ef-search "$OURS_EF" \
    --repeat 1 --json > "$out/ours-build.json"
python3 "$here/vs_hnswlib.py" --dir "$out/data" --metric "$METRIC" --ef-search "$HNSW_EF" \
    --repeat 1 --save-index "$out/hnswlib.bin" --json > "$out/hnswlib-build.json"
for r in $(seq 1 "$rounds"); do
    "$bench" --metric "$METRIC" --vectors "$out/data/vectors.npy" --query-vectors "$out/data/queries.npy" \
        --load "$out/ours.mlpv" --ef-search "$OURS_EF" --repeat 3 --json > "$out/ours-round-$r.json"
    python3 "$here/vs_hnswlib.py" --dir "$out/data" --metric "$METRIC" --ef-search "$HNSW_EF" \
        --repeat 3 --load-index "$out/hnswlib.bin" --json > "$out/hnswlib-round-$r.json"
done
python3 - "$out" "$rounds" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def best(prefix):
    rows = {}
    for r in range(1, rounds + 1):
        for x in json.load(open(f"{out}/{prefix}-round-{r}.json"))["results"]:
            b = rows.setdefault(x["ef_search"], dict(x))
            for key in ("qps_single", "qps_multi"):
                b[key] = max(b[key], x[key])
    return [rows[k] for k in sorted(rows)]
ob = json.load(open(f"{out}/ours-build.json")); hb = json.load(open(f"{out}/hnswlib-build.json"))
print(f"build: mlp-vector {ob['build_seconds']:.1f}s, hnswlib {hb['build_seconds']:.1f}s")
print("engine      ef  recall@10  QPS(1 thread)  QPS(all threads)")
for name, rows in (("mlp-vector", best("ours")), ("hnswlib", best("hnswlib"))):
    for x in rows:
        print(f"{name:10} {x['ef_search']:>4}  {x['recall']:.4f}  {x['qps_single']:>13.0f}  {x['qps_multi']:>16.0f}")
PY
