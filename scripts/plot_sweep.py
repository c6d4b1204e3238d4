#!/usr/bin/python3
"""Plots a sweep: reads DIR/results.csv (one row per run) and writes into DIR/plots/ (or -o OUT):

  pareto_<model>.png   peak resident weight bytes (x, log) against bits per byte (y), a point per
                       successful run coloured by the first swept parameter, baselines with their own
                       markers, and the Pareto front (both minimised) as a step line;
  lowrank_<model>.png  for low-rank runs (Pareto-front runs first, at most --max-runs): the rank and
                       the weight rel_err of every blocks.N.* tensor against N, a column per tensor
                       kind, a line per run, read from DIR/runs/<run_id>/model.rwkvlite.report.json.

Prints the Pareto front of every model as a Markdown table on stdout; --pareto-md also writes it to
DIR/pareto.md (or the given path). Failed rows are left out; unknown columns are ignored.

  scripts/plot_sweep.py DIR [-o OUT] [--pareto-md [PATH]] [--max-runs N] [--no-plots]

Exit codes: 0 done, 2 bad options, 3 bad input (no results.csv, a missing column, no successful
run), 5 matplotlib missing (Debian's python3-matplotlib; scripts/setup.sh installs it).
See docs/sweep-plots.md.
"""
import argparse
import csv
import json
import math
import os
import re
import sys
import tempfile

REQUIRED_COLUMNS = ["run_id", "model", "status", "bits_per_byte", "peak_resident_weight_bytes"]
BASELINE_MARKERS = {"dense-fp32": "s", "dense-fp16": "D", "int8": "^"}
BLOCK_TENSOR = re.compile(r"^blocks\.(\d+)\.(.+?)(?:\.weight)?$")
EXIT_USAGE, EXIT_INPUT, EXIT_RESOURCE = 2, 3, 5


class InputError(Exception):
    pass


# --- reading ------------------------------------------------------------------------------------

def number(text):
    """A CSV cell as a float; None when empty or not a finite number."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def parse_params(text):
    """'divisor=4;rank_rule=budget' -> {'divisor': '4', 'rank_rule': 'budget'} (in order)."""
    params = {}
    for item in (text or "").split(";"):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        params[key.strip()] = value.strip() if sep else ""
    return params


def read_runs(csv_path):
    """The successful runs of results.csv, each a dict of its cells plus parsed fields."""
    if not os.path.isfile(csv_path):
        raise InputError(f"{csv_path}: no such file")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{csv_path}: missing column(s) {', '.join(missing)}")
        runs = []
        for line_no, row in enumerate(reader, start=2):
            if (row.get("status") or "").strip() != "ok":
                continue
            bpb, peak = number(row["bits_per_byte"]), number(row["peak_resident_weight_bytes"])
            if bpb is None or peak is None or peak <= 0:
                print(f"plot_sweep: {csv_path}:{line_no}: run {row['run_id']!r} has status ok but no "
                      "bits_per_byte or peak_resident_weight_bytes; left out", file=sys.stderr)
                continue
            run = dict(row)
            run["bpb"], run["peak"] = bpb, peak
            run["baseline"] = (row.get("baseline") or "").strip()
            run["param_map"] = parse_params(row.get("params"))
            runs.append(run)
    if not runs:
        raise InputError(f"{csv_path}: no successful run")
    return runs


def by_model(runs):
    models = {}
    for r in runs:
        models.setdefault(r["model"], []).append(r)
    return models


# --- the Pareto front ---------------------------------------------------------------------------

def pareto_front(runs):
    """The runs no other run beats on both peak bytes and bits/byte (<= both, < one), by peak bytes."""
    def beats(o, r):
        return o["peak"] <= r["peak"] and o["bpb"] <= r["bpb"] and (o["peak"] < r["peak"] or o["bpb"] < r["bpb"])
    front = [r for r in runs if not any(beats(o, r) for o in runs)]
    return sorted(front, key=lambda r: (r["peak"], r["bpb"], r["run_id"]))


def bpb_increase_pct(run):
    v = number(run.get("bpb_increase_pct"))
    if v is None:
        dense = number(run.get("dense_bits_per_byte"))
        v = 100.0 * (run["bpb"] / dense - 1.0) if dense else None
    return v


def ratio_to_fp16(run):
    v = number(run.get("ratio_to_dense_fp16"))
    if v is None:
        fp16 = number(run.get("dense_fp16_bytes"))
        v = run["peak"] / fp16 if fp16 else None
    return v


def fmt(v, spec):
    return "" if v is None else format(v, spec)


def markdown_table(models):
    """One Markdown table: the front of every model, a column per swept parameter key."""
    fronts = [(m, pareto_front(rs)) for m, rs in models.items()]
    keys = []
    for _, front in fronts:
        for r in front:
            keys += [k for k in r["param_map"] if k not in keys]
    head = ["model", "run_id", "baseline"] + keys + [
        "bits/byte", "Δ vs dense %", "peak resident bytes", "ratio to dense FP16"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for model, front in fronts:
        for r in front:
            cells = [model, r["run_id"], r["baseline"]] + [r["param_map"].get(k, "") for k in keys] + [
                fmt(r["bpb"], ".4f"), fmt(bpb_increase_pct(r), "+.2f"), str(int(r["peak"])),
                fmt(ratio_to_fp16(r), ".3f")]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# --- low-rank reports ---------------------------------------------------------------------------

def lowrank_rows(report_path):
    """[(layer, kind, rank or None, rel_err or None)] of the report's lowrank blocks.N.* rows."""
    try:
        with open(report_path, encoding="utf-8") as f:
            report = json.load(f)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        print(f"plot_sweep: {report_path}: unreadable ({e}); left out", file=sys.stderr)
        return []
    rows = []
    for t in report.get("tensors", []) if isinstance(report, dict) else []:
        if not isinstance(t, dict) or t.get("pass") != "lowrank":
            continue
        m = BLOCK_TENSOR.match(str(t.get("tensor", "")))
        if not m:
            continue  # not a per-layer tensor (e.g. head.weight)
        extra = t.get("extra") if isinstance(t.get("extra"), dict) else {}
        rank = extra.get("rank")  # null when the pass kept the matrix dense
        rows.append((int(m.group(1)), m.group(2), rank if isinstance(rank, int) else None,
                     number(t.get("rel_err"))))
    return rows


