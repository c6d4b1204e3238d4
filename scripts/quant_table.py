#!/usr/bin/env python3
"""Collects scripts/quant_table.sh's runs into bench/results/quant-table.{json,md}.

usage: quant_table.py WORK_DIR DENSE_EVAL_JSON "WIDTHS" "METHODS" MODEL MAX_BYTES CAL_BYTES OUT_JSON OUT_MD

Per (width, method): the quantize rows of the compress report (rel_err and the input-weighted
output_error of every quantized projection), their median over all tensors and per tensor class
(att.key, ffn.key, ...), the output error reduction against rtn at the same width, and the
held-out bits per byte of rwkvlite-run.
"""
import json
import statistics
import sys

WIDTH_LABEL = {"i8": "int8", "i4g64": "int4 (g64)", "i3g64": "int3 (g64)", "i2g32": "int2 (g32)"}


def tensor_class(name):
    parts = name.split(".")  # blocks.3.att.key.weight
    return ".".join(parts[2:4])


def load_run(work, width, method):
    report = json.load(open(f"{work}/{width}-{method}.rwkvlite.report.json"))
    evaluation = json.load(open(f"{work}/{width}-{method}.eval.json"))
    rows = [t for t in report["tensors"] if t.get("pass") == "quantize" and t["extra"].get("output_error") is not None]
    return report, evaluation, rows


def main():
    work, dense_path, widths, methods, model, max_bytes, cal_bytes, out_json, out_md = sys.argv[1:10]
    widths, methods = widths.split(), methods.split()
    dense = json.load(open(dense_path))
    dense_bpb = dense["bits_per_byte"]
    results = []
    for width in widths:
        rtn_median = None
        for method in methods:
            report, evaluation, rows = load_run(work, width, method)
            errors = [r["extra"]["output_error"] for r in rows]
            classes = {}
            for r in rows:
                classes.setdefault(tensor_class(r["tensor"]), []).append(r["extra"]["output_error"])
            median = statistics.median(errors)
            if method == "rtn":
                rtn_median = median
            results.append({
                "width": width,
                "method": method,
                "tensors": len(rows),
                "output_error_median": median,
                "output_error_mean": sum(errors) / len(errors),
                "output_error_median_by_class": {c: statistics.median(v) for c, v in sorted(classes.items())},
                "rel_err_median": statistics.median(r["rel_err"] for r in rows),
                "output_error_reduction_vs_rtn": (1 - median / rtn_median) if rtn_median else None,
                "bits_per_byte": evaluation["bits_per_byte"],
                "bpb_increase_vs_dense": evaluation["bits_per_byte"] / dense_bpb - 1,
                "file_bytes": evaluation["file_bytes"],
                "per_tensor": {r["tensor"]: {"rel_err": r["rel_err"], "output_error": r["extra"]["output_error"]}
                               for r in rows},
            })
    summary = {
        "model": model,
        "held_out": {"offset": 1000000, "max_bytes": int(max_bytes), "tokens_scored": dense["tokens_scored"]},
        "calibration_bytes": [0, int(cal_bytes)],
        "dense_fp32_bits_per_byte": dense_bpb,
        "rows": results,
    }
    with open(out_json, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")

    classes = sorted({c for r in results for c in r["output_error_median_by_class"]})
    lines = [
        f"Reference model `{model}`: the 42 calibrated projections (att receptance/key/value/gate/output, "
        f"ffn receptance/key) at each width, ffn.value, embedding and head at f16 in every row; calibration "
        f"bytes [0, {int(cal_bytes):,}), held-out bytes [1,000,000, end) ({dense['tokens_scored']:,} tokens scored); "
        f"dense FP32 {dense_bpb:.4f} bits/byte. Output error = ||(W - Q) X||_F / ||W X||_F from the calibration "
        f"E[x xᵀ]; median over tensors, and per class.",
        "",
        "| width | method | output error (median) | vs rtn | " + " | ".join(classes) + " | rel_err (median) | bits/byte | Δ vs dense | file bytes |",
        "|---|---|---|---|" + "---|" * len(classes) + "---|---|---|---|",
    ]
    for r in results:
        red = r["output_error_reduction_vs_rtn"]
        lines.append(
            f"| {WIDTH_LABEL.get(r['width'], r['width'])} | {r['method']} | {r['output_error_median']:.4f} | "
            f"{'' if r['method'] == 'rtn' else f'-{100 * red:.0f}%'} | "
            + " | ".join(f"{r['output_error_median_by_class'].get(c, float('nan')):.4f}" for c in classes)
            + f" | {r['rel_err_median']:.4f} | {r['bits_per_byte']:.4f} | {100 * r['bpb_increase_vs_dense']:+.2f}% | "
            f"{r['file_bytes']:,} |")
    with open(out_md, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
