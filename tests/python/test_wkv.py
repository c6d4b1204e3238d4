"""Checks the chunked (training) v5.2 WKV against the token-by-token recurrence.

Run: /usr/bin/python3 tests/python/test_wkv.py   (plain asserts, exits non-zero on failure)
"""

import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from reference_model import RWKV5, wkv5_chunked  # noqa: E402

TOL = 1e-4


def wkv5_sequential(r, k, v, time_decay, time_faaaa, state=None):
    """The RNN-mode recurrence, one token at a time, in float64 (the ground truth)."""
    B, T, H, S = r.shape
    w = torch.exp(-torch.exp(time_decay.double()))  # [H, S] decay on the key index
    u = time_faaaa.double()
    r, k, v = r.double(), k.double(), v.double()
    s = torch.zeros(B, H, S, S, dtype=torch.float64) if state is None else state.double().clone()
    out = torch.zeros(B, T, H, S, dtype=torch.float64)
    for t in range(T):
        kv = k[:, t, :, :, None] * v[:, t, :, None, :]  # [B, H, S(key), S(value)]
        out[:, t] = torch.einsum("bhi,bhij->bhj", r[:, t], u[None, :, :, None] * kv + s)
        s = w[None, :, :, None] * s + kv
    return out, s


def check_case(B, T, H, S, chunk_len, decay_range, with_state, seed):
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(B, T, H, S, generator=g)
    k = torch.randn(B, T, H, S, generator=g)
    v = torch.randn(B, T, H, S, generator=g)
    lo, hi = decay_range
    time_decay = lo + (hi - lo) * torch.rand(H, S, generator=g)
    time_faaaa = torch.randn(H, S, generator=g)
    state0 = torch.randn(B, H, S, S, generator=g) if with_state else None
    out_c, st_c = wkv5_chunked(r, k, v, time_decay, time_faaaa, chunk_len, state0)
    out_s, st_s = wkv5_sequential(r, k, v, time_decay, time_faaaa, state0)
    # Outputs are O(sqrt(S * T)); compare relative to their scale as well as absolutely.
    scale = max(1.0, out_s.abs().max().item())
    err_out = (out_c.double() - out_s).abs().max().item() / scale
    err_state = (st_c.double() - st_s).abs().max().item() / max(1.0, st_s.abs().max().item())
    label = f"B={B} T={T} H={H} S={S} chunk={chunk_len} time_decay in {decay_range} state={with_state}"
    print(f"{label}: max rel err out {err_out:.2e}, state {err_state:.2e}")
    assert err_out <= TOL, label
    assert err_state <= TOL, label


def check_gradients():
    """Gradients of the chunked form (fp32) == gradients of the float64 recurrence, including
    channels whose decay is far past the intra-chunk clamp (no inf/NaN may leak into them)."""
    g = torch.Generator().manual_seed(7)
    B, T, H, S = 2, 24, 2, 8
    leaves = [torch.randn(B, T, H, S, generator=g) for _ in range(3)]
    leaves.append(-7.0 + 11.0 * torch.rand(H, S, generator=g))  # time_decay in (-7, 4)
    leaves.append(torch.randn(H, S, generator=g))
    weights = torch.randn(B, T, H, S, generator=g)
    grads = []
    for fn, dtype in ((wkv5_chunked, torch.float32), (wkv5_sequential, torch.float64)):
        xs = [x.clone().to(dtype).requires_grad_(True) for x in leaves]
        out, _ = fn(*xs)
        (out * weights.to(out.dtype)).sum().backward()
        grads.append([x.grad.double() for x in xs])
    for name, a, b in zip(("r", "k", "v", "time_decay", "time_faaaa"), *grads):
        assert torch.isfinite(a).all(), name
        err = (a - b).abs().max().item() / max(1.0, b.abs().max().item())
        print(f"grad {name}: max rel err {err:.2e}")
        assert err <= TOL, name


def check_model_segments():
    """Teacher forcing a long text in segments with carried state == one pass (== RNN mode)."""
    torch.manual_seed(0)
    model = RWKV5(n_layer=2, n_embd=64, head_size=32)
    with torch.no_grad():  # make the zero-initialised matrices non-trivial
        for name, p in model.named_parameters():
            if p.dim() == 2 and p.abs().max() == 0:
                p.normal_(0, 0.1)
    idx = torch.randint(0, 256, (1, 100))
    with torch.no_grad():
        full, _ = model(idx, chunk_len=16)
        a, st = model(idx[:, :37], chunk_len=16)
        b, _ = model(idx[:, 37:], state=st, chunk_len=16)
        one_by_one, st1 = [], None
        for t in range(idx.shape[1]):
            o, st1 = model(idx[:, t:t + 1], state=st1)
            one_by_one.append(o)
    err_seg = (torch.cat([a, b], 1) - full).abs().max().item()
    err_rnn = (torch.cat(one_by_one, 1) - full).abs().max().item()
    print(f"model: segmented vs full {err_seg:.2e}, token-by-token vs full {err_rnn:.2e}")
    assert err_seg <= TOL and err_rnn <= TOL


def main():
    torch.set_num_threads(2)
    check_case(2, 64, 2, 16, 8, (-6.0, -1.0), False, 1)   # BlinkDL's init range
    check_case(2, 64, 2, 16, 16, (-8.0, 3.0), True, 2)     # very slow and very fast decays (w ~ e^-20)
    check_case(1, 70, 4, 64, 16, (-4.0, 2.0), True, 3)     # ragged tail, head size 64
    check_case(3, 48, 2, 8, 8, (-2.0, 1.0), False, 4)      # other chunk length
    check_case(1, 32, 1, 64, 8, (-6.0, 4.0), True, 5)      # decay e^-55 per step (beyond the clamp)
    check_gradients()
    check_model_segments()
    print("test_wkv: OK")


if __name__ == "__main__":
    main()
