#!/usr/bin/env bash
# One run on a GPU machine (see ../shared/gpu/README.md): mlp's wgpu kernels and U-Net training
# step against PyTorch fp32 on the same GPU, in the same command. Builds nothing: send the
# release `mlp` binary (and the Vulkan loader in .gl/) along. Results go to $OUT (or ./gpu-out).
#   bash runtime/compute/bench/gpu_compare.sh [path/to/mlp]
set -uo pipefail
mlp=${1:-target/release/mlp}
out=${OUT:-gpu-out}
mkdir -p "$out"
here=$(dirname "$0")
if ls .gl/*.deb >/dev/null 2>&1; then for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig; fi
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
"$mlp" devices --json > "$out/devices.json" 2> "$out/devices.err"
"$mlp" bench kernels --device gpu --json --repeats 20 > "$out/mlp_kernels_gpu.json" 2> "$out/mlp_kernels_gpu.err"
python3 "$here/torch_kernels.py" --device cuda > "$out/torch_kernels.json" 2> "$out/torch_kernels.err"
data=$(mktemp -d)
bash "$here/make_unet_data.sh" "$data" 64 4 "$mlp" > /dev/null 2>&1
"$mlp" bench unet --data "$data" --device gpu --epochs 8 --json > "$out/mlp_unet_gpu.json" 2> "$out/mlp_unet_gpu.err"
python3 "$here/unet_torch.py" --data "$data" --device cuda --epochs 8 --json > "$out/torch_unet.json" 2> "$out/torch_unet.err"
ls -la "$out"
