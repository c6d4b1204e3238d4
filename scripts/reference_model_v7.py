"""Byte-level RWKV v7 ("Goose", x070) training model for the rwkvlite v7 reference model.

Our own implementation of the architecture as BlinkDL's RWKV-LM defines it (RWKV-v7 train_temp
model.py: RWKV_Tmix_x070, RWKV_CMix_x070). Parameter names and shapes are those of a BlinkDL
checkpoint, so `blinkdl_state_dict()` is a user checkpoint that rwkvlite's .pth reader loads.

What differs from v5.2 (scripts/reference_model.py), and why it matters to an inference engine:
  * token shift: one delta sx = shift(x) - x and six mixes x + sx * x_{r,w,k,v,a,g};
  * decay per token and channel from a LoRA: w = exp(-e^-0.5 * sigmoid(w0 + tanh(xw @ w1) @ w2)),
    trained in BlinkDL's form -softplus(-z) - 0.5 as the log of -log(w) (the same function);
  * the wkv is a generalised delta rule on a [value, key] state per head:
        S_t = S_{t-1} diag(w_t) + (S_{t-1} a_t) b_t^T + v_t k_t^T,   y_t = S_t r_t
    with a = -kk, b = kk * iclr, kk = normalize(k * k_k) per head, iclr = sigmoid(a0 + LoRA(xa));
    the key written is k * (1 + (iclr - 1) * k_a);
  * value residual: layer 0's values v_first are mixed into later layers by a LoRA gate;
  * group norm ln_x with eps 64e-5 on the undivided wkv output (no head-size divisor in v7);
    then the bonus y += v * sum(r * k * r_k) per head, and the output gate sigmoid LoRA g;
  * channel mix without receptance: value(relu(key(x + sx * x_k))^2).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from reference_model import token_shift

GROUP_NORM_EPS = 64e-5  # v7 trains and infers with the same eps on the undivided output
DECAY_SCALE = math.exp(-0.5)  # -log(w) = e^-0.5 * sigmoid(z): every step's decay is in (0.545, 1)


def lora_width(n_embd, factor, power):
    """BlinkDL's x070 LoRA widths: max(32, round(factor * C^power / 32) * 32)."""
    return max(32, int(round(factor * n_embd ** power / 32) * 32))


def wkv7_sequential(r, log_w, k, v, a, b, state=None):
    """The v7 recurrence token by token: the ground truth that wkv7_chunked is tested against.

    r, log_w, k, v, a, b: [B, T, H, S]; state: [B, H, S(value), S(key)] or None.
        S_t = S_{t-1} diag(w_t) + (S_{t-1} a_t) b_t^T + v_t k_t^T,   y_t = S_t r_t
    Returns (y [B, T, H, S], final state).
    """
    B, T, H, S = r.shape
    if state is None:
        state = torch.zeros(B, H, S, S, dtype=r.dtype, device=r.device)
    w = torch.exp(log_w)
    out = []
    for t in range(T):
        sa = (state * a[:, t, :, None, :]).sum(-1, keepdim=True)  # [B, H, S, 1]
        state = state * w[:, t, :, None, :] + sa * b[:, t, :, None, :] + v[:, t, :, :, None] * k[:, t, :, None, :]
        out.append((state * r[:, t, :, None, :]).sum(-1))
    return torch.stack(out, dim=1), state