def pick_lowrank_runs(sweep_dir, runs, front, max_runs):
    """The runs with lowrank rows: front runs first (by peak bytes), then the rest by bits/byte."""
    front_ids = {r["run_id"] for r in front}
    ordered = list(front) + sorted((r for r in runs if r["run_id"] not in front_ids),
                                          key=lambda r: (r["bpb"], r["run_id"]))
    picked = []
    for r in ordered:
        if len(picked) >= max_runs:
            break
        rows = lowrank_rows(os.path.join(sweep_dir, "runs", r["run_id"], "model.rwkvlite.report.json"))
        if rows:
            picked.append((r, rows))
    return picked


# --- plotting -----------------------------------------------------------------------------------

def varying_keys(runs):
    """The parameter keys whose value differs between the runs: the ones worth a label."""
    keys = []
    for r in runs:
        keys += [k for k in r["param_map"] if k not in keys]
    return [k for k in keys if len({r["param_map"].get(k) for r in runs}) > 1] or keys


def run_label(run, keys, width=80):
    text = run["baseline"] or ", ".join(f"{k}={run['param_map'][k]}" for k in keys if k in run["param_map"])
    text = text or run["run_id"]
    return text if len(text) <= width else text[: width - 1] + "…"


def readable_bytes(v, _pos=None):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= scale:
            return f"{v / scale:g} {unit}"
    return f"{v:g} B"


def sibling_tmp(path):
    """A temporary file beside path with the mode a plain open() would give (mkstemp's is 0600)."""
    fd, tmp = tempfile.mkstemp(prefix=".plot_sweep-", dir=os.path.dirname(os.path.abspath(path)))
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, tmp


def save(fig, path):
    """Writes the PNG atomically; no Software tag, so the bytes depend only on the data and fonts."""
    fd, tmp = sibling_tmp(path)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None})
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def plot_pareto(plt, ticker, model, runs, front, path):
    fig, ax = plt.subplots(figsize=(9, 6))
    swept = [r for r in runs if not r["baseline"]]
    first_key = next(iter(varying_keys(swept)), None)
    # Numeric values in numeric order (2, 4, 16), then the others alphabetically.
    groups = sorted({r["param_map"].get(first_key, "") for r in swept},
                    key=lambda v: (number(v) is None, number(v) or 0, v))
    cmap = plt.get_cmap("viridis" if len(groups) > 10 else "tab10")
    colour = {g: cmap(i / max(1, len(groups) - 1)) if len(groups) > 10 else cmap(i) for i, g in enumerate(groups)}
    front_ids = {r["run_id"] for r in front}
    for g in groups:
        pts = [r for r in swept if r["param_map"].get(first_key, "") == g]
        ax.scatter([r["peak"] for r in pts], [r["bpb"] for r in pts], s=36, color=colour[g], alpha=0.85,
                   label=(f"{first_key}={g}" if g else f"{first_key} not set") if first_key else "runs", zorder=3)
    for r in runs:
        if r["baseline"]:
            ax.scatter([r["peak"]], [r["bpb"]], s=90, marker=BASELINE_MARKERS.get(r["baseline"], "X"),
                       facecolor="white", edgecolor="black", linewidth=1.5, zorder=4, label=r["baseline"])
            ax.annotate(r["baseline"], (r["peak"], r["bpb"]), textcoords="offset points", xytext=(6, 6), fontsize=9)
        elif r["run_id"] in front_ids:
            ax.annotate(r["run_id"], (r["peak"], r["bpb"]), textcoords="offset points", xytext=(5, -11),
                        fontsize=7, color="0.25")
    if front:
        xs, ys = [r["peak"] for r in front], [r["bpb"] for r in front]
        ax.plot(xs, ys, drawstyle="steps-post", color="crimson", linewidth=1.3, zorder=2, label="Pareto front")
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(readable_bytes))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel("peak resident weight bytes (log scale)")
    ax.set_ylabel("bits per byte (lower is better)")
    ax.set_title(f"{model}: {len(runs)} successful runs, {len(front)} on the Pareto front")
    ax.grid(True, which="both", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))  # a baseline seen twice gets one entry
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="best")
    fig.tight_layout()
    save(fig, path)
    plt.close(fig)


