#!/usr/bin/env python3
"""Train rwkvlite's byte-level RWKV reference models (v5.2 or v7) on tiny-shakespeare (CPU, fp32).

Data split (used everywhere in rwkvlite): bytes [0, 1,000,000) train, [1,000,000, end) held out.
The models (scripts/reference_model.py for v5.2, scripts/reference_model_v7.py for v7) have
BlinkDL's exact parameter names/shapes; the final weights are written as a plain state_dict that
looks exactly like a user's BlinkDL .pth.

Reproducibility: one --seed seeds python `random`, numpy and torch (weight init); training windows
come from a separate numpy PCG64 generator seeded with seed + 1 whose state is checkpointed, so
`--resume` continues with the same windows, optimizer state and step (bit-exact on the same
machine/thread count).

Examples (the shipped runs; see models/reference/README.md and models/reference-v7/README.md):
  /usr/bin/python3 scripts/train_reference.py --steps 750 --out-dir models/reference
  /usr/bin/python3 scripts/train_reference.py --init-from models/reference/rwkv5-ref-6x256.pth --steps 1500 \
      --warmup-steps 50 --lr-init 4e-4 --lr-final 2e-5 --eval-every 250 --seed 1235 --out-dir DIR
  /usr/bin/python3 scripts/train_reference.py --arch v7 --steps 750 --out-dir models/reference-v7
"""

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_model import GROUP_NORM_EPS_INFERENCE, HEAD_SIZE_DIVISOR, RWKV5  # noqa: E402
from reference_model_v7 import GROUP_NORM_EPS as GROUP_NORM_EPS_V7, RWKV7  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "third_party", "data", "tinyshakespeare.txt")
TRAIN_END = 1_000_000


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", choices=("v5.2", "v7"), default="v5.2")
    p.add_argument("--n-layer", type=int, default=6)
    p.add_argument("--n-embd", type=int, default=256)
    p.add_argument("--head-size", type=int, default=64)
    p.add_argument("--ctx-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=750)
    p.add_argument("--warmup-steps", type=int, default=50)
    p.add_argument("--lr-init", type=float, default=1e-3)
    p.add_argument("--lr-final", type=float, default=1e-4)
    p.add_argument("--beta1", type=float, default=0.9)
    p.add_argument("--beta2", type=float, default=0.99)
    p.add_argument("--adam-eps", type=float, default=1e-8)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--chunk-len", type=int, default=None, help="WKV chunk length (default: 8 for v5.2, 16 for v7)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=1,
                   help="1 by default: on the shared 2-core machine two threads spin-wait and ran 5-10x slower")
    p.add_argument("--eval-every", type=int, default=125)
    p.add_argument("--eval-bytes", type=int, default=32768, help="fixed held-out slice for periodic eval")
    p.add_argument("--ckpt-every", type=int, default=25)
    p.add_argument("--out-dir", default=os.path.join(REPO, "models", "reference"))
    p.add_argument("--name", default=None, help="model file stem (default rwkv5-ref-{L}x{D}, or rwkv7-ref-... for v7)")
    p.add_argument("--log", default=None, help="JSONL log path (default OUT_DIR/train_log.jsonl)")
    p.add_argument("--run-dir", default=None, help="resumable checkpoints (default OUT_DIR/run)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument("--init-from", default=None,
                   help="start from these weights (a BlinkDL state_dict, e.g. a finished run) with a fresh "
                        "optimizer and schedule: training an existing model on")
    p.add_argument("--stop-after", type=int, default=None, help="stop after this step (schedule still uses --steps)")
    p.add_argument("--no-final-eval", action="store_true")
    return p.parse_args()


class L2Wrap(torch.autograd.Function):
    """BlinkDL's logit regulariser: identity on the loss, and in backward adds a gradient of
    1e-4 / (B*T) * max_logit on each position's largest logit, keeping logits from drifting up."""

    @staticmethod
    def forward(ctx, loss, logits):
        ctx.save_for_backward(logits)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        (logits,) = ctx.saved_tensors
        factor = 1e-4 / (logits.shape[0] * logits.shape[1])
        max_val, max_idx = logits.max(-1, keepdim=True)
        grad = torch.zeros_like(logits).scatter_(-1, max_idx, max_val * factor)
        return grad_output, grad


def lr_at(step, args):
    """Linear warm-up to lr_init, then cosine decay to lr_final at the last step."""
    if step < args.warmup_steps:
        return args.lr_init * (step + 1) / args.warmup_steps
    progress = (step - args.warmup_steps) / max(1, args.steps - args.warmup_steps)
    return args.lr_final + 0.5 * (args.lr_init - args.lr_final) * (1 + math.cos(math.pi * min(1.0, progress)))


def param_groups(model, args):
    """BlinkDL's grouping (layerwise_lr on): the decay base (v5.2 time_decay, v7 att.w0) at 2x lr;
    weight decay only on the .weight matrices."""
    decay, no_decay, decay_2x = [], [], []
    for name, p in model.named_parameters():
        if "time_decay" in name or name.endswith("att.w0"):
            decay_2x.append(p)
        elif "time_" in name:
            no_decay.append(p)
        elif p.dim() >= 2 and name.endswith(".weight"):
            decay.append(p)
        else:
            no_decay.append(p)
    return [
        {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0},
        {"params": decay_2x, "weight_decay": 0.0, "lr_scale": 2.0},
        {"params": decay, "weight_decay": args.weight_decay, "lr_scale": 1.0},
    ]


