#!/usr/bin/env bash
# One run on a GPU machine (see ../shared/gpu/README.md): the embedding bench on the CPU and GPU
# backends, GPU embeddings compared with the CPU ones, and sentence-transformers on CUDA when
# the machine has it. Builds nothing: send the folder DIR holding a stripped release
# `mlp-embed-bench` and a model folder `model/` (MiniLM with weights converted to F16 fits the
# transfer limit), and the Vulkan loader in .gl/.
#   bash runtime/embed/bench/gpu_check.sh DIR [SENTENCES]
set -uo pipefail
dir=$1
n=${2:-2000}
out=${OUT:-gpu-out}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
if ! ldconfig -p | grep -q libvulkan.so.1 && ls .gl/*.deb >/dev/null 2>&1; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; fi
nvidia-smi -L > "$out/nvidia-smi.txt" 2>&1
bench="$dir/mlp-embed-bench"
step() { # name timeout command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$name.json" 2> "$out/$name.err"
  echo "$name: exit $? in $((SECONDS - t0)) s: $(tail -c 600 "$out/$name.json")" | tee -a "$out/summary.txt"
}
step cpu 120 "$bench" --model "$dir/model" --device cpu --sentences "$n" --dump /tmp/cpu.json --json
for b in 32 128; do
  step "gpu_b$b" 90 "$bench" --model "$dir/model" --device gpu --sentences "$n" --batch "$b" --compare /tmp/cpu.json --json
done
if python3 -c "import sentence_transformers" 2>/dev/null; then
  step st_cuda 120 python3 "$here/st_reference.py" --model "$dir/model" --dump /tmp/cpu.json --device cuda --json
else
  echo "st_cuda: sentence-transformers is not installed here" | tee -a "$out/summary.txt"
fi
