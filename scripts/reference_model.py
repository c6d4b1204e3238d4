"""Byte-level RWKV v5.2 training model (parallel/chunked form) for the rwkvlite reference model.

This is our own implementation of the v5.2 ("Eagle", x052) architecture as defined by BlinkDL's
RWKV-LM (RWKV-v5/src/model.py: RWKV_Tmix_x052, RWKV_CMix_x052, Block, RWKV). Parameter names and
shapes are exactly those of a BlinkDL checkpoint, so `model.state_dict()` *is* a user checkpoint.

Group norm (`ln_x`): BlinkDL's training model computes GroupNorm(n_head, eps=1e-5)(wkv / 8) with
head_size_divisor = 8. Because GroupNorm(x / d, eps) == GroupNorm(x, eps * d^2) exactly (the mean
and the standard deviation both scale by 1/d), this is the same function as the inference form
GroupNorm(wkv, eps = 1e-5 * 8^2 = 64e-5) used by ChatRWKV. We train with the first form (as
BlinkDL) and every inference implementation must use the second (no divide, eps = 64e-5).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

HEAD_SIZE_DIVISOR = 8
GROUP_NORM_EPS_TRAIN = 1e-5  # applied to wkv / HEAD_SIZE_DIVISOR
GROUP_NORM_EPS_INFERENCE = GROUP_NORM_EPS_TRAIN * HEAD_SIZE_DIVISOR ** 2  # 64e-5, applied to undivided wkv


def wkv5_chunked(r, k, v, time_decay, time_faaaa, chunk_len=8, state=None):
    """Parallel v5.2 WKV over a sequence in fp32.

    r, k, v: [B, T, H, S]; time_decay, time_faaaa: [H, S]; state: [B, H, S, S] (key i, value j) or None.
    Recurrence being computed (per head, i = key channel, j = value channel):
        out_t[j] = sum_i r_t[i] * (u[i] * k_t[i] * v_t[j] + state_{t-1}[i, j])
        state_t  = diag(w) state_{t-1} + k_t^T v_t,          w = exp(-exp(time_decay))
    Returns (out [B, T, H, S], final state [B, H, S, S]).

    Numerics: the sequence is cut into chunks of C tokens. Across chunks everything goes through
    the carried state, with the query decayed from the chunk start and the key decayed to the
    chunk end, so every factor there is a power w^n with n >= 0 (no overflow, exact). Inside a
    chunk the pair weight w^(t-s-1) is factorised around the chunk midpoint M as
    w^(t-M) * w^(M-s-1) so the C x C scores are one matmul; each factor is then at most
    exp(|log w| * C/2). To keep that below fp32 overflow (~e^88) |log w| is clamped at
    80 / (C/2) (= 20 for C = 8) *only in this intra-chunk factorisation*. That changes the
    result only for channels with w < e^-20 ~ 2e-9, where every lagged term is already < 2e-9
    of the current-token term: below fp32 resolution, so the output equals the exact recurrence
    to fp32 rounding (tests/python/test_wkv.py checks this against the sequential recurrence,
    including decays far beyond the clamp).
    """
    B, T, H, S = r.shape
    C = min(chunk_len, T)
    # The clamp below is 80 / (C/2); beyond C = 16 (clamp 10, e^-10 ~ 5e-5) it would be visible.
    assert 1 <= chunk_len <= 16, "chunk_len must be in [1, 16] for the fp32 intra-chunk factorisation"
    if T % C:  # ragged tail (e.g. the end of an evaluation text): run it as one shorter chunk
        head_len = T - T % C
        out_head, state = wkv5_chunked(r[:, :head_len], k[:, :head_len], v[:, :head_len], time_decay, time_faaaa, C, state)
        out_tail, state = wkv5_chunked(r[:, head_len:], k[:, head_len:], v[:, head_len:], time_decay, time_faaaa, T % C, state)
        return torch.cat([out_head, out_tail], dim=1), state
    N = T // C
    log_w = -torch.exp(time_decay)  # [H, S], log of the per-channel decay, always < 0

    def to_chunks(x):  # [B, T, H, S] -> [B, H, N, C, S]
        return x.reshape(B, N, C, H, S).permute(0, 3, 1, 2, 4)

    r, k, v = to_chunks(r), to_chunks(k), to_chunks(v)
    pos = torch.arange(C, dtype=r.dtype, device=r.device)

    # Intra-chunk scores A[t, s] = sum_i r_t[i] k_s[i] w[i]^(t-s-1) for s < t (see docstring).
    mid = C // 2
    log_w_intra = log_w.clamp(min=-80.0 / max(mid, C - mid, 1))
    r_mid = r * torch.exp(log_w_intra[:, None, :] * (pos - mid)[None, :, None])[None, :, None]
    k_mid = k * torch.exp(-log_w_intra[:, None, :] * (pos + 1 - mid)[None, :, None])[None, :, None]
    strictly_past = (pos[:, None] > pos[None, :])  # [C, C], s < t
    # Entries with s >= t can overflow; torch.where drops them (and their gradient) exactly.
    scores = torch.where(strictly_past, r_mid @ k_mid.transpose(-1, -2), torch.zeros((), dtype=r.dtype))
    bonus = (r * time_faaaa[None, :, None, None, :] * k).sum(-1)  # [B, H, N, C], the s == t term
    out = (scores + torch.diag_embed(bonus)) @ v  # [B, H, N, C, S]

    # Inter-chunk: carry the state across chunks.
    query_decay = torch.exp(log_w[:, None, :] * pos[None, :, None])  # [H, C, S]: w^(t - chunk_start)
    key_decay = torch.exp(log_w[:, None, :] * (C - 1 - pos)[None, :, None])  # [H, C, S]: w^(chunk_end - s)
    chunk_decay = torch.exp(log_w * C)[None, :, :, None]  # [1, H, S, 1]
    r_dec = (r * query_decay[None, :, None]).unbind(2)  # unbind: cheap backward, unlike slicing
    kv_chunk = ((k * key_decay[None, :, None]).transpose(-1, -2) @ v).unbind(2)  # N x [B, H, S, S]
    if state is None:
        state = torch.zeros(B, H, S, S, dtype=r.dtype, device=r.device)
    inter = []
    for n in range(N):
        inter.append(r_dec[n] @ state)
        state = chunk_decay * state + kv_chunk[n]
    out = out + torch.stack(inter, dim=2)
    return out.permute(0, 2, 3, 1, 4).reshape(B, T, H, S), state


def token_shift(x, prev):
    """x: [B, T, D]; prev: [B, D] (last input of the previous segment) or None (zeros)."""
    if prev is None:
        prev = torch.zeros_like(x[:, 0])
    return torch.cat([prev.unsqueeze(1), x[:, :-1]], dim=1)


class TimeMix(nn.Module):
    def __init__(self, n_embd, n_layer, layer_id, head_size):
        super().__init__()
        self.n_head = n_embd // head_size
        self.head_size = head_size
        D = n_embd
        # BlinkDL's x052 init (values only; the formulas are the published init scheme).
        ratio_0_to_1 = layer_id / (n_layer - 1)
        ratio_1_to_almost0 = 1.0 - layer_id / n_layer
        ddd = (torch.arange(D, dtype=torch.float32) / D).view(1, 1, D)
        self.time_mix_k = nn.Parameter(ddd.pow(ratio_1_to_almost0))
        self.time_mix_v = nn.Parameter(ddd.pow(ratio_1_to_almost0) + 0.3 * ratio_0_to_1)
        self.time_mix_r = nn.Parameter(ddd.pow(0.5 * ratio_1_to_almost0))
        self.time_mix_g = nn.Parameter(ddd.pow(0.5 * ratio_1_to_almost0))
        n = torch.arange(D, dtype=torch.float32)
        decay_speed = -6 + 5 * (n / (D - 1)).pow(0.7 + 1.3 * ratio_0_to_1)
        self.time_decay = nn.Parameter(decay_speed.reshape(self.n_head, head_size))
        zigzag = ((n + 1) % 3 - 1) * 0.1
        self.time_faaaa = nn.Parameter((ratio_0_to_1 * (1 - n / (D - 1)) + zigzag).reshape(self.n_head, head_size))
        self.receptance = nn.Linear(D, D, bias=False)
        self.key = nn.Linear(D, D, bias=False)
        self.value = nn.Linear(D, D, bias=False)
        self.output = nn.Linear(D, D, bias=False)
        self.gate = nn.Linear(D, D, bias=False)
        self.ln_x = nn.GroupNorm(self.n_head, D, eps=GROUP_NORM_EPS_TRAIN)

    def forward(self, x, shift_state=None, wkv_state=None, chunk_len=8):
        B, T, D = x.shape
        H, S = self.n_head, self.head_size
        xx = token_shift(x, shift_state)
        xk = x * self.time_mix_k + xx * (1 - self.time_mix_k)
        xv = x * self.time_mix_v + xx * (1 - self.time_mix_v)
        xr = x * self.time_mix_r + xx * (1 - self.time_mix_r)
        xg = x * self.time_mix_g + xx * (1 - self.time_mix_g)
        r = self.receptance(xr).view(B, T, H, S)
        k = self.key(xk).view(B, T, H, S)
        v = self.value(xv).view(B, T, H, S)
        g = F.silu(self.gate(xg))
        y, wkv_state = wkv5_chunked(r, k, v, self.time_decay, self.time_faaaa, chunk_len, wkv_state)
        y = self.ln_x(y.reshape(B * T, D) / HEAD_SIZE_DIVISOR).view(B, T, D)
        return self.output(y * g), x[:, -1], wkv_state


class ChannelMix(nn.Module):
    def __init__(self, n_embd, dim_ffn, n_layer, layer_id):
        super().__init__()
        ratio_1_to_almost0 = 1.0 - layer_id / n_layer
        ddd = (torch.arange(n_embd, dtype=torch.float32) / n_embd).view(1, 1, n_embd)
        self.time_mix_k = nn.Parameter(ddd.pow(ratio_1_to_almost0))
        self.time_mix_r = nn.Parameter(ddd.pow(ratio_1_to_almost0))
        self.key = nn.Linear(n_embd, dim_ffn, bias=False)
        self.receptance = nn.Linear(n_embd, n_embd, bias=False)
        self.value = nn.Linear(dim_ffn, n_embd, bias=False)

    def forward(self, x, shift_state=None):
        xx = token_shift(x, shift_state)
        xk = x * self.time_mix_k + xx * (1 - self.time_mix_k)
        xr = x * self.time_mix_r + xx * (1 - self.time_mix_r)
        k = torch.relu(self.key(xk)) ** 2
        return torch.sigmoid(self.receptance(xr)) * self.value(k), x[:, -1]


class Block(nn.Module):
    def __init__(self, n_embd, dim_ffn, n_layer, layer_id, head_size):
        super().__init__()
        self.layer_id = layer_id
        if layer_id == 0:
            self.ln0 = nn.LayerNorm(n_embd)
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)
        self.att = TimeMix(n_embd, n_layer, layer_id, head_size)
        self.ffn = ChannelMix(n_embd, dim_ffn, n_layer, layer_id)

    def forward(self, x, state, chunk_len):
        att_shift, wkv, ffn_shift = state if state is not None else (None, None, None)
        if self.layer_id == 0:
            x = self.ln0(x)
        dx, att_shift, wkv = self.att(self.ln1(x), att_shift, wkv, chunk_len)
        x = x + dx
        dx, ffn_shift = self.ffn(self.ln2(x), ffn_shift)
        return x + dx, (att_shift, wkv, ffn_shift)


class RWKV5(nn.Module):
    def __init__(self, n_layer=6, n_embd=256, head_size=64, dim_ffn=None, vocab_size=256):
        super().__init__()
        dim_ffn = dim_ffn or int(n_embd * 3.5) // 32 * 32
        self.config = dict(n_layer=n_layer, n_embd=n_embd, head_size=head_size, dim_ffn=dim_ffn, vocab_size=vocab_size)
        self.emb = nn.Embedding(vocab_size, n_embd)
        self.blocks = nn.ModuleList([Block(n_embd, dim_ffn, n_layer, i, head_size) for i in range(n_layer)])
        self.ln_out = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self):
        """BlinkDL's generate_init_weight scheme: emb uniform +-1e-4; head orthogonal with gain
        0.5 (* sqrt(vocab / n_embd) when vocab > n_embd); att.key/att.gate orthogonal 0.1;
        att.output, ffn.value, ffn.receptance zero; other matrices orthogonal gain 1;
        ln_x.weight = ((layer + 1) / n_layer)^0.7; LayerNorms 1/0; time_* as set in __init__."""
        n_layer, n_embd, vocab = self.config["n_layer"], self.config["n_embd"], self.config["vocab_size"]
        for name, p in self.named_parameters():
            if name == "emb.weight":
                nn.init.uniform_(p, -1e-4, 1e-4)
            elif name == "head.weight":
                gain = 0.5 * math.sqrt(vocab / n_embd) if vocab > n_embd else 0.5
                nn.init.orthogonal_(p, gain=gain)
            elif "ln_x.weight" in name:
                p.fill_(((1 + int(name.split(".")[1])) / n_layer) ** 0.7)
            elif ".ln" in name or "ln_" in name or "time_" in name:
                pass  # LayerNorm defaults (1, 0), ln_x.bias 0, time_* already initialised
            elif any(z in name for z in (".att.output.", ".ffn.value.", ".ffn.receptance.")):
                nn.init.zeros_(p)
            elif ".att.key." in name or ".att.gate." in name:
                nn.init.orthogonal_(p, gain=0.1)
            else:
                nn.init.orthogonal_(p, gain=1.0)

    def forward(self, idx, state=None, chunk_len=8):
        """idx: [B, T] bytes. state: list of per-layer (att_shift, wkv, ffn_shift) or None.
        Returns logits [B, T, vocab] and the state after the last token (for teacher-forced
        evaluation of long texts in segments, exactly equal to token-by-token RNN mode)."""
        x = self.emb(idx)
        new_state = []
        for i, block in enumerate(self.blocks):
            x, s = block(x, None if state is None else state[i], chunk_len)
            new_state.append(s)
        return self.head(self.ln_out(x)), new_state

    def blinkdl_state_dict(self):
        """Plain contiguous fp32 tensors under BlinkDL's names; no extra keys."""
        return {k: v.detach().clone().contiguous().float() for k, v in self.state_dict().items()}
