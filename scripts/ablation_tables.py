#!/usr/bin/env python3
"""Prints the README's ablation tables (one per model) from bench/results/ablation-*.json,
as written by scripts/bench_ablation.sh."""
import glob
import json
import os
import re
import sys

ORDER = ["dense-fp32", "dense-fp16", "lowrank-svd", "lowrank-aware", "lowrank-int8", "int8", "default",
         "sparse-ffn", "lowrank-sparse-ffn", "clustered-head", "all-techniques"]


def main(results_dir):
    runs = {}
    for path in glob.glob(os.path.join(results_dir, "ablation-*.json")):
        stem = os.path.basename(path)[len("ablation-"):-len(".json")]
        cfg = next((c for c in sorted(ORDER, key=len, reverse=True) if stem.endswith("-" + c)), None)
        if cfg is None:
            continue
        runs.setdefault(stem[: -len(cfg) - 1], {})[cfg] = json.load(open(path))
    for model in sorted(runs):
        rows = runs[model]
        dense = rows.get("dense-fp32", {}).get("reference_bits_per_byte")
        print(f"\n**{model}** (dense {dense:.4f} bits/byte)\n" if dense else f"\n**{model}**\n")
        print("| config | bits/byte | top-1 agreement | KL | file bytes | peak resident weight bytes | sparse FFN / head |")
        print("|---|---|---|---|---|---|---|")
        for cfg in ORDER:
            d = rows.get(cfg)
            if not d:
                continue
            s, h = d.get("sparse_ffn") or {}, d.get("clustered_head") or {}
            notes = []
            if any(l.get("has_predictor") for l in s.get("layers", [])):
                rec = s.get("recall")
                notes.append(f"touched {s['ffn_weight_fraction_touched_per_token']:.2f}"
                             + ("" if rec is None else f", recall {rec:.3f}"))
            if h.get("clusters"):
                notes.append(f"{h['clusters_kept_per_token']:.1f}/{h['clusters']} clusters, "
                             f"{h['head_rows_read_per_token']:.0f} head rows/token")
            print(f"| {cfg} | {d['bits_per_byte']:.4f} | {d['top1_agreement']:.4f} | {d['kl_mean']:.5f} | "
                  f"{d['file_bytes']:,} | {d['peak_resident_weight_bytes']:,} | {'; '.join(notes) or '-'} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
