"""sentence-transformers on the sentences the Rust bench used, for throughput and agreement.

    cargo run --release -p mlp-embed --bin mlp-embed-bench -- --model DIR --dump /tmp/embed.json
    python3 runtime/embed/bench/st_reference.py --model DIR --dump /tmp/embed.json [--device cpu]
        [--batch 32] [--json]

Reports sentences/s of SentenceTransformer.encode (after one warm-up batch) and the largest
deviation 1 - cosine between its embeddings and the Rust ones in the dump.
"""

import argparse
import json
import time

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--dump", required=True, help="JSON written by mlp-embed-bench --dump")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()

    with open(a.dump, encoding="utf-8") as f:
        dump = json.load(f)
    sentences = dump["sentences"]
    ours = np.asarray(dump["embeddings"], dtype=np.float64)

    t0 = time.perf_counter()
    # fp32 throughout (transformers may load a checkpoint in its stored dtype), no TF32.
    torch.backends.cuda.matmul.allow_tf32 = False
    model = SentenceTransformer(a.model, device=a.device).float()
    load_s = time.perf_counter() - t0
    model.encode(sentences[: a.batch], batch_size=a.batch)  # warm-up
    t1 = time.perf_counter()
    theirs = model.encode(sentences, batch_size=a.batch, convert_to_numpy=True)
    secs = time.perf_counter() - t1
    theirs = theirs.astype(np.float64)

    cos = (ours * theirs).sum(1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
    )
    worst = int(np.argmin(cos))
    out = {
        "device": a.device,
        "torch_threads": torch.get_num_threads(),
        "sentences": len(sentences),
        "batch": a.batch,
        "load_seconds": load_s,
        "seconds": secs,
        "sentences_per_s": len(sentences) / secs,
        "max_cosine_deviation": float(1.0 - cos.min()),
        "worst_sentence": worst,
        "max_abs_difference": float(np.abs(ours - theirs).max()),
    }
    if a.json:
        print(json.dumps(out))
    else:
        print(f"sentence-transformers on {a.device} ({out['torch_threads']} torch threads)")
        print(f"sentences  {len(sentences)}, batch {a.batch}")
        print(f"time       {secs:.2f} s")
        print(f"throughput {out['sentences_per_s']:.1f} sentences/s")
        print(
            f"agreement  max 1 - cosine {out['max_cosine_deviation']:.2e} "
            f"(sentence {worst}), max |difference| {out['max_abs_difference']:.2e}"
        )


if __name__ == "__main__":
    main()
