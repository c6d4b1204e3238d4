"""Checks the training model's checkpoint format and the independent sequential inference.

Run: /usr/bin/python3 tests/python/test_reference_model.py   (plain asserts)
"""

import os
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
from reference_logits import RWKV5Sequential  # noqa: E402
from reference_model import RWKV5  # noqa: E402


def expected_shapes(L, D, H, S, F, V=256):
    """The tensor names/shapes of a BlinkDL v5.2 checkpoint (what rwkv.cpp's converter reads)."""
    shapes = {"emb.weight": [V, D], "blocks.0.ln0.weight": [D], "blocks.0.ln0.bias": [D],
              "ln_out.weight": [D], "ln_out.bias": [D], "head.weight": [V, D]}
    for i in range(L):
        b = f"blocks.{i}."
        for ln in ("ln1", "ln2"):
            shapes[b + ln + ".weight"] = [D]
            shapes[b + ln + ".bias"] = [D]
        for m in ("k", "v", "r", "g"):
            shapes[b + f"att.time_mix_{m}"] = [1, 1, D]
        shapes[b + "att.time_decay"] = [H, S]
        shapes[b + "att.time_faaaa"] = [H, S]
        for lin in ("receptance", "key", "value", "gate", "output"):
            shapes[b + f"att.{lin}.weight"] = [D, D]
        shapes[b + "att.ln_x.weight"] = [D]
        shapes[b + "att.ln_x.bias"] = [D]
        shapes[b + "ffn.time_mix_k"] = [1, 1, D]
        shapes[b + "ffn.time_mix_r"] = [1, 1, D]
        shapes[b + "ffn.key.weight"] = [F, D]
        shapes[b + "ffn.receptance.weight"] = [D, D]
        shapes[b + "ffn.value.weight"] = [D, F]
    return shapes


def check_checkpoint_format():
    sd = RWKV5(n_layer=6, n_embd=256, head_size=64).blinkdl_state_dict()
    want = expected_shapes(6, 256, 4, 64, 896)
    assert set(sd) == set(want), f"extra {set(sd) - set(want)}, missing {set(want) - set(sd)}"
    for k, shape in want.items():
        assert list(sd[k].shape) == shape, (k, list(sd[k].shape), shape)
        assert sd[k].dtype == torch.float32 and sd[k].is_contiguous()
    print("checkpoint format: OK (", len(sd), "tensors )")


def check_sequential_matches_parallel():
    torch.manual_seed(0)
    model = RWKV5(n_layer=2, n_embd=64, head_size=32)
    with torch.no_grad():  # randomise everything, including the zero-initialised matrices
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 0.2)
            elif "time_decay" in name:
                p.uniform_(-5, 1)
            elif "ln" in name:
                p.add_(torch.randn_like(p) * 0.1)
    idx = torch.randint(0, 256, (1, 50))
    with torch.no_grad():
        ref, _ = model(idx)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.pth")
        torch.save(model.blinkdl_state_dict(), path)
        seq = RWKV5Sequential(path)
    state = seq.fresh_state()
    out = np.stack([seq.step(int(t), state)[0] for t in idx[0]])
    err = np.abs(out - ref[0].double().numpy()).max()
    print(f"sequential numpy vs parallel torch: max |delta| {err:.2e}")
    assert err <= 1e-4


if __name__ == "__main__":
    torch.set_num_threads(1)
    check_checkpoint_format()
    check_sequential_matches_parallel()
    print("test_reference_model: OK")