@torch.no_grad()
def heldout_bits_per_byte(model, data, chunk_len, segment=1024):
    """Teacher-forced bits/byte on `data` as ONE stream from a fresh state (segments carry the
    recurrent state, so this equals token-by-token RNN evaluation). Predicts bytes 1..n-1."""
    model.eval()
    idx = data.view(1, -1)
    total_nats, count, state = 0.0, 0, None
    for start in range(0, idx.shape[1] - 1, segment):
        x = idx[:, start:min(start + segment, idx.shape[1] - 1)]
        y = idx[:, start + 1:start + 1 + x.shape[1]]
        logits, state = model(x, state, chunk_len)
        total_nats += F.cross_entropy(logits.view(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train()
    return total_nats / count / math.log(2)


def atomic_save(obj, path):
    tmp = path + ".tmp.partial"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    v7 = args.arch == "v7"
    if args.chunk_len is None:
        args.chunk_len = 16 if v7 else 8
    name = args.name or f"rwkv{7 if v7 else 5}-ref-{args.n_layer}x{args.n_embd}"
    os.makedirs(args.out_dir, exist_ok=True)
    run_dir = args.run_dir or os.path.join(args.out_dir, "run")
    os.makedirs(run_dir, exist_ok=True)
    log_path = args.log or os.path.join(args.out_dir, "train_log.jsonl")

    raw = np.frombuffer(open(DATA, "rb").read(), dtype=np.uint8)
    data = torch.from_numpy(raw.astype(np.int64))
    train, heldout = data[:TRAIN_END], data[TRAIN_END:]
    eval_slice = heldout[:args.eval_bytes]

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    model = (RWKV7 if v7 else RWKV5)(args.n_layer, args.n_embd, args.head_size)
    optimizer = torch.optim.AdamW(param_groups(model, args), lr=args.lr_init,
                                  betas=(args.beta1, args.beta2), eps=args.adam_eps)
    sampler = np.random.Generator(np.random.PCG64(args.seed + 1))
    step, elapsed_before = 0, 0.0

    last_path = os.path.join(run_dir, "last.pt")
    if args.resume:
        ck = torch.load(last_path)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        sampler.bit_generator.state = ck["sampler"]
        step, elapsed_before = ck["step"], ck["elapsed"]
        print(f"resumed from {last_path} at step {step}", flush=True)
    else:
        if args.init_from:
            model.load_state_dict(torch.load(args.init_from))
        open(log_path, "w").close()

    n_params = sum(p.numel() for p in model.parameters())
    config = dict(vars(args), n_params=n_params, dim_ffn=model.config["dim_ffn"], torch=torch.__version__,
                  group_norm="GroupNorm(n_head, eps=64e-5)(wkv), no divisor" if v7 else
                  "GroupNorm(n_head, eps=1e-5)(wkv / 8) == GroupNorm(n_head, eps=64e-5)(wkv)")
    print(json.dumps(config), flush=True)
    log = open(log_path, "a")

    def emit(record):
        line = json.dumps(record)
        print(line, flush=True)
        log.write(line + "\n")
        log.flush()

    if not args.resume:
        emit({"event": "config", **config})

    def save_resumable():
        atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "sampler": sampler.bit_generator.state, "step": step,
                     "elapsed": elapsed_before + time.time() - t_start, "args": vars(args)}, last_path)

    model.train()
    t_start = time.time()
    last_stop = args.stop_after if args.stop_after is not None else args.steps
    T, B = args.ctx_len, args.batch_size
    while step < min(args.steps, last_stop):
        t0 = time.time()
        lr = lr_at(step, args)
        for g in optimizer.param_groups:
            g["lr"] = lr * g["lr_scale"]
        starts = sampler.integers(0, TRAIN_END - T - 1, size=B)
        windows = torch.stack([train[s:s + T + 1] for s in starts.tolist()])
        x, y = windows[:, :-1], windows[:, 1:]
        logits, _ = model(x, None, args.chunk_len)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        L2Wrap.apply(loss, logits).backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip).item()
        optimizer.step()
        step += 1
        dt = time.time() - t0
        emit({"step": step, "loss": round(loss.item(), 6), "loss_exact": loss.item(), "lr": lr,
              "grad_norm": round(grad_norm, 4), "tokens_per_s": round(B * T / dt, 1),
              "tokens_seen": step * B * T, "wall_s": round(elapsed_before + time.time() - t_start, 1)})
        if step % args.ckpt_every == 0 or step == args.steps:
            save_resumable()
        if step % args.eval_every == 0 or step == args.steps:
            te = time.time()
            bpb = heldout_bits_per_byte(model, eval_slice, args.chunk_len)
            torch.save(model.blinkdl_state_dict(), os.path.join(run_dir, f"{name}-step{step}.pth"))
            emit({"event": "eval", "step": step, "heldout_slice_bytes": int(eval_slice.numel()),
                  "heldout_slice_bpb": bpb, "eval_s": round(time.time() - te, 1)})

    if step >= args.steps:
        final_path = os.path.join(args.out_dir, f"{name}.pth")
        torch.save(model.blinkdl_state_dict(), final_path)
        total = elapsed_before + time.time() - t_start
        emit({"event": "saved", "path": os.path.relpath(final_path, REPO), "train_wall_s": round(total, 1),
              "steps": step, "tokens_seen": step * B * T})
        if not args.no_final_eval:
            te = time.time()
            bpb = heldout_bits_per_byte(model, heldout, args.chunk_len)
            emit({"event": "final_eval", "heldout_bytes": int(heldout.numel()), "heldout_bpb": bpb,
                  "eval_s": round(time.time() - te, 1),
                  "group_norm_eps_inference": GROUP_NORM_EPS_V7 if v7 else GROUP_NORM_EPS_INFERENCE,
                  "head_size_divisor": 1 if v7 else HEAD_SIZE_DIVISOR})
    log.close()


if __name__ == "__main__":
    main()
