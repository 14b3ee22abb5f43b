#!/usr/bin/env bash
# Makes the fault-segmentation dataset `mlp bench unet` and unet_torch.py train on:
# DIR/train and DIR/val hold NAME.cube.npy (float32 [il, xl, samples]) and NAME.labels.npy
# (uint8 fault masks), from independent synthetic surveys (different seeds, so validation
# faults are unseen). Usage: make_unet_data.sh DIR [TRAIN_SURVEYS] [VAL_SURVEYS] [MLP]
set -euo pipefail
dir=${1:?usage: make_unet_data.sh DIR [TRAIN_SURVEYS] [VAL_SURVEYS] [MLP]}
ntrain=${2:-128}
nval=${3:-8}
mlp=${4:-mlp}
mkdir -p "$dir/train" "$dir/val"
make() { # split seed
  local out="$dir/$1/s$2"
  "$mlp" segy synth --out "$out.sgy" --labels "$out.labels.npy" --size 16,64,64 --faults 4 --snr 20 --seed "$2"
  "$mlp" segy export "$out.sgy" --out "$out.cube.npy" --cube
  rm "$out.sgy"
}
for s in $(seq 1 "$ntrain"); do make train "$s"; done
for s in $(seq 100001 $((100000 + nval))); do make val "$s"; done
echo "$dir: $((16 * ntrain)) training and $((16 * nval)) validation sections of 64x64"
