#!/usr/bin/env python3
"""The runtime benchmark behind scripts/bench_runtime.sh (docs/benchmarks.md).

Per model x configuration it measures, with build/bin/rwkvlite-run on held-out text:
tokens/s at 1 and 2 threads, milliseconds per token (median and p90, each token timed on
its own), load time, peak RSS, peak resident weight bytes, the weight bytes one token
touches, and each throughput as a fraction of the machine's read bandwidth measured by
build/bin/rwkvlite-bandwidth:  bytes touched per token x tokens/s / bandwidth.

Runs are interleaved: every round visits every (model, configuration, runtime, threads) once,
starting one step further along the list each round, so a slow moment of the machine hits
all configurations alike; the table gives the median over rounds.

Compressed files are made once and cached under build/bench/runtime/ (--force remakes them).
With --rwkv-cpp DRIVER (an rwkv.cpp driver built outside the repository, see
docs/benchmarks.md) rwkv.cpp FP32, FP16, Q8_0 and Q5_1 rows for the 0.1B-shape model are
interleaved with ours.
"""
import argparse
import json
import os
import platform
import shlex
import struct
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

# The shipped configurations, dense baselines first. Names are the configs/ file stems.
CONFIGS = ["dense-fp32", "dense-fp16", "int8", "default", "lowrank-sparse-ffn", "all-techniques"]
CALIBRATING = {"default", "lowrank-sparse-ffn", "all-techniques"}
RWKV_CPP_FORMATS = ["FP32", "FP16", "Q8_0", "Q5_1"]


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(cmd, capture=False):
    log("$ " + " ".join(shlex.quote(str(c)) for c in cmd))
    r = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit(f"bench: command failed with exit {r.returncode}: {cmd[0]}")
    return r.stdout


# ---------------------------------------------------------------- the machine

def machine_info():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return {
        "cpu_model": cpu,
        "logical_cpus": os.cpu_count(),
        "ram_bytes": mem_kib * 1024,
        "simd": sorted(f for f in flags if f in {"avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni"}),
        "kernel": platform.release(),
        "load_average_at_start": list(os.getloadavg()),
    }


def measure_bandwidth(bindir, quick):
    out = run([bindir / "rwkvlite-bandwidth", "--mib", 2048 if quick else 4096, "--passes", 3 if quick else 5,
               "--threads", "1,2"], capture=True)
    return json.loads(out)


# ---------------------------------------------------------------- models

def model_list(root, args):
    """(name, source checkpoint, description, compress overrides, rwkvlite-run text bytes)."""
    models = [{
        "name": "reference-5.3M",
        "source": root / "models/reference/rwkv5-ref-6x256.pth",
        "what": "models/reference (v5.2, 6 x 256, byte vocabulary, trained)",
        "overrides": [],  # the shipped configs, full calibration
        "max_bytes": 1500 if args.quick else 3000,
    }]
    tiny_dir = Path(args.tiny_dir)
    tiny = sorted(tiny_dir.glob("tiny-rwkv-*-FP32.bin")) if tiny_dir.is_dir() else []
    if not tiny:
        log(f"tiny models: none in {tiny_dir}, skipped")
    elif args.quick:
        tiny = [p for p in tiny if "5v2" in p.name][:1]
    for p in tiny:
        models.append({
            "name": p.name.removesuffix("-FP32.bin"),
            "source": p,
            "what": f"{tiny_dir.name}/{p.name} (barely trained; short calibration)",
            # Barely trained: the calibration only has to give the passes their statistics.
            "overrides": ["calibration.bytes=20000"],
            "max_bytes": 1500 if args.quick else 3000,
        })
    # Text lengths keep a run of the largest files to a few seconds (about 60 and 100 tokens at
    # the World tokenizer's 3.3 bytes per token on this text).
    synth = [("synthetic-0.1b", 12, 768, 200 if args.quick else 330)]
    if not args.quick:
        synth.append(("synthetic-0.4b", 24, 1024, 200))
    for name, layers, embd, max_bytes in synth:
        models.append({
            "name": name,
            "synthesize": ["--arch", "v5.2", "--layers", layers, "--embd", embd, "--vocab", 65536, "--seed", 1],
            "source": args.work / f"{name}-v5.2-{layers}x{embd}-v65536.safetensors",
            "what": f"rwkvlite synthesize v5.2 {layers} x {embd}, vocab 65536, seed 1 (random weights; short calibration)",
            # Random weights carry no accuracy, so a short calibration (about 600 World tokens)
            # only has to feed the passes; fewer k-means iterations keep the head clustering short.
            "overrides": ["calibration.bytes=2000", "calibration.samples=2048"],
            "cluster_overrides": ["max_iterations=10", "epochs=5"],
            "max_bytes": max_bytes,
        })
    return models


