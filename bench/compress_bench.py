#!/usr/bin/env python3
"""The compressor benchmark behind scripts/bench_compress.sh (docs/benchmarks.md).

Compresses the synthetic 0.1B-shape checkpoint (rwkvlite synthesize v5.2, 12 x 768, vocabulary
65,536, seed 1) with shipped configs at their own calibration size, and reports from each
run's OUT.report.json the wall time and the peak RSS of every stage (loading, calibration,
each pass, writing) and of the whole run, beside the FP32 size of the model: the issue's
targets are a run under 2 minutes with peak RSS under 1.5x the FP32 model.

Random weights carry no accuracy; this measures time and memory only. Every run is timed
fresh (no calibration cache).
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runtime_bench import log, machine_info, run  # noqa: E402  (one machine record and runner for both benchmarks)

ROOT = Path(__file__).resolve().parent.parent


def mb(b):
    return b / 1e6


def compress(bindir, source, config, out, threads):
    t0 = time.monotonic()
    run([bindir / "rwkvlite", "--log-level", "warn", "compress", source, "-o", out, "-c", ROOT / "configs" / f"{config}.toml",
         "--threads", threads, "--force"])
    wall = time.monotonic() - t0
    report = json.loads(Path(f"{out}.report.json").read_text())
    return {"config": config, "threads": threads, "wall_seconds": wall, "seconds": report["seconds"],
            "peak_rss_bytes": report["peak_rss_bytes"], "dense_fp32_bytes": report["dense_fp32_bytes"],
            "file_bytes": report["file_bytes"], "peak_rss_per_stage": report["stages"]["peak_rss_per_stage"],
            "stages": report["stages"]["rows"],
            "calibration_bytes": report["config"]["calibration"]["bytes"]}


def table(results):
    lines = []
    for r in results:
        fp32 = r["dense_fp32_bytes"]
        lines += [f"### {r['config']} ({r['threads']} threads, calibration {r['calibration_bytes']:,} bytes)", "",
                  "| stage | seconds | peak RSS MB | peak RSS / FP32 model |", "|---|---|---|---|"]
        for s in r["stages"]:
            lines.append(f"| {s['stage']} | {s['seconds']:.1f} | {mb(s['peak_rss_bytes']):.0f} | "
                         f"{s['peak_rss_bytes'] / fp32:.2f}x |")
        lines.append(f"| **total** | **{r['seconds']:.1f}** | **{mb(r['peak_rss_bytes']):.0f}** | "
                     f"**{r['peak_rss_bytes'] / fp32:.2f}x** |")
        lines += ["", f"FP32 model {mb(fp32):.0f} MB; output {mb(r['file_bytes']):.1f} MB. "
                  f"Targets: under 120 s ({'met' if r['seconds'] < 120 else 'not met'}), peak RSS under 1.5x FP32 "
                  f"= {mb(1.5 * fp32):.0f} MB ({'met' if r['peak_rss_bytes'] < 1.5 * fp32 else 'not met'}).", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="all-techniques,default", help="comma-separated config stems")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench" / "compress")
    ap.add_argument("--command", default="scripts/bench_compress.sh", help="the command line recorded with the results")
    args = ap.parse_args()
    bindir = ROOT / "build" / "bin"
    args.work.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    source = args.work / "synthetic-0.1b-v5.2-12x768-v65536.safetensors"
    if not source.exists():
        run([bindir / "rwkvlite", "--log-level", "warn", "synthesize", "--arch", "v5.2", "--layers", 12, "--embd", 768,
             "--vocab", 65536, "--seed", 1, "-o", source, "--force"])
    results = []
    for config in args.configs.split(","):
        log(f"compressing with {config} ...")
        r = compress(bindir, source, config, args.work / f"{config}.rwkvlite", args.threads)
        log(f"{config}: {r['seconds']:.1f} s, peak RSS {mb(r['peak_rss_bytes']):.0f} MB")
        results.append(r)
    machine["load_average_at_end"] = list(os.getloadavg())
    md = "\n".join([
        "## Compressor: synthetic 0.1B shape", "",
        f"Machine: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs, {machine['ram_bytes'] / 2**30:.0f} GiB; "
        f"load average {machine['load_average_at_start'][0]:.1f} at start, {machine['load_average_at_end'][0]:.1f} at end.",
        f"Command: `{args.command}`", "", table(results)])
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "compress-bench.json").write_text(json.dumps({"machine": machine, "command": args.command,
                                                             "results": results}, indent=1) + "\n")
    (out_dir / "compress-bench.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
