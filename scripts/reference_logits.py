#!/usr/bin/env python3
"""Independent token-by-token (RNN-mode) RWKV v5.2 inference in numpy, for rwkvlite's reference model.

Deliberately shares no code with the training model (scripts/reference_model.py): it reads only
the BlinkDL-format .pth and implements the published v5.2 recurrence in float64, so agreement
between the two (held-out bits/byte) cross-checks both.

Outputs (next to the model unless --out-dir):
  heldout-logits.bin   little-endian float32, [256 positions][256 logits]: position p holds the
                       logits after feeding held-out bytes 1,000,000 .. 1,000,000+p one at a time
                       from a fresh (all-zero) state, i.e. the prediction for byte 1,000,000+p+1.
  heldout-logits.json  layout, eps and provenance.
  sparsity.json        per-layer channel-mix activation sparsity on the held-out range.
Also prints held-out bits/byte over the whole held-out range (teacher-forced, fresh state).

Usage: /usr/bin/python3 scripts/reference_logits.py [--model models/reference/rwkv5-ref-6x256.pth]
"""

import argparse
import hashlib
import json
import math
import os
import time

import numpy as np
import torch  # only to read the .pth

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "third_party", "data", "tinyshakespeare.txt")
HELDOUT_START = 1_000_000
LAYER_NORM_EPS = 1e-5
# ln_x: group norm over each head's S channels of the *undivided* wkv output with eps = 64e-5.
# BlinkDL trains GroupNorm(eps=1e-5) on wkv / head_size_divisor (8); since
# GroupNorm(x / 8, eps) == GroupNorm(x, eps * 64), both are the same function.
GROUP_NORM_EPS = 64e-5


def layer_norm(x, weight, bias, eps=LAYER_NORM_EPS):
    mean = x.mean()
    var = ((x - mean) ** 2).mean()  # biased variance, as torch.nn.LayerNorm
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class RWKV5Sequential:
    def __init__(self, path):
        sd = torch.load(path, map_location="cpu")
        self.w = {k: v.double().numpy() for k, v in sd.items()}
        self.n_layer = 0
        while f"blocks.{self.n_layer}.ln1.weight" in self.w:
            self.n_layer += 1
        self.n_head, self.head_size = self.w["blocks.0.att.time_decay"].shape
        self.n_embd = self.w["emb.weight"].shape[1]
        self.dim_ffn = self.w["blocks.0.ffn.key.weight"].shape[0]
        for i in range(self.n_layer):
            a = f"blocks.{i}.att."
            # Per-channel decay on the key index: w = exp(-exp(time_decay)).
            self.w[a + "decay"] = np.exp(-np.exp(self.w[a + "time_decay"]))
            for name in ("time_mix_k", "time_mix_v", "time_mix_r", "time_mix_g"):
                self.w[a + name] = self.w[a + name].reshape(-1)
            for name in ("time_mix_k", "time_mix_r"):
                self.w[f"blocks.{i}.ffn.{name}"] = self.w[f"blocks.{i}.ffn.{name}"].reshape(-1)

    def fresh_state(self):
        D, H, S = self.n_embd, self.n_head, self.head_size
        return [{"att_x": np.zeros(D), "ffn_x": np.zeros(D), "wkv": np.zeros((H, S, S))} for _ in range(self.n_layer)]

    def time_mix(self, i, x, st):
        p, w = f"blocks.{i}.att.", self.w
        H, S = self.n_head, self.head_size
        prev = st["att_x"]
        st["att_x"] = x
        mix = lambda m: x * m + prev * (1 - m)
        r = (w[p + "receptance.weight"] @ mix(w[p + "time_mix_r"])).reshape(H, S)
        k = (w[p + "key.weight"] @ mix(w[p + "time_mix_k"])).reshape(H, S)
        v = (w[p + "value.weight"] @ mix(w[p + "time_mix_v"])).reshape(H, S)
        gx = w[p + "gate.weight"] @ mix(w[p + "time_mix_g"])
        g = gx / (1 + np.exp(-gx))  # silu
        kv = k[:, :, None] * v[:, None, :]  # [H, S(key i), S(value j)]
        u = w[p + "time_faaaa"]
        out = np.einsum("hi,hij->hj", r, u[:, :, None] * kv + st["wkv"])
        st["wkv"] = w[p + "decay"][:, :, None] * st["wkv"] + kv
        mean = out.mean(axis=1, keepdims=True)
        var = ((out - mean) ** 2).mean(axis=1, keepdims=True)
        out = ((out - mean) / np.sqrt(var + GROUP_NORM_EPS)).reshape(-1)
        out = out * w[p + "ln_x.weight"] + w[p + "ln_x.bias"]
        return w[p + "output.weight"] @ (out * g)

    def channel_mix(self, i, x, st):
        p, w = f"blocks.{i}.ffn.", self.w
        prev = st["ffn_x"]
        st["ffn_x"] = x
        mix = lambda m: x * m + prev * (1 - m)
        pre = w[p + "key.weight"] @ mix(w[p + "time_mix_k"])
        k = np.maximum(pre, 0.0)
        r = 1 / (1 + np.exp(-(w[p + "receptance.weight"] @ mix(w[p + "time_mix_r"]))))
        return r * (w[p + "value.weight"] @ (k * k)), k == 0.0

    def step(self, token, state):
        """One byte in, logits out; also returns the per-layer 'relu(x.K) == 0' masks."""
        w = self.w
        x = layer_norm(w["emb.weight"][token], w["blocks.0.ln0.weight"], w["blocks.0.ln0.bias"])
        zero_masks = []
        for i in range(self.n_layer):
            b = f"blocks.{i}."
            x = x + self.time_mix(i, layer_norm(x, w[b + "ln1.weight"], w[b + "ln1.bias"]), state[i])
            dx, zero = self.channel_mix(i, layer_norm(x, w[b + "ln2.weight"], w[b + "ln2.bias"]), state[i])
            x = x + dx
            zero_masks.append(zero)
        return w["head.weight"] @ layer_norm(x, w["ln_out.weight"], w["ln_out.bias"]), zero_masks


