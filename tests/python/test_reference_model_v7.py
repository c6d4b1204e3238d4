"""Checks the v7 training model: the chunk-parallel delta rule against the token-by-token
recurrence, segments chained through the returned state, and the checkpoint's BlinkDL names.

Run: /usr/bin/python3 tests/python/test_reference_model_v7.py   (plain asserts)
"""

import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
from reference_model_v7 import RWKV7, lora_width, wkv7_chunked, wkv7_sequential  # noqa: E402


def random_wkv_inputs(B=2, T=37, H=3, S=8, seed=0):
    """Inputs shaped like the model's: decays in v7's range, a = -kk and b = kk * iclr."""
    g = torch.Generator().manual_seed(seed)
    r, k, v = (torch.randn(B, T, H, S, generator=g, dtype=torch.float64) for _ in range(3))
    log_w = -torch.exp(torch.tensor(-0.5, dtype=torch.float64)) * torch.rand(B, T, H, S, generator=g, dtype=torch.float64)
    kk = torch.nn.functional.normalize(torch.randn(B, T, H, S, generator=g, dtype=torch.float64), dim=-1)
    iclr = torch.rand(B, T, H, S, generator=g, dtype=torch.float64)
    return r, log_w, k, v, -kk, kk * iclr


def check_chunked_matches_sequential():
    inputs = random_wkv_inputs()
    want_y, want_state = wkv7_sequential(*inputs)
    for chunk_len in (1, 5, 16):  # T = 37 leaves a ragged tail for each of these
        y, state = wkv7_chunked(*inputs, chunk_len=chunk_len)
        err = max((y - want_y).abs().max().item(), (state - want_state).abs().max().item())
        print(f"wkv7 chunked (C = {chunk_len}) vs sequential: max |delta| {err:.2e}")
        assert err <= 1e-10, err


def check_segments_chain_through_state():
    r, log_w, k, v, a, b = random_wkv_inputs(seed=1)
    whole, _ = wkv7_chunked(r, log_w, k, v, a, b)
    y0, s = wkv7_chunked(r[:, :20], log_w[:, :20], k[:, :20], v[:, :20], a[:, :20], b[:, :20])
    y1, _ = wkv7_chunked(r[:, 20:], log_w[:, 20:], k[:, 20:], v[:, 20:], a[:, 20:], b[:, 20:], state=s)
    err = (torch.cat([y0, y1], dim=1) - whole).abs().max().item()
    print(f"wkv7 two segments vs one: max |delta| {err:.2e}")
    assert err <= 1e-10, err


def check_model_state_chaining():
    torch.manual_seed(0)
    model = RWKV7(n_layer=2, n_embd=64, head_size=32).double()
    idx = torch.randint(0, 256, (1, 24))
    with torch.no_grad():
        whole, _ = model(idx)
        first, state = model(idx[:, :11])
        second, _ = model(idx[:, 11:], state=state)
    err = (torch.cat([first, second], dim=1) - whole).abs().max().item()
    print(f"RWKV7 forward in two segments vs one: max |delta| {err:.2e}")
    assert err <= 1e-9, err


def check_checkpoint_names():
    D, L = 256, 6
    sd = RWKV7(n_layer=L, n_embd=D, head_size=64).blinkdl_state_dict()
    lora = {"w": lora_width(D, 1.8, 0.5), "a": lora_width(D, 1.8, 0.5), "v": lora_width(D, 1.3, 0.5),
            "g": lora_width(D, 0.6, 0.8)}
    want = {"emb.weight": [256, D], "blocks.0.ln0.weight": [D], "blocks.0.ln0.bias": [D],
            "ln_out.weight": [D], "ln_out.bias": [D], "head.weight": [256, D]}
    for i in range(L):
        b = f"blocks.{i}."
        for ln in ("ln1", "ln2"):
            want[b + ln + ".weight"] = [D]
            want[b + ln + ".bias"] = [D]
        for m in ("r", "w", "k", "v", "a", "g"):
            want[b + f"att.x_{m}"] = [1, 1, D]
        for z in ("w", "a", "v", "g"):
            if z == "v" and i == 0:
                continue  # layer 0 defines v_first and has no value-residual LoRA
            if z != "g":
                want[b + f"att.{z}0"] = [1, 1, D]
            want[b + f"att.{z}1"] = [D, lora[z]]
            want[b + f"att.{z}2"] = [lora[z], D]
        want[b + "att.k_k"] = [1, 1, D]
        want[b + "att.k_a"] = [1, 1, D]
        want[b + "att.r_k"] = [4, 64]
        for lin in ("receptance", "key", "value", "output"):
            want[b + f"att.{lin}.weight"] = [D, D]
        want[b + "att.ln_x.weight"] = [D]
        want[b + "att.ln_x.bias"] = [D]
        want[b + "ffn.x_k"] = [1, 1, D]
        want[b + "ffn.key.weight"] = [4 * D, D]
        want[b + "ffn.value.weight"] = [D, 4 * D]
    assert set(sd) == set(want), f"extra {sorted(set(sd) - set(want))}, missing {sorted(set(want) - set(sd))}"
    for k, shape in want.items():
        assert list(sd[k].shape) == shape, (k, list(sd[k].shape), shape)
        assert sd[k].dtype == torch.float32 and sd[k].is_contiguous()
    print("v7 checkpoint names and shapes: OK (", len(sd), "tensors )")


if __name__ == "__main__":
    torch.set_num_threads(1)
    check_chunked_matches_sequential()
    check_segments_chain_through_state()
    check_model_state_chaining()
    check_checkpoint_names()
    print("test_reference_model_v7: OK")