def pass_index(config_path, pass_type):
    """Index of the first [[pass]] of `pass_type` in a config (for --set pass.N.key=...)."""
    index = -1
    for line in config_path.read_text().splitlines():
        s = line.split("#", 1)[0].strip()
        if s == "[[pass]]":
            index += 1
        elif s.replace(" ", "") == f'type="{pass_type}"':
            return index
    return None


def compact_file(root, bindir, model, config, args):
    out = args.work / f"{model['name']}-{config}.rwkvlite"
    if out.exists() and not args.force:
        return out
    if "synthesize" in model and (args.force or not model["source"].exists()):
        run([bindir / "rwkvlite", "--log-level", "warn", "synthesize", *model["synthesize"], "-o", model["source"], "--force"])
    cfg = root / "configs" / f"{config}.toml"
    sets = list(model["overrides"]) if config in CALIBRATING else []
    cluster = pass_index(cfg, "cluster_head")
    if cluster is not None:
        sets += [f"pass.{cluster}.{kv}" for kv in model.get("cluster_overrides", [])]
    cmd = [bindir / "rwkvlite", "--log-level", "warn", "compress", model["source"], "-o", out, "-c", cfg, "--force",
           "--calibration-cache", args.work / "calibration-cache"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.monotonic()
    run(cmd)
    log(f"compressed {out.name} in {time.monotonic() - t0:.0f} s")
    return out


def rwkv_cpp_files(bindir, model, args):
    """FP32 and FP16 written by rwkvlite convert, Q8_0 and Q5_1 by rwkv.cpp's quantizer (the driver)."""
    files = {}
    for fmt in ["FP32", "FP16"]:
        out = args.work / f"{model['name']}-rwkv.cpp-{fmt}.bin"
        if args.force or not out.exists():
            run([bindir / "rwkvlite", "--log-level", "warn", "convert", model["source"], out, "--dtype", fmt.lower(), "--force"])
        files[fmt] = out
    for fmt in ["Q8_0", "Q5_1"]:
        out = args.work / f"{model['name']}-rwkv.cpp-{fmt}.bin"
        if args.force or not out.exists():
            run([args.rwkv_cpp, "quantize", files["FP16"], out, fmt])
        files[fmt] = out
    return files


# ---------------------------------------------------------------- bytes touched per token

def compact_tensors(path):
    """The tensor table of a compact file: its JSON header (docs/compact-format.md, 1.1 and 1.2)."""
    with open(path, "rb") as f:
        pre = f.read(64)
        if pre[:8] != b"RWKVLITE":
            raise SystemExit(f"bench: {path} is not a compact file")
        header_offset, header_size = struct.unpack_from("<QQ", pre, 16)
        f.seek(header_offset)
        return json.loads(f.read(header_size))["tensors"]


def compact_bytes_per_token(path, report):
    """Weight bytes one token's forward pass reads, from the file's tensor table and the run's
    measured selection: every tensor whole, except one embedding row; for neuron-major channel
    mixes, each layer's key and value rows times its measured selected fraction; for a
    clustered head, the rows scored per token (and their row_token entries)."""
    ffn_fraction = {l["layer"]: l["selected_fraction"] for l in (report.get("sparse_ffn") or {}).get("layers", [])}
    head = report.get("clustered_head") or {}
    total = 0.0
    for t in compact_tensors(path):
        name, nbytes, rows = t["name"], t["nbytes"], t["shape"][0] if t["shape"] else 1
        parts = name.split(".")
        if name in ("emb.weight", "emb.folded"):
            total += nbytes / rows
        elif (parts[0] == "blocks" and len(parts) >= 4 and parts[2] == "ffn" and int(parts[1]) in ffn_fraction
              and name.endswith((".ffn.key.weight", ".ffn.value.neurons"))):
            total += nbytes * ffn_fraction[int(parts[1])]
        elif name in ("head.clustered", "head.row_token") and head:
            total += nbytes * head["head_rows_read_per_token"] / rows
        else:
            total += nbytes
    return total


RWKV_CPP_TYPE_BYTES = {0: 4.0, 1: 2.0, 2: 18 / 32, 3: 20 / 32, 7: 22 / 32, 8: 24 / 32, 9: 34 / 32}  # ggml types


def rwkv_cpp_bytes_per_token(path):
    """Weight bytes per token of an rwkv.cpp file: every tensor whole but one embedding row.
    The file is a 24-byte header, then per tensor: dims, name length, type, shape, name, data."""
    total = 0.0
    with open(path, "rb") as f:
        f.seek(24)
        while True:
            head = f.read(12)
            if len(head) < 12:
                break
            n_dims, name_len, dtype = struct.unpack("<iii", head)
            shape = struct.unpack(f"<{n_dims}i", f.read(4 * n_dims))
            name = f.read(name_len).decode()
            numel = 1
            for d in shape:
                numel *= d
            nbytes = int(numel * RWKV_CPP_TYPE_BYTES[dtype])
            f.seek(nbytes, 1)
            total += nbytes / shape[-1] if name == "emb.weight" else nbytes  # ggml shape is [D, V]
    return total


# ---------------------------------------------------------------- runs

def run_ours(bindir, entry, threads, args, out_json):
    model = entry["model"]
    run([bindir / "rwkvlite-run", entry["file"], "--max-bytes", model["max_bytes"], "--threads", threads,
         "--log-level", "warn", "--json", out_json])
    r = json.loads(Path(out_json).read_text())
    return {
        "tokens": r["tokens_scored"], "tokens_per_second": r["tokens_per_second"],
        "ms_per_token_median": r["ms_per_token_median"], "ms_per_token_p90": r["ms_per_token_p90"],
        "load_seconds": r["load_seconds"], "peak_rss_bytes": r["peak_rss_bytes"],
        "peak_resident_weight_bytes": r["peak_resident_weight_bytes"],
        "bytes_per_token": compact_bytes_per_token(entry["file"], r),
    }


def run_rwkv_cpp(entry, threads, n_tokens, args):
    r = json.loads(run([args.rwkv_cpp, "eval", entry["file"], threads, n_tokens], capture=True))
    return {
        "tokens": r["tokens"], "tokens_per_second": r["tokens_per_second"],
        "ms_per_token_median": r["ms_per_token_median"], "ms_per_token_p90": r["ms_per_token_p90"],
        "load_seconds": r["load_seconds"], "peak_rss_bytes": r["peak_rss_bytes"],
        "peak_resident_weight_bytes": None,  # rwkv.cpp does not count its weight memory
        "bytes_per_token": entry["bytes_per_token"], "system_info": r.get("system_info"),
    }


def summarise(entry, threads, runs, bandwidth):
    bw = next(b["best_bytes_per_second"] for b in bandwidth["results"] if b["threads"] == threads)
    tps = median(r["tokens_per_second"] for r in runs)
    bpt = median(r["bytes_per_token"] for r in runs)
    return {
        "model": entry["model"]["name"], "config": entry["config"], "runtime": entry["runtime"], "threads": threads,
        "file": str(entry["file"]), "file_bytes": Path(entry["file"]).stat().st_size, "rounds": len(runs),
        "tokens_per_run": runs[0]["tokens"],
        "tokens_per_second": tps,
        "tokens_per_second_min": min(r["tokens_per_second"] for r in runs),
        "tokens_per_second_max": max(r["tokens_per_second"] for r in runs),
        "ms_per_token_median": median(r["ms_per_token_median"] for r in runs),
        "ms_per_token_p90": median(r["ms_per_token_p90"] for r in runs),
        "load_seconds": median(r["load_seconds"] for r in runs),
        "peak_rss_bytes": max(r["peak_rss_bytes"] for r in runs),
        "peak_resident_weight_bytes": runs[0]["peak_resident_weight_bytes"],
        "bytes_per_token": bpt,
        "bandwidth_bytes_per_second": bw,
        "bandwidth_fraction": bpt * tps / bw,
    }


# ---------------------------------------------------------------- the table

def mb(x):
    return "-" if x is None else f"{x / 1e6:,.1f}"


def markdown(result):
    m, bw = result["machine"], result["bandwidth"]
    lines = [
        f"Machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, {m['ram_bytes'] / 2**30:.1f} GiB RAM "
        f"({', '.join(m['simd'])}); load average {m['load_average_at_start'][0]:.2f} at start, "
        f"{m['load_average_at_end'][0]:.2f} at end.",
        f"Command: `{result['command']}` ({result['rounds']} interleaved rounds; {result['wall_seconds'] / 60:.1f} min).",
        "Read bandwidth (rwkvlite-bandwidth, " + f"{bw['buffer_bytes'] / 2**30:.0f} GiB buffer, best of {bw['passes']}): "
        + ", ".join(f"{b['threads']} thread{'s' if b['threads'] > 1 else ''} {b['best_bytes_per_second'] / 1e9:.1f} GB/s"
                    for b in bw["results"]) + ".",
        "",
        "| model | config | runtime | file MB | resident weights MB | weight MB/token | load s | tok/s 1T | tok/s 2T "
        "| ms/token 1T median / p90 | ms/token 2T median / p90 | bandwidth fraction 1T / 2T | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = {}
    for s in result["summary"]:
        rows.setdefault((s["model"], s["runtime"], s["config"]), {})[s["threads"]] = s
    def tps(s):
        return f"{s['tokens_per_second']:,.1f}" if s else "-"

    def latency(s):
        return f"{s['ms_per_token_median']:.2f} / {s['ms_per_token_p90']:.2f}" if s else "-"

    def fraction(s):
        return f"{s['bandwidth_fraction']:.2f}" if s else "-"

    for (model, runtime, config), by_t in rows.items():
        one, two = by_t.get(1), by_t.get(2)
        any_ = one or two
        rss = max(s["peak_rss_bytes"] for s in by_t.values())
        lines.append(
            f"| {model} | {config} | {runtime} | {mb(any_['file_bytes'])} | {mb(any_['peak_resident_weight_bytes'])} "
            f"| {mb(any_['bytes_per_token'])} | {any_['load_seconds']:.2f} | {tps(one)} | {tps(two)} "
            f"| {latency(one)} | {latency(two)} | {fraction(one)} / {fraction(two)} | {mb(rss)} |")
    if not result["rwkv_cpp"]:
        lines += ["", "rwkv.cpp column absent: RWKV_CPP_BENCH was not set (see docs/benchmarks.md)."]
    lines += ["", "Notes: tok/s is the median over rounds; ms/token is the median over rounds of each run's median "
              "and p90 token; weight MB/token is what one token's forward pass reads (every tensor, one embedding "
              "row, the measured share of sparse channel-mix rows and clustered-head rows); bandwidth fraction = "
              "weight bytes/token x tok/s / read bandwidth at that thread count (above 1 when the weights stay in "
              "cache). Synthetic and tiny models were compressed with a short calibration (no accuracy is claimed "
              "for them)."]
    for note in result["notes"]:
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--bindir", type=Path, default=None, help="default ROOT/build/bin")
    ap.add_argument("--work", type=Path, default=None, help="cache of compressed files (default ROOT/build/bench/runtime)")
    ap.add_argument("--out", type=Path, default=None, help="results directory (default ROOT/bench/results)")
    ap.add_argument("--tiny-dir", default=os.environ.get("TINY_DIR", ""))
    ap.add_argument("--quick", action="store_true", help="fewer models, rounds and tokens")
    ap.add_argument("--force", action="store_true", help="remake the compressed and converted files")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--rwkv-cpp", default=None, help="rwkv.cpp driver (docs/benchmarks.md)")
    ap.add_argument("--command", default=" ".join(sys.argv), help="the command to record")
    args = ap.parse_args()
    root = args.root.resolve()
    bindir = (args.bindir or root / "build/bin").resolve()
    args.work = (args.work or root / "build/bench/runtime").resolve()
    out_dir = (args.out or root / "bench/results").resolve()
    if not args.tiny_dir:
        args.tiny_dir = str(root.parent / "shared/models/tiny-rwkv")
    rounds = args.rounds or (2 if args.quick else 3)
    if rounds < 1:
        raise SystemExit("bench: --rounds must be at least 1")
    for exe in ["rwkvlite", "rwkvlite-run", "rwkvlite-bandwidth"]:
        if not (bindir / exe).exists():
            raise SystemExit(f"bench: {bindir / exe} is missing: run scripts/build.sh first")
    if args.rwkv_cpp and not os.access(args.rwkv_cpp, os.X_OK):
        raise SystemExit(f"bench: RWKV_CPP_BENCH={args.rwkv_cpp} is not an executable")
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "runs").mkdir(exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    os.chdir(root)

    machine = machine_info()
    log("bandwidth probe")
    bandwidth = measure_bandwidth(bindir, args.quick)

    # What to run: our files for every model x config, and rwkv.cpp's for the 0.1B-shape model.
    entries = []
    models = model_list(root, args)
    for model in models:
        for config in CONFIGS:
            entries.append({"model": model, "config": config, "runtime": "rwkvlite",
                            "file": compact_file(root, bindir, model, config, args)})
    notes = []
    if args.rwkv_cpp:
        synth = next(m for m in models if m["name"] == "synthetic-0.1b")
        for fmt, path in rwkv_cpp_files(bindir, synth, args).items():
            entries.append({"model": synth, "config": fmt, "runtime": "rwkv.cpp", "file": path,
                            "bytes_per_token": rwkv_cpp_bytes_per_token(path)})
        notes.append("rwkv.cpp rows: its FP32 and FP16 files written by `rwkvlite convert`, Q8_0 and Q5_1 by rwkv.cpp's "
                     "own quantizer from the FP16 file; tokens fed one at a time with rwkv_eval, logits every token, "
                     "as many tokens as rwkvlite-run scores on the same model.")

    # The interleaved rounds. rwkv.cpp feeds as many tokens as our runs score on that model.
    work_items = [(e, t) for e in entries for t in (1, 2)]
    raw = {i: [] for i in range(len(work_items))}
    tokens_of = {}
    for r in range(rounds):
        start = r % len(work_items)
        order = list(range(start, len(work_items))) + list(range(start))
        for done, i in enumerate(order):
            e, threads = work_items[i]
            log(f"round {r + 1}/{rounds}, {done + 1}/{len(order)}: {e['model']['name']} {e['config']} "
                f"{e['runtime']} {threads}T")
            if e["runtime"] == "rwkvlite":
                res = run_ours(bindir, e, threads, args, args.work / "runs" / f"{i}.json")
                tokens_of.setdefault(e["model"]["name"], res["tokens"])
            else:
                n = tokens_of.get(e["model"]["name"], 256)
                res = run_rwkv_cpp(e, threads, n, args)
            res["round"] = r
            raw[i].append(res)

    summary = [summarise(e, t, raw[i], bandwidth) for i, (e, t) in enumerate(work_items)]
    machine["load_average_at_end"] = list(os.getloadavg())
    result = {
        "command": args.command,
        "machine": machine,
        "bandwidth": bandwidth,
        "rounds": rounds,
        "quick": args.quick,
        "models": [{"name": m["name"], "what": m["what"], "source": str(m["source"]), "max_bytes": m["max_bytes"],
                    "compress_overrides": m["overrides"] + m.get("cluster_overrides", [])} for m in models],
        "rwkv_cpp": bool(args.rwkv_cpp),
        "notes": notes,
        "wall_seconds": time.monotonic() - t_start,
        "summary": summary,
        "runs": [{"model": e["model"]["name"], "config": e["config"], "runtime": e["runtime"], "threads": t,
                  "runs": raw[i]} for i, (e, t) in enumerate(work_items)],
    }
    (out_dir / "runtime-bench.json").write_text(json.dumps(result, indent=1) + "\n")
    md = markdown(result)
    (out_dir / "runtime-bench.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