def wkv7_chunked(r, log_w, k, v, a, b, state=None, chunk_len=16):
    """The same recurrence, chunk-parallel: per chunk a few C x C and C x S matmuls, and only one
    state product per chunk in the sequential loop (the loop above is ~10x slower to train).

    Derivation (positions t = 1..C inside a chunk, S_0 the state entering it, L_t the cumulative
    sum of log w, Gamma(s, t) = diag(exp(L_t - L_s)) the decay from after s to t). Write
    u_t = S_{t-1} a_t; then S_t = S_{t-1} diag(w_t) + u_t b_t^T + v_t k_t^T is a plain decaying
    recurrence with two writes, so
        S_t = S_0 Gamma(0, t) + sum_{s<=t} (u_s b_s^T + v_s k_s^T) Gamma(s, t)
        u_t = S_0 Gamma(0, t-1) a_t + sum_{s<t} [u_s b_s^T + v_s k_s^T] Gamma(s, t-1) a_t.
    Stacked over t the second line is (I - M_ab) U = A' S_0^T + M_ak V with strictly lower
    triangular M, a unit-triangular system solved once per chunk. Outputs and the chunk's end
    state follow from U in closed form (see the code). Every decay factor is exp of a difference
    of cumulative sums: v7's per-step decay is at least exp(-e^-0.5), so |L| <= 0.61 C and the
    split exp(L_t) * exp(-L_s) stays below e^10 for C = 16: no overflow, no clamp needed.
    """
    B, T, H, S = r.shape
    C = min(chunk_len, T)
    assert 1 <= chunk_len <= 16, "chunk_len must be in [1, 16]: exp(0.61 * C) must stay far from fp32 overflow"
    if T % C:  # ragged tail: run it as one shorter chunk
        head = T - T % C
        y0, state = wkv7_chunked(r[:, :head], log_w[:, :head], k[:, :head], v[:, :head], a[:, :head], b[:, :head], state, C)
        y1, state = wkv7_chunked(r[:, head:], log_w[:, head:], k[:, head:], v[:, head:], a[:, head:], b[:, head:], state, T % C)
        return torch.cat([y0, y1], dim=1), state
    N = T // C

    def to_chunks(x):  # [B, T, H, S] -> [B, H, N, C, S]
        return x.reshape(B, N, C, H, S).permute(0, 3, 1, 2, 4)

    r, log_w, k, v, a, b = (to_chunks(x) for x in (r, log_w, k, v, a, b))
    L = torch.cumsum(log_w, dim=-2)  # L_t, inclusive
    L_excl = L - log_w  # L_{t-1}
    L_end = L[..., -1:, :]  # L_C
    a_dec = a * torch.exp(L_excl)  # a_t Gamma(0, t-1)
    r_dec = r * torch.exp(L)  # r_t Gamma(0, t)
    b_inv, k_inv = b * torch.exp(-L), k * torch.exp(-L)  # b_s Gamma(0, s)^-1
    b_end, k_end = b * torch.exp(L_end - L), k * torch.exp(L_end - L)  # b_s Gamma(s, C)
    ones = torch.ones(C, C, dtype=r.dtype, device=r.device)
    strict, incl = torch.tril(ones, -1), torch.tril(ones)
    M_ab = (a_dec @ b_inv.transpose(-1, -2)) * strict
    M_ak = (a_dec @ k_inv.transpose(-1, -2)) * strict
    Q_b = (r_dec @ b_inv.transpose(-1, -2)) * incl
    Q_k = (r_dec @ k_inv.transpose(-1, -2)) * incl
    eye = torch.eye(C, dtype=r.dtype, device=r.device)
    W = torch.linalg.solve_triangular(eye - M_ab, eye.expand_as(M_ab), upper=False, unitriangular=True)
    A_w = W @ a_dec  # U = A_w S_0^T + U_v
    U_v = W @ (M_ak @ v)
    R_eff = r_dec + Q_b @ A_w  # Y = R_eff S_0^T + Y_v
    Y_v = Q_b @ U_v + Q_k @ v
    # End state: S_C = S_0 G + Hs with G = diag(exp(L_C)) + A_w^T b_end, Hs = U_v^T b_end + V^T k_end.
    G = torch.diag_embed(torch.exp(L_end.squeeze(-2))) + A_w.transpose(-1, -2) @ b_end
    Hs = U_v.transpose(-1, -2) @ b_end + v.transpose(-1, -2) @ k_end
    if state is None:
        state = torch.zeros(B, H, S, S, dtype=r.dtype, device=r.device)
    R_eff, Y_v, G, Hs = R_eff.unbind(2), Y_v.unbind(2), G.unbind(2), Hs.unbind(2)
    out = []
    for n in range(N):
        out.append(R_eff[n] @ state.transpose(-1, -2) + Y_v[n])
        state = state @ G[n] + Hs[n]
    y = torch.stack(out, dim=2)  # [B, H, N, C, S]
    return y.permute(0, 2, 3, 1, 4).reshape(B, T, H, S), state


