"""Runs scripts/plot_sweep.py on a generated sweep and checks its PNGs and its Pareto table.

Run: /usr/bin/python3 tests/python/test_plot_sweep.py   (plain asserts, exits non-zero on failure;
prints a skip line and exits 0 when matplotlib is not installed)
"""

import csv
import json
import os
import subprocess
import sys
import tempfile

try:
    import matplotlib  # noqa: F401
except ImportError:
    print("test_plot_sweep: skipped (matplotlib is not installed; scripts/setup.sh installs python3-matplotlib)")
    sys.exit(0)

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "plot_sweep.py")
COLUMNS = ["run_id", "model", "baseline", "params", "status", "error", "bits_per_byte", "dense_bits_per_byte",
           "bpb_increase_pct", "top1_agreement", "kl_mean", "peak_resident_weight_bytes", "file_bytes",
           "dense_fp16_bytes", "ratio_to_dense_fp16", "tokens_per_second", "compress_seconds", "eval_seconds",
           "some_future_column"]

# (run_id, model, baseline, params, status, bits/byte, peak bytes). For model "m": the front is
# lr-a (smallest), lr-b, int8 and fp16; lr-c is beaten by lr-b (bigger and worse), fp32 by fp16
# (bigger, same bits/byte), lr-fail is failed and would dominate everything if it counted.
RUNS = [
    ("fp32", "m", "dense-fp32", "", "ok", 2.000, 4000),
    ("fp16", "m", "dense-fp16", "", "ok", 2.000, 2000),
    ("int8", "m", "int8", "", "ok", 2.010, 1000),
    ("lr-a", "m", "", "divisor=8;bits=4", "ok", 2.300, 300),
    ("lr-b", "m", "", "divisor=4;bits=4", "ok", 2.100, 500),
    ("lr-c", "m", "", "divisor=4;bits=8", "ok", 2.150, 900),
    ("lr-fail", "m", "", "divisor=2;bits=4", "failed", "", ""),
    ("n-fp16", "n/other", "dense-fp16", "", "ok", 3.000, 700),
    ("n-lr", "n/other", "", "divisor=4", "ok", 3.500, 200),
]
EXPECTED_FRONT = {"lr-a", "lr-b", "int8", "fp16", "n-fp16", "n-lr"}


def write_sweep(d):
    with open(os.path.join(d, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        for run_id, model, baseline, params, status, bpb, peak in RUNS:
            dense_bpb, fp16 = (2.0, 2000) if model == "m" else (3.0, 700)
            ok = status == "ok"
            w.writerow({"run_id": run_id, "model": model, "baseline": baseline, "params": params, "status": status,
                        "error": "" if ok else "compress failed", "bits_per_byte": bpb,
                        "dense_bits_per_byte": dense_bpb,
                        "bpb_increase_pct": round(100 * (bpb / dense_bpb - 1), 3) if ok else "",
                        "peak_resident_weight_bytes": peak, "dense_fp16_bytes": fp16,
                        "ratio_to_dense_fp16": round(peak / fp16, 4) if ok else "", "some_future_column": "x"})
    # Compress reports for two low-rank runs; a keep-dense row (rank null, no rel_err) in one.
    for run_id, rank in (("lr-a", 4), ("lr-b", 8)):
        tensors = []
        for layer in range(3):
            for kind in ("att.key", "att.value"):
                row = {"pass": "lowrank", "tensor": f"blocks.{layer}.{kind}.weight", "shape": [64, 64],
                       "action": f"lowrank r={rank + layer}", "rel_err": 0.5 - 0.02 * rank - 0.01 * layer,
                       "extra": {"rank": rank + layer, "weight_error": 0.5, "svd": "exact", "note": ""}}
                if run_id == "lr-b" and layer == 2 and kind == "att.value":
                    row = {"pass": "lowrank", "tensor": row["tensor"], "action": "keep dense",
                           "extra": {"rank": None, "weight_error": 0.0, "svd": None, "note": "dense"}}
                tensors.append(row)
        tensors.append({"pass": "quantize", "tensor": "blocks.0.ffn.key.weight", "rel_err": 0.01, "extra": {}})
        tensors.append({"pass": "lowrank", "tensor": "head.weight", "rel_err": 0.3, "extra": {"rank": 16}})
        os.makedirs(os.path.join(d, "runs", run_id))
        with open(os.path.join(d, "runs", run_id, "model.rwkvlite.report.json"), "w") as f:
            json.dump({"schema_version": 1, "tensors": tensors}, f)


def table_run_ids(markdown):
    lines = [ln for ln in markdown.splitlines() if ln.startswith("| ")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    col = head.index("run_id")
    return [[c.strip() for c in ln.strip("|").split("|")][col] for ln in lines[1:]], head


def run(args):
    return subprocess.run([sys.executable, SCRIPT] + args, capture_output=True, text=True)


def main():
    with tempfile.TemporaryDirectory() as d:
        write_sweep(d)
        r = run([d, "--pareto-md"])
        assert r.returncode == 0, r.stderr
        ids, head = table_run_ids(r.stdout)
        assert sorted(ids) == sorted(EXPECTED_FRONT), ids
        assert len(ids) == len(EXPECTED_FRONT), ids  # each front run once
        assert head[3:5] == ["divisor", "bits"], head
        # Within a model the front is ordered by peak bytes: lr-a 300 < lr-b 500 < int8 < fp16.
        assert ids[:4] == ["lr-a", "lr-b", "int8", "fp16"], ids
        lr_b = next(ln for ln in r.stdout.splitlines() if "| lr-b |" in ln)
        assert "| 2.1000 | +5.00 | 500 | 0.250 |" in lr_b, lr_b
        with open(os.path.join(d, "pareto.md")) as f:
            assert f.read() == r.stdout

        plots = sorted(os.listdir(os.path.join(d, "plots")))
        # The second model has no compress reports, so no per-layer plot; '/' becomes '_'.
        assert plots == ["lowrank_m.png", "pareto_m.png", "pareto_n_other.png"], plots
        sizes = {}
        for name in plots:
            with open(os.path.join(d, "plots", name), "rb") as f:
                data = f.read()
            assert data[:8] == b"\x89PNG\r\n\x1a\n", name
            sizes[name] = len(data)
            assert sizes[name] > 10000, (name, sizes[name])  # axes, points and text, not an empty canvas

        # Same inputs, same bytes.
        out2 = os.path.join(d, "again")
        assert run([d, "-o", out2]).returncode == 0
        for name in plots:
            with open(os.path.join(d, "plots", name), "rb") as a, open(os.path.join(out2, name), "rb") as b:
                assert a.read() == b.read(), name

        # Bad input: one line on stderr, exit 3, nothing written.
        os.remove(os.path.join(d, "results.csv"))
        r = run([d, "-o", os.path.join(d, "none")])
        assert r.returncode == 3 and r.stderr.count("\n") == 1 and "results.csv: no such file" in r.stderr, r
        with open(os.path.join(d, "results.csv"), "w") as f:
            f.write("run_id,model,status\nx,m,ok\n")
        r = run([d])
        assert r.returncode == 3 and "missing column(s) bits_per_byte, peak_resident_weight_bytes" in r.stderr, r
        assert not os.path.exists(os.path.join(d, "none"))
        r = run([d, "--max-runs", "0"])
        assert r.returncode == 2, r
    print("test_plot_sweep: ok")


if __name__ == "__main__":
    main()
