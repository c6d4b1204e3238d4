#!/usr/bin/env python3
"""Reference logits and held-out bits/byte of the v7 reference model, from the training model.

The engine test (tests/converters/test_torch_reference_model.cpp) compares rwkvlite's C++ v7
path against these. They come from scripts/reference_model_v7.py, which shares no code with the
engine; its chunked wkv equals the token-by-token recurrence to 7e-15 in float64
(tests/python/test_reference_model_v7.py). Run in float64 here, stored as float32.

Outputs next to the model: heldout-logits.bin ([256 positions][256 logits], little-endian
float32; row p = logits after feeding held-out bytes 1,000,000 .. 1,000,000+p from a fresh
state) and heldout-logits.json (layout, provenance, held-out bits/byte).

Usage: /usr/bin/python3 scripts/reference_logits_v7.py [--model models/reference-v7/rwkv7-ref-6x256.pth]
"""

import argparse
import hashlib
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_model_v7 import GROUP_NORM_EPS, RWKV7  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "third_party", "data", "tinyshakespeare.txt")
HELDOUT_START = 1_000_000
POSITIONS = 256


def load(path):
    sd = torch.load(path, map_location="cpu")
    n_layer = sum(1 for k in sd if k.endswith(".ln1.weight"))
    n_embd = sd["emb.weight"].shape[1]
    head_size = sd["blocks.0.att.r_k"].shape[1]
    model = RWKV7(n_layer, n_embd, head_size, dim_ffn=sd["blocks.0.ffn.key.weight"].shape[0])
    model.load_state_dict(sd)
    return model.double().eval()


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(REPO, "models", "reference-v7", "rwkv7-ref-6x256.pth"))
    args = ap.parse_args()
    out_dir = os.path.dirname(os.path.abspath(args.model))
    data = open(DATA, "rb").read()
    heldout = torch.tensor(list(data[HELDOUT_START:]), dtype=torch.int64).view(1, -1)
    model = load(args.model)

    # One stream from a fresh state, in segments that carry the state (equal to RNN mode).
    total_nats, count, state, first_rows = 0.0, 0, None, None
    for start in range(0, heldout.shape[1] - 1, 1024):
        x = heldout[:, start:min(start + 1024, heldout.shape[1] - 1)]
        y = heldout[:, start + 1:start + 1 + x.shape[1]]
        logits, state = model(x, state)
        if first_rows is None:
            first_rows = logits[0, :POSITIONS].float()
        total_nats += F.cross_entropy(logits.view(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    bpb = total_nats / count / math.log(2)

    with open(os.path.join(out_dir, "heldout-logits.bin"), "wb") as f:
        f.write(first_rows.numpy().astype("<f4").tobytes())
    meta = {
        "file": "heldout-logits.bin",
        "model": os.path.basename(args.model),
        "model_sha256": hashlib.sha256(open(args.model, "rb").read()).hexdigest(),
        "dtype": "float32", "endianness": "little", "shape": [POSITIONS, 256],
        "order": "row-major: position-major, then vocab index",
        "input": f"held-out bytes [{HELDOUT_START}, {HELDOUT_START + POSITIONS}) of third_party/data/tinyshakespeare.txt "
                 "from a fresh all-zero state",
        "row_p": f"logits after feeding byte {HELDOUT_START}+p, i.e. the prediction of byte {HELDOUT_START}+p+1",
        "input_bytes_sha256": hashlib.sha256(data[HELDOUT_START:HELDOUT_START + POSITIONS]).hexdigest(),
        "group_norm": {"eps": GROUP_NORM_EPS, "applied_to": "undivided wkv output, per head, biased variance"},
        "layer_norm_eps": 1e-5,
        "compute": "torch float64, the training model's chunked form (scripts/reference_logits_v7.py), stored as float32",
        "heldout_bits_per_byte": {"value": bpb, "bytes": int(heldout.shape[1]), "predictions": count},
        "tolerance_for_engines": 1e-3,
    }
    with open(os.path.join(out_dir, "heldout-logits.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(json.dumps({"heldout_bits_per_byte": bpb, "bytes": int(heldout.shape[1])}))


if __name__ == "__main__":
    main()