def plot_lowrank(plt, model, picked, path):
    kinds = sorted({kind for _, rows in picked for _, kind, _, _ in rows})
    fig, axes = plt.subplots(2, len(kinds), figsize=(max(5.0, 3.6 * len(kinds)), 6.5), squeeze=False, sharex=True)
    cmap = plt.get_cmap("tab10")
    keys = varying_keys([run for run, _ in picked])
    for i, (run, rows) in enumerate(picked):
        for j, kind in enumerate(kinds):
            pts = sorted((layer, rank, err) for layer, k, rank, err in rows if k == kind)
            layers = [p[0] for p in pts]
            # A matrix kept dense has no rank and no error: a gap in the line.
            ranks = [p[1] if p[1] is not None else math.nan for p in pts]
            errs = [p[2] if p[2] is not None else math.nan for p in pts]
            style = dict(color=cmap(i % 10), marker="o", markersize=3, linewidth=1.2)
            axes[0][j].plot(layers, ranks, label=f"{run['run_id']}: {run_label(run, keys)}", **style)
            axes[1][j].plot(layers, errs, **style)
    for j, kind in enumerate(kinds):
        axes[0][j].set_title(kind, fontsize=10)
        axes[1][j].set_xlabel("layer")
        for row in (0, 1):
            axes[row][j].grid(True, alpha=0.3)
            axes[row][j].xaxis.get_major_locator().set_params(integer=True)
    axes[0][0].set_ylabel("rank")
    axes[1][0].set_ylabel("weight rel_err")
    fig.suptitle(f"{model}: low-rank rank and error per layer ({len(picked)} runs)", fontsize=11)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(2, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0.04 + 0.035 * math.ceil(len(labels) / 2), 1, 0.96))
    save(fig, path)
    plt.close(fig)


def file_stem(model):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"


# --- main ---------------------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(description="Plots a sweep's results.csv and prints its Pareto front.")
    ap.add_argument("dir", help="sweep directory with results.csv (and runs/<run_id>/model.rwkvlite.report.json)")
    ap.add_argument("-o", "--out", help="directory for the PNGs (default DIR/plots)")
    ap.add_argument("--pareto-md", nargs="?", const="", metavar="PATH",
                    help="also write the Pareto table to PATH (default DIR/pareto.md)")
    ap.add_argument("--max-runs", type=int, default=6, help="low-rank runs per model in the per-layer plot (default 6)")
    ap.add_argument("--no-plots", action="store_true", help="only print the Pareto table")
    args = ap.parse_args(argv)
    if args.max_runs < 1:
        ap.error("--max-runs must be at least 1")

    # Checked first, so a missing matplotlib leaves no table behind either.
    if not args.no_plots:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            from matplotlib import ticker
        except ImportError:
            print("plot_sweep: matplotlib is not installed (Debian package python3-matplotlib; scripts/setup.sh "
                  "installs it); use --no-plots for the table only", file=sys.stderr)
            return EXIT_RESOURCE

    try:
        models = by_model(read_runs(os.path.join(args.dir, "results.csv")))
    except InputError as e:
        print(f"plot_sweep: {e}", file=sys.stderr)
        return EXIT_INPUT

    table = markdown_table(models)
    sys.stdout.write(table)
    if args.pareto_md is not None:
        md_path = args.pareto_md or os.path.join(args.dir, "pareto.md")
        fd, tmp = sibling_tmp(md_path)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(table)
        os.replace(tmp, md_path)
    if args.no_plots:
        return 0

    out_dir = args.out or os.path.join(args.dir, "plots")
    os.makedirs(out_dir, exist_ok=True)
    for model, runs in models.items():
        front = pareto_front(runs)
        path = os.path.join(out_dir, f"pareto_{file_stem(model)}.png")
        plot_pareto(plt, ticker, model, runs, front, path)
        print(f"plot_sweep: wrote {path}", file=sys.stderr)
        picked = pick_lowrank_runs(args.dir, runs, front, args.max_runs)
        if picked:
            path = os.path.join(out_dir, f"lowrank_{file_stem(model)}.png")
            plot_lowrank(plt, model, picked, path)
            print(f"plot_sweep: wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
