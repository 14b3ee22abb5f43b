#!/usr/bin/env bash
# One run on a GPU machine (see ../shared/gpu/README.md): mlp's wgpu kernels and U-Net training
# step against PyTorch fp32 (TF32 off) on the same GPU, in the same command. Builds nothing:
# send a release `mlp` binary (strip it to fit) and the Vulkan loader in .gl/ along. Results go
# to $OUT (or ./gpu-out), one file per step, plus summary.txt.
#   bash runtime/compute/bench/gpu_compare.sh [path/to/mlp]
# Knobs (for a dry run on lavapipe): SQUARE (square matmul sizes), SCALE (kernel shapes shrink
# factor), SURVEYS (training surveys of 16 images; 2 or more for the wide U-Net's batch of 32),
# EPOCHS, BIG_EPOCHS (0 skips the wide U-Net), ALLOW (extra flag, e.g. --allow-cpu-adapter),
# NO_TORCH=1, PROFILE (default --profile: one-epoch U-Net runs after the timed ones report GPU
# time per kernel from timestamp queries, under "profile" in their JSON; PROFILE= turns it off).
# results.tgz is rewritten after every step, so a run cut short still returns what it measured.
# The default runs autotune kernel variants (their choices are under "autotune" in the JSON);
# the *_rule steps repeat the headline figures with autotuning off.
set -uo pipefail
mlp=$(realpath "${1:-target/release/mlp}")
final=${OUT:-gpu-out}
mkdir -p "$final"
final=$(realpath "$final")
# Results are gathered in a scratch folder and packed into $final/results.tgz at the end (the
# device tool returns few files).
out=$(mktemp -d)
here=$(cd "$(dirname "$0")" && pwd)
SQUARE=${SQUARE:-2048,4096,8192}
SCALE=${SCALE:-1}
SURVEYS=${SURVEYS:-32}
EPOCHS=${EPOCHS:-8}
BIG_EPOCHS=${BIG_EPOCHS:-2}
ALLOW=${ALLOW:-}
PROFILE=${PROFILE---profile}
if ls .gl/*.deb >/dev/null 2>&1; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES=$icd; fi
step() { # name timeout command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$name.json" 2> "$out/$name.err"
  echo "$name: exit $? in $((SECONDS - t0)) s" | tee -a "$out/summary.txt"
  # Packed after every step: a run cut short by the device's time limit still returns results.
  tar czf "$final/results.tgz" -C "$out" . && cp "$out/summary.txt" "$final/summary.txt"
}
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
step devices 30 "$mlp" devices --json
# Every op plus the square products, default kernels (fast GEMM, no runtime checks there).
step mlp_kernels_gpu 150 "$mlp" bench kernels --device gpu --json --repeats 20 --scale "$SCALE" --square "$SQUARE" $ALLOW
[ -n "${NO_TORCH:-}" ] || step torch_kernels 90 python3 "$here/torch_kernels.py" --device cuda
data=$(mktemp -d)
bash "$here/make_unet_data.sh" "$data" "$SURVEYS" 4 "$mlp" > "$out/data.log" 2>&1
echo "data: exit $?" | tee -a "$out/summary.txt"
# U-Net steps timed without profiling (the timestamps add work to every dispatch).
step mlp_unet_gpu 120 "$mlp" bench unet --data "$data" --device gpu --epochs "$EPOCHS" --json $ALLOW
[ -n "${NO_TORCH:-}" ] || step torch_unet 120 python3 "$here/unet_torch.py" --data "$data" --device cuda --epochs "$EPOCHS" --json
if [ "$BIG_EPOCHS" != 0 ]; then
  # A wider U-Net (32 base channels, batch 32): less launch-bound, more arithmetic per step.
  step mlp_unet_wide_gpu 60 "$mlp" bench unet --data "$data" --device gpu --epochs "$BIG_EPOCHS" --base-channels 32 --batch 32 --json $ALLOW
  [ -n "${NO_TORCH:-}" ] || step torch_unet_wide 60 python3 "$here/unet_torch.py" --data "$data" --device cuda --epochs "$BIG_EPOCHS" --base-channels 32 --batch 32 --json
  # The same with the size rule's kernels only (autotuning off; on by default on a GPU).
  step mlp_unet_wide_rule 60 env MLP_GPU_AUTOTUNE=off "$mlp" bench unet --data "$data" --device gpu --epochs "$BIG_EPOCHS" --base-channels 32 --batch 32 --json $ALLOW
fi
step mlp_matmul_rule 45 env MLP_GPU_AUTOTUNE=off "$mlp" bench kernels --device gpu --json --repeats 10 --scale "$SCALE" --square "$SQUARE" --ops matmul $ALLOW
# Variants, most telling first. GEMM: the aligned tile variants (MLP_GEMM_TILE), runtime
# bounds checks on, and the guarded kernel.
for t in 128x128 128x256 256x128; do
  step "mlp_matmul_tile_$t" 45 env MLP_GEMM_TILE=$t "$mlp" bench kernels --device gpu --json --repeats 10 --scale "$SCALE" --square "$SQUARE" --ops matmul $ALLOW
done
step mlp_matmul_tile_64x64 45 env MLP_GEMM_TILE=64x64 "$mlp" bench kernels --device gpu --json --repeats 10 --scale "$SCALE" --square 1024,2048 --ops matmul $ALLOW
step mlp_matmul_checks 45 env MLP_WGSL_CHECKS=on "$mlp" bench kernels --device gpu --json --repeats 10 --scale "$SCALE" --square "$SQUARE" --ops matmul $ALLOW
step mlp_matmul_guarded 45 env MLP_GEMM_FAST=0 "$mlp" bench kernels --device gpu --json --repeats 10 --scale "$SCALE" --square "$SQUARE" --ops matmul $ALLOW
# Convolutions: the guarded kernels (MLP_CONV_FAST=0) and each fast tile height.
convs=conv2d,conv2d_backward_input,conv2d_backward_weight
step mlp_conv_guarded 45 env MLP_CONV_FAST=0 "$mlp" bench kernels --device gpu --json --repeats 10 --scale "$SCALE" --ops $convs $ALLOW
for t in 32 64 128; do
  step "mlp_conv_tile_$t" 45 env MLP_CONV_TILE=$t "$mlp" bench kernels --device gpu --json --repeats 10 --scale "$SCALE" --ops $convs $ALLOW
done
if [ "$BIG_EPOCHS" != 0 ]; then
  # Where the wide U-Net's GPU time goes (one epoch, timestamps per kernel), and the same
  # step on the guarded convolutions.
  step mlp_unet_wide_profile 60 "$mlp" bench unet --data "$data" --device gpu --epochs 1 --base-channels 32 --batch 32 --json $PROFILE $ALLOW
  step mlp_unet_wide_guarded 60 env MLP_CONV_FAST=0 "$mlp" bench unet --data "$data" --device gpu --epochs 1 --base-channels 32 --batch 32 --json $ALLOW
fi
step mlp_unet_profile 60 "$mlp" bench unet --data "$data" --device gpu --epochs 1 --json $PROFILE $ALLOW
ls -la "$out"
tar czf "$final/results.tgz" -C "$out" .
cp "$out/summary.txt" "$final/summary.txt"