def log_softmax(z):
    m = z.max()
    return z - m - math.log(np.exp(z - m).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(REPO, "models", "reference", "rwkv5-ref-6x256.pth"))
    ap.add_argument("--out-dir", default=None)
    ap.add_argument("--positions", type=int, default=256, help="logit positions to dump")
    ap.add_argument("--eval-bytes", type=int, default=None, help="limit the held-out bytes (default: all)")
    args = ap.parse_args()
    out_dir = args.out_dir or os.path.dirname(os.path.abspath(args.model))
    os.makedirs(out_dir, exist_ok=True)

    data = open(DATA, "rb").read()
    heldout = np.frombuffer(data[HELDOUT_START:], dtype=np.uint8)
    if args.eval_bytes:
        heldout = heldout[:args.eval_bytes]
    model = RWKV5Sequential(args.model)
    state = model.fresh_state()
    dumped = np.zeros((args.positions, 256), dtype="<f4")
    zero_counts = np.zeros((model.n_layer, model.dim_ffn), dtype=np.int64)
    total_bits, n_pred, t0 = 0.0, 0, time.time()
    for pos in range(len(heldout)):
        logits, zero_masks = model.step(int(heldout[pos]), state)
        for layer, zero in enumerate(zero_masks):
            zero_counts[layer] += zero
        if pos < args.positions:
            dumped[pos] = logits
        if pos + 1 < len(heldout):  # teacher forcing: score the next held-out byte
            total_bits -= log_softmax(logits)[heldout[pos + 1]] / math.log(2)
            n_pred += 1
        if (pos + 1) % 10000 == 0:
            print(f"{pos + 1}/{len(heldout)} bytes, running bits/byte {total_bits / n_pred:.4f}, {time.time() - t0:.0f} s", flush=True)
    bpb = total_bits / n_pred

    logits_path = os.path.join(out_dir, "heldout-logits.bin")
    dumped.tofile(logits_path)
    model_bytes = open(args.model, "rb").read()
    meta = {
        "file": "heldout-logits.bin",
        "model": os.path.basename(args.model),
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "dtype": "float32", "endianness": "little",
        "shape": [args.positions, 256], "order": "row-major: position-major, then vocab index",
        "input": f"held-out bytes [{HELDOUT_START}, {HELDOUT_START + args.positions}) of third_party/data/tinyshakespeare.txt, "
                 "fed one at a time from a fresh all-zero state (token-shift and wkv state)",
        "row_p": f"logits after feeding byte {HELDOUT_START}+p, i.e. the prediction of byte {HELDOUT_START}+p+1",
        "input_bytes_sha256": hashlib.sha256(data[HELDOUT_START:HELDOUT_START + args.positions]).hexdigest(),
        "group_norm": {"eps": GROUP_NORM_EPS, "applied_to": "undivided wkv output, per head (groups of head_size channels), "
                       "biased variance, then * ln_x.weight + ln_x.bias",
                       "equivalent_training_form": "GroupNorm(n_head, eps=1e-5)(wkv / 8), head_size_divisor = 8"},
        "layer_norm_eps": LAYER_NORM_EPS,
        "decay": "w = exp(-exp(time_decay)), on the key index of the [key, value] state",
        "compute": "numpy float64, token-by-token (scripts/reference_logits.py), stored as float32",
        "heldout_bits_per_byte": {"value": bpb, "bytes": int(len(heldout)), "predictions": n_pred},
        "tolerance_for_engines": 1e-3,
    }
    with open(os.path.join(out_dir, "heldout-logits.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")

    # Channel-mix activation sparsity: fraction of (position, neuron) pairs with relu(x.K) == 0
    # exactly, before squaring; and neurons that were zero at every held-out position.
    frac = zero_counts / len(heldout)
    sparsity = {
        "definition": "fraction of channel-mix neurons with relu(key.weight @ xk) == 0 (exactly, before squaring), "
                      "averaged over all held-out positions, token-by-token from a fresh state",
        "model": os.path.basename(args.model),
        "positions": int(len(heldout)),
        "dim_ffn": int(model.dim_ffn),
        "per_layer_zero_fraction": [float(x) for x in frac.mean(axis=1)],
        "mean_zero_fraction": float(frac.mean()),
        "per_layer_always_zero_neurons": [int(x) for x in (zero_counts == len(heldout)).sum(axis=1)],
        "per_layer_zero_fraction_quantiles_over_neurons": {
            q: [float(x) for x in np.quantile(frac, float(q), axis=1)] for q in ("0.1", "0.5", "0.9")},
    }
    with open(os.path.join(out_dir, "sparsity.json"), "w") as f:
        json.dump(sparsity, f, indent=2)
        f.write("\n")
    print(json.dumps({"heldout_bits_per_byte": bpb, "bytes": int(len(heldout)),
                      "sparsity_per_layer": sparsity["per_layer_zero_fraction"],
                      "sparsity_mean": sparsity["mean_zero_fraction"], "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