class TimeMix7(nn.Module):
    def __init__(self, n_embd, n_layer, layer_id, head_size):
        super().__init__()
        self.layer_id = layer_id
        self.n_head = n_embd // head_size
        self.head_size = head_size
        C, H, S = n_embd, self.n_head, head_size
        ratio_0_to_1 = layer_id / (n_layer - 1)
        ratio_1_to_almost0 = 1.0 - layer_id / n_layer
        ddd = (torch.arange(C, dtype=torch.float32) / C).view(1, 1, C)
        # BlinkDL's x070 init (values only; the formulas are the published init scheme).
        self.x_r = nn.Parameter(1.0 - ddd.pow(0.2 * ratio_1_to_almost0))
        self.x_w = nn.Parameter(1.0 - ddd.pow(0.9 * ratio_1_to_almost0))
        self.x_k = nn.Parameter(1.0 - ddd.pow(0.7 * ratio_1_to_almost0))
        self.x_v = nn.Parameter(1.0 - ddd.pow(0.7 * ratio_1_to_almost0))
        self.x_a = nn.Parameter(1.0 - ddd.pow(0.9 * ratio_1_to_almost0))
        self.x_g = nn.Parameter(1.0 - ddd.pow(0.2 * ratio_1_to_almost0))
        n = torch.arange(C, dtype=torch.float32)
        decay_speed = -7 + 5 * (n / (C - 1)).pow(0.85 + 1.0 * ratio_0_to_1 ** 0.5)
        self.w0 = nn.Parameter(decay_speed.view(1, 1, C) + 0.5)
        Lw, La, Lv, Lg = (lora_width(C, 2.5, 0.5), lora_width(C, 2.5, 0.5),
                          lora_width(C, 1.7, 0.5), lora_width(C, 0.6, 0.8))
        self.w1 = nn.Parameter(torch.zeros(C, Lw))
        self.w2 = nn.Parameter(torch.zeros(Lw, C))
        self.a0 = nn.Parameter(torch.zeros(1, 1, C))
        self.a1 = nn.Parameter(torch.zeros(C, La))
        self.a2 = nn.Parameter(torch.zeros(La, C))
        if layer_id > 0:  # layer 0 defines v_first and has no value-residual LoRA
            self.v0 = nn.Parameter(torch.ones(1, 1, C))
            self.v1 = nn.Parameter(torch.zeros(C, Lv))
            self.v2 = nn.Parameter(torch.zeros(Lv, C))
        self.g1 = nn.Parameter(torch.zeros(C, Lg))
        self.g2 = nn.Parameter(torch.zeros(Lg, C))
        self.k_k = nn.Parameter(torch.full((1, 1, C), 0.85))
        self.k_a = nn.Parameter(torch.ones(1, 1, C))
        self.r_k = nn.Parameter(torch.zeros(H, S))
        self.receptance = nn.Linear(C, C, bias=False)
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)
        self.ln_x = nn.GroupNorm(H, C, eps=GROUP_NORM_EPS)

    def forward(self, x, v_first, shift_state=None, wkv_state=None, chunk_len=16):
        B, T, C = x.shape
        H, S = self.n_head, self.head_size
        sx = token_shift(x, shift_state) - x
        xr, xw, xk, xv, xa, xg = (x + sx * m for m in (self.x_r, self.x_w, self.x_k, self.x_v, self.x_a, self.x_g))
        r = self.receptance(xr)
        log_w = -DECAY_SCALE * torch.sigmoid(self.w0 + torch.tanh(xw @ self.w1) @ self.w2)
        k = self.key(xk)
        v = self.value(xv)
        if self.layer_id == 0:
            v_first = v
        else:
            v = v + (v_first - v) * torch.sigmoid(self.v0 + (xv @ self.v1) @ self.v2)
        iclr = torch.sigmoid(self.a0 + (xa @ self.a1) @ self.a2)
        g = torch.sigmoid(xg @ self.g1) @ self.g2
        kk = F.normalize((k * self.k_k).view(B, T, H, S), dim=-1, p=2.0).view(B, T, C)
        k = k * (1 + (iclr - 1) * self.k_a)
        heads = lambda z: z.view(B, T, H, S)  # noqa: E731
        y, wkv_state = wkv7_chunked(heads(r), heads(log_w), heads(k), heads(v), heads(-kk), heads(kk * iclr), wkv_state, chunk_len)
        y = self.ln_x(y.reshape(B * T, C)).view(B, T, C)
        bonus = (heads(r) * heads(k) * self.r_k).sum(dim=-1, keepdim=True) * heads(v)
        y = y + bonus.reshape(B, T, C)
        return self.output(y * g), v_first, x[:, -1], wkv_state


