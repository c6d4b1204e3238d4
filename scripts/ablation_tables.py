#!/usr/bin/env python3
"""Prints the ablation tables of docs/results.md from bench/results/ablation-*.json, as written by
scripts/bench_ablation.sh: one table per model (a row per config, variants such as
clustered-head-k8 after their config), then a per-layer table for every sparse channel-mix run.

  scripts/ablation_tables.py [RESULTS_DIR] [--layers | --layers-only] [--model SUBSTRING]
"""
import glob
import json
import os
import sys

ORDER = ["dense-fp32", "dense-fp16", "lowrank-svd", "lowrank-aware", "lowrank-int8", "int8", "default",
         "sparse-ffn", "lowrank-sparse-ffn", "clustered-head", "all-techniques"]


def split_stem(stem):
    """'tiny-rwkv-5v2-730K-FP32-clustered-head-k8' -> (model, config, tag); None if no config."""
    by_length = sorted(ORDER, key=len, reverse=True)  # lowrank-sparse-ffn before sparse-ffn
    for cfg in by_length:
        if stem.endswith("-" + cfg):
            return stem[: -len(cfg) - 1], cfg, ""
    for cfg in by_length:
        pos = stem.rfind("-" + cfg + "-")
        if pos >= 0:
            return stem[:pos], cfg, stem[pos + len(cfg) + 2:]
    return None


def load(results_dir):
    runs = {}
    for path in sorted(glob.glob(os.path.join(results_dir, "ablation-*.json"))):
        parsed = split_stem(os.path.basename(path)[len("ablation-"):-len(".json")])
        if parsed:
            model, cfg, tag = parsed
            runs.setdefault(model, {})[(ORDER.index(cfg), tag)] = (cfg + ("-" + tag if tag else ""), json.load(open(path)))
    return runs


def notes_of(d):
    s, h = d.get("sparse_ffn") or {}, d.get("clustered_head") or {}
    notes = []
    if any(l.get("has_predictor") for l in s.get("layers", [])):
        rec = s.get("recall")
        notes.append(f"FFN touched {s['ffn_weight_fraction_touched_per_token']:.2f}"
                     + ("" if rec is None else f", recall {rec:.3f}")
                     + f", FFN peak {d['peak_resident_bytes_by_part']['ffn']:,} B")
    if h.get("clusters"):
        notes.append(f"{h['clusters_kept_per_token']:.2f}/{h['clusters']} clusters, "
                     f"{h['head_rows_read_per_token']:.1f} head rows/token")
    return "; ".join(notes) or "-"


def model_tables(runs):
    for model in sorted(runs):
        print(f"\n**{model}**\n")
        print("| config | held-out bytes | bits/byte | Δ vs dense | top-1 agreement | KL | file bytes "
              "| peak resident weight bytes | sparse FFN / head |")
        print("|---|---|---|---|---|---|---|---|---|")
        for key in sorted(runs[model]):
            name, d = runs[model][key]
            ref = d.get("reference_bits_per_byte")
            delta = f"{100 * (d['bits_per_byte'] / ref - 1):+.2f}%" if ref else "-"
            nbytes = "all" if d.get("text_offset") == 1000000 and d["text_bytes"] >= 115394 else f"{d['text_bytes']:,}"
            print(f"| {name} | {nbytes} | {d['bits_per_byte']:.4f} | {delta} | {d['top1_agreement']:.4f} | "
                  f"{d['kl_mean']:.5f} | {d['file_bytes']:,} | {d['peak_resident_weight_bytes']:,} | {notes_of(d)} |")


def layer_tables(runs):
    for model in sorted(runs):
        for key in sorted(runs[model]):
            name, d = runs[model][key]
            layers = (d.get("sparse_ffn") or {}).get("layers") or []
            if not any(l.get("has_predictor") for l in layers):
                continue
            print(f"\n**{model} / {name}** (per layer)\n")
            print("| layer | true sparsity | predicted active | recall | neurons read/token | cache hit rate "
                  "| peak resident B |")
            print("|---|---|---|---|---|---|---|")

            def f(v, fmt):
                return "-" if v is None else format(v, fmt)

            for l in layers:
                print(f"| {l['layer']} | {f(l.get('true_sparsity'), '.3f')} | {l['selected_fraction']:.3f} | "
                      f"{f(l.get('recall'), '.3f')} | {l['neurons_read_per_token']:.1f} | {l['cache_hit_rate']:.3f} | "
                      f"{l['peak_resident_bytes']:,} |")


if __name__ == "__main__":
    argv = sys.argv[1:]
    only = None
    if "--model" in argv:
        i = argv.index("--model")
        only = argv[i + 1]
        del argv[i:i + 2]
    args = [a for a in argv if not a.startswith("--")]
    runs = load(args[0] if args else "bench/results")
    if only:
        runs = {m: r for m, r in runs.items() if only in m}
    if "--layers-only" not in argv:
        model_tables(runs)
    if "--layers" in argv or "--layers-only" in argv:
        layer_tables(runs)
