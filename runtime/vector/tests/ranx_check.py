"""Reference values for tests/ranx_crosscheck.rs: ranx's recall, MRR and nDCG at k.

Reads {"qrels": {qid: {doc: rel}}, "run": {qid: {doc: score}}, "ks": [k, ...]} from the file
named by argv[1]; prints {"k": {"recall": {qid: v}, "mrr": {...}, "ndcg": {...}}}. Follows
the conventions of mlp_vector::metrics: queries without a relevant document are dropped from
the qrels, then ranx's make_comparable adds empty results for judged queries missing from the
run and drops run queries that are not judged.
"""
import json
import sys

from ranx import Qrels, Run, evaluate

d = json.load(open(sys.argv[1]))
qrels = Qrels({q: docs for q, docs in d["qrels"].items() if any(r >= 1 for r in docs.values())})
out = {}
for k in d["ks"]:
    run = Run(d["run"]).make_comparable(qrels)
    suffix = f"@{k}" if k else ""
    names = {"recall": "recall" + suffix, "mrr": "mrr" + suffix, "ndcg": "ndcg" + suffix}
    evaluate(qrels, run, list(names.values()))
    out[str(k)] = {
        ours: {q: float(v) for q, v in run.scores[theirs].items()}
        for ours, theirs in names.items()
    }
print(json.dumps(out))