class ChannelMix7(nn.Module):
    def __init__(self, n_embd, dim_ffn, n_layer, layer_id):
        super().__init__()
        ratio_1_to_almost0 = 1.0 - layer_id / n_layer
        ddd = (torch.arange(n_embd, dtype=torch.float32) / n_embd).view(1, 1, n_embd)
        self.x_k = nn.Parameter(1.0 - ddd.pow(ratio_1_to_almost0 ** 4))
        self.key = nn.Linear(n_embd, dim_ffn, bias=False)
        self.value = nn.Linear(dim_ffn, n_embd, bias=False)

    def forward(self, x, shift_state=None):
        k = x + (token_shift(x, shift_state) - x) * self.x_k
        return self.value(torch.relu(self.key(k)) ** 2), x[:, -1]


class Block7(nn.Module):
    def __init__(self, n_embd, dim_ffn, n_layer, layer_id, head_size):
        super().__init__()
        self.layer_id = layer_id
        if layer_id == 0:
            self.ln0 = nn.LayerNorm(n_embd)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)
        self.att = TimeMix7(n_embd, n_layer, layer_id, head_size)
        self.ffn = ChannelMix7(n_embd, dim_ffn, n_layer, layer_id)

    def forward(self, x, v_first, state, chunk_len):
        att_shift, wkv, ffn_shift = state if state is not None else (None, None, None)
        if self.layer_id == 0:
            x = self.ln0(x)
        dx, v_first, att_shift, wkv = self.att(self.ln1(x), v_first, att_shift, wkv, chunk_len)
        x = x + dx
        dx, ffn_shift = self.ffn(self.ln2(x), ffn_shift)
        return x + dx, v_first, (att_shift, wkv, ffn_shift)


class RWKV7(nn.Module):
    def __init__(self, n_layer=6, n_embd=256, head_size=64, dim_ffn=None, vocab_size=256):
        super().__init__()
        dim_ffn = dim_ffn or n_embd * 4
        self.config = dict(n_layer=n_layer, n_embd=n_embd, head_size=head_size, dim_ffn=dim_ffn, vocab_size=vocab_size)
        self.emb = nn.Embedding(vocab_size, n_embd)
        self.blocks = nn.ModuleList([Block7(n_embd, dim_ffn, n_layer, i, head_size) for i in range(n_layer)])
        self.ln_out = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self):
        """BlinkDL's x070 scheme: emb uniform +-1e-4; head orthogonal 0.5 (* sqrt(V / C) when
        V > C); receptance/value uniform +-0.5/sqrt(C), key +-0.05/sqrt(C), att.output and
        ffn.value zero, ffn.key orthogonal; LoRA up-projections (w2, a2, v2, g2) orthogonal 0.1
        and their down-projections zero; vectors as set in the modules."""
        C, vocab = self.config["n_embd"], self.config["vocab_size"]
        bound = 0.5 / math.sqrt(C)
        for name, p in self.named_parameters():
            if name == "emb.weight":
                nn.init.uniform_(p, -1e-4, 1e-4)
            elif name == "head.weight":
                nn.init.orthogonal_(p, gain=0.5 * math.sqrt(vocab / C) if vocab > C else 0.5)
            elif name.endswith(("att.receptance.weight", "att.value.weight")):
                nn.init.uniform_(p, -bound, bound)
            elif name.endswith("att.key.weight"):
                nn.init.uniform_(p, -0.1 * bound, 0.1 * bound)
            elif name.endswith(("att.output.weight", "ffn.value.weight")):
                nn.init.zeros_(p)
            elif name.endswith("ffn.key.weight"):
                nn.init.orthogonal_(p, gain=1.0)
            elif name.endswith(("att.w2", "att.a2", "att.v2", "att.g2")):
                nn.init.orthogonal_(p, gain=0.1)

    def forward(self, idx, state=None, chunk_len=16):
        """idx: [B, T] bytes; state: per-layer (att_shift, wkv, ffn_shift) or None. Returns logits
        [B, T, vocab] and the state after the last token (segments chain exactly as RNN mode)."""
        x = self.emb(idx)
        v_first, new_state = None, []
        for i, block in enumerate(self.blocks):
            x, v_first, s = block(x, v_first, None if state is None else state[i], chunk_len)
            new_state.append(s)
        return self.head(self.ln_out(x)), new_state

    def blinkdl_state_dict(self):
        """Plain contiguous fp32 tensors under BlinkDL's names; no extra keys."""
        return {k: v.detach().clone().contiguous().float() for k, v in self.state_dict().items()}
