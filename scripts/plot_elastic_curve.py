#!/usr/bin/python3
"""Plots an elastic budget curve (scripts/elastic_curve.sh's JSONL): held-out bits-per-byte
increase and tokens/s against the memory budget, resident and streamed runs marked apart.

    scripts/plot_elastic_curve.py bench/results/elastic-curve-reference.jsonl docs/img/elastic-curve-reference.png NAME
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    source, target, name = sys.argv[1:4]
    rows = [json.loads(line) for line in open(source)]
    curve = [r for r in rows if r["mode"] == "resident-or-streamed" and "error" not in r]
    fig, (acc, speed) = plt.subplots(1, 2, figsize=(11, 4.2))
    for streamed, marker, label in ((False, "o", "all matrices resident"), (True, "s", "layers streamed")):
        pts = [r for r in curve if (r["first_streamed_layer"] is not None) == streamed]
        if not pts:
            continue
        x = [100.0 / r["x_below_fp16"] for r in pts]
        acc.plot(x, [r["measured_increase_pct"] for r in pts], marker, label=f"measured, {label}")
        acc.plot(x, [r["predicted_increase_pct"] for r in pts], marker, mfc="none", label=f"predicted, {label}")
        speed.plot(x, [r["tokens_per_second"] for r in pts], marker, label=f"measured, {label}")
        speed.plot(x, [r["predicted_tokens_per_second"] for r in pts], marker, mfc="none", label=f"predicted, {label}")
    for ax in (acc, speed):
        ax.set_xscale("log")
        ax.set_xlabel("peak resident weight bytes, % of dense FP16")
        ax.grid(True, which="both", alpha=0.3)
        ax.invert_xaxis()
    acc.set_yscale("symlog", linthresh=0.1)
    acc.set_ylabel("bits per byte vs dense, % (held-out)")
    speed.set_ylabel("tokens/s (page cache, unthrottled)")
    acc.legend(fontsize=8)
    speed.legend(fontsize=8)
    fig.suptitle(f"rwkvlite elastic runtime: {name}")
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
