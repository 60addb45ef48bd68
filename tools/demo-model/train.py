"""Train the demo model (llama2.c-style Llama, GQA, RoPE interleaved, trained context 256) on our
tokenised TinyStories plus synthetic passkey examples, export a llama2.c legacy checkpoint, and
measure passkey / perplexity, plain vs Self-Extend, with an independent PyTorch implementation.

  PYTHONUNBUFFERED=1 python3 tools/demo-model/train.py --data .train-data --out $OUT

Seeded (same seed, same data, same device: same run up to GPU nondeterminism). Resumable:
--resume DIR continues from DIR/ckpt-model.pt + ckpt-adam-m.pt + ckpt-adam-v.pt + ckpt-state.json.
Writes into --out: demo-model.bin (llama2.c version 0, shared classifier), tok<V>.bin (copy of the
vocabulary), the checkpoint files, train-log.txt and eval-torch.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import struct
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import passkey  # noqa: E402
import sptok  # noqa: E402


# ----------------------------------------------------------------------------- model
class Config:
    def __init__(self, **kw):
        self.dim = kw.get("dim", 192)
        self.hidden_dim = kw.get("hidden_dim", 512)
        self.n_layers = kw.get("n_layers", 6)
        self.n_heads = kw.get("n_heads", 6)
        self.n_kv_heads = kw.get("n_kv_heads", 2)
        self.vocab_size = kw.get("vocab_size", 1024)
        self.seq_len = kw.get("seq_len", 256)
        self.dropout = kw.get("dropout", 0.0)
        self.rope_base = 10000.0
        self.norm_eps = 1e-5

    @property
    def head_size(self):
        return self.dim // self.n_heads

    def as_dict(self):
        return {k: getattr(self, k) for k in ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len", "dropout")}


class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope(x, positions, base):
    """Interleaved pairs (2i, 2i+1) inside each head (llama2.c). x: [B, H, N, hd], positions: [N]."""
    hd = x.shape[-1]
    freqs = 1.0 / (base ** (torch.arange(0, hd, 2, device=x.device, dtype=torch.float64) / hd))
    angles = positions.to(torch.float64)[:, None] * freqs[None, :]
    cos = torch.cos(angles).to(torch.float32)
    sin = torch.sin(angles).to(torch.float32)
    xf = x.float().reshape(*x.shape[:-1], hd // 2, 2)
    a, b = xf[..., 0], xf[..., 1]
    out = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).reshape(x.shape)
    return out.type_as(x)


class Attention(torch.nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        hd = c.head_size
        self.wq = torch.nn.Linear(c.dim, c.n_heads * hd, bias=False)
        self.wk = torch.nn.Linear(c.dim, c.n_kv_heads * hd, bias=False)
        self.wv = torch.nn.Linear(c.dim, c.n_kv_heads * hd, bias=False)
        self.wo = torch.nn.Linear(c.n_heads * hd, c.dim, bias=False)
        self.drop = torch.nn.Dropout(c.dropout)

    def forward(self, x, se=None):
        c = self.c
        B, N, _ = x.shape
        hd = c.head_size
        q = self.wq(x).view(B, N, c.n_heads, hd).transpose(1, 2)
        k = self.wk(x).view(B, N, c.n_kv_heads, hd).transpose(1, 2)
        v = self.wv(x).view(B, N, c.n_kv_heads, hd).transpose(1, 2)
        rep = c.n_heads // c.n_kv_heads
        # llama2.c repeat_kv: query head h uses kv head h // rep
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        pos = torch.arange(N, device=x.device)
        if se is None or se[0] == 1:
            qn, kn = rope(q, pos, c.rope_base), rope(k, pos, c.rope_base)
            if se is None:
                out = F.scaled_dot_product_attention(qn, kn, v, is_causal=True, dropout_p=c.dropout if self.training else 0.0)
            else:
                out = exact_attention(qn.float(), kn.float(), None, None, v.float(), N, W=N).type_as(x)
        else:
            G, W = se
            qn, kn = rope(q, pos, c.rope_base), rope(k, pos, c.rope_base)
            qg = rope(q, pos // G + W - W // G, c.rope_base)
            kg = rope(k, pos // G, c.rope_base)
            out = exact_attention(qn.float(), kn.float(), qg.float(), kg.float(), v.float(), N, W).type_as(x)
        out = out.transpose(1, 2).reshape(B, N, c.n_heads * hd)
        return self.drop(self.wo(out))


def exact_attention(qn, kn, qg, kg, v, N, W):
    """One softmax over merged logits (spec): neighbor iff 0 <= i - j < W, group level otherwise."""
    scale = 1.0 / math.sqrt(qn.shape[-1])
    logits = (qn @ kn.transpose(-1, -2)) * scale
    i = torch.arange(N, device=qn.device)[:, None]
    j = torch.arange(N, device=qn.device)[None, :]
    if qg is not None:
        group = (qg @ kg.transpose(-1, -2)) * scale
        logits = torch.where((i - j) < W, logits, group)
    logits = logits.masked_fill(j > i, float("-inf"))
    return torch.softmax(logits, dim=-1) @ v


class Block(torch.nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.attention = Attention(c)
        self.w1 = torch.nn.Linear(c.dim, c.hidden_dim, bias=False)
        self.w2 = torch.nn.Linear(c.hidden_dim, c.dim, bias=False)
        self.w3 = torch.nn.Linear(c.dim, c.hidden_dim, bias=False)
        self.attention_norm = RMSNorm(c.dim, c.norm_eps)
        self.ffn_norm = RMSNorm(c.dim, c.norm_eps)
        self.drop = torch.nn.Dropout(c.dropout)

    def forward(self, x, se=None):
        x = x + self.attention(self.attention_norm(x), se)
        h = self.ffn_norm(x)
        return x + self.drop(self.w2(F.silu(self.w1(h)) * self.w3(h)))


class Transformer(torch.nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.tok_embeddings = torch.nn.Embedding(c.vocab_size, c.dim)
        self.layers = torch.nn.ModuleList(Block(c) for _ in range(c.n_layers))
        self.norm = RMSNorm(c.dim, c.norm_eps)
        self.output = torch.nn.Linear(c.dim, c.vocab_size, bias=False)
        self.output.weight = self.tok_embeddings.weight  # shared classifier
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("wo.weight") or name.endswith("w2.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
            torch.nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, tokens, se=None):
        x = self.tok_embeddings(tokens)
        for layer in self.layers:
            x = layer(x, se)
        return self.output(self.norm(x))


# ----------------------------------------------------------------------------- export
def export_llama2c(model: Transformer, path: str) -> None:
    """llama2.c legacy (version 0): 7 int32 header, f32 tensors, freq_cis tables; vocab > 0 = shared."""
    c = model.c
    sd = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    L = range(c.n_layers)
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size, c.seq_len))

        def w(t):
            f.write(t.contiguous().numpy().astype("<f4").tobytes())

        w(sd["tok_embeddings.weight"])
        for name in ("attention_norm.weight",):
            for i in L:
                w(sd[f"layers.{i}.{name}"])
        for name in ("attention.wq.weight", "attention.wk.weight", "attention.wv.weight", "attention.wo.weight"):
            for i in L:
                w(sd[f"layers.{i}.{name}"])
        for i in L:
            w(sd[f"layers.{i}.ffn_norm.weight"])
        for name in ("w1.weight", "w2.weight", "w3.weight"):
            for i in L:
                w(sd[f"layers.{i}.{name}"])
        w(sd["norm.weight"])
        hd = c.head_size
        freqs = 1.0 / (c.rope_base ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        angles = torch.arange(c.seq_len, dtype=torch.float64)[:, None] * freqs[None, :]
        w(torch.cos(angles).float())
        w(torch.sin(angles).float())


# ----------------------------------------------------------------------------- data
class Batches:
    def __init__(self, args, tok, device):
        self.seq = args.seq_len
        raw = open(os.path.join(args.data, "train.u16"), "rb").read()
        self.train = torch.frombuffer(bytearray(raw), dtype=torch.int16).to(torch.int32) & 0xFFFF
        raw = open(os.path.join(args.data, "val.u16"), "rb").read()
        self.val = torch.frombuffer(bytearray(raw), dtype=torch.int16).to(torch.int32) & 0xFFFF
        self.device = device
        self.train_gpu = self.train.to(device)
        self.passkey_fraction = args.passkey_fraction
        t0 = time.time()
        rng = random.Random(args.seed + 1)
        self.pool, self.answer_masks = self._passkey_rows(tok, rng, args.passkey_pool)
        vrng = random.Random(args.seed + 2)
        self.val_pool, self.val_masks = self._passkey_rows(tok, vrng, 512)
        print(f"passkey pool: {self.pool.shape[0]} rows in {time.time() - t0:.1f}s; "
              f"train {self.train.numel()} tokens, val {self.val.numel()} tokens", flush=True)

    def _passkey_rows(self, tok, rng, count):
        rows = torch.empty(count, self.seq + 1, dtype=torch.int32)
        masks = torch.zeros(count, self.seq + 1, dtype=torch.bool)
        n = self.train.numel()
        for r in range(count):
            ids, answer_start = passkey.training_example(tok, rng, rng.randint(48, self.seq + 1), self.seq + 1)
            row = list(ids)
            if len(row) < self.seq + 1:
                off = rng.randrange(0, n - self.seq - 2)
                fill = self.train[off : off + self.seq + 1 - len(row)].tolist()
                row += [1] + fill[: self.seq + 1 - len(row) - 1]
            rows[r] = torch.tensor(row[: self.seq + 1], dtype=torch.int32)
            masks[r, answer_start : answer_start + 5] = True  # the 5 answer digits (targets)
        return rows.to(self.device), masks.to(self.device)

    def get(self, gen: torch.Generator, batch: int):
        n_pk = int(round(batch * self.passkey_fraction))
        n_st = batch - n_pk
        offs = torch.randint(0, self.train.numel() - self.seq - 1, (n_st,), generator=gen)
        idx = offs[:, None] + torch.arange(self.seq + 1)[None, :]
        story = self.train_gpu[idx.to(self.device)]
        pk_idx = torch.randint(0, self.pool.shape[0], (n_pk,), generator=gen).to(self.device)
        pk = self.pool[pk_idx]
        rows = torch.cat([story, pk], 0).long()
        answer = torch.zeros_like(rows, dtype=torch.bool)
        answer[n_st:] = self.answer_masks[pk_idx]
        return rows[:, :-1], rows[:, 1:], answer[:, 1:]


@torch.no_grad()
def evaluate(model, batches, device):
    model.eval()
    seq = batches.seq
    val = batches.val
    n = (val.numel() - 1) // seq
    x = torch.stack([val[i * seq : i * seq + seq] for i in range(n)]).long().to(device)
    y = torch.stack([val[i * seq + 1 : i * seq + seq + 1] for i in range(n)]).long().to(device)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(x).float().reshape(-1, model.c.vocab_size), y.reshape(-1)).item()
        rows = batches.val_pool.long()
        logits = model(rows[:, :-1]).float()
    pred = logits.argmax(-1)
    m = batches.val_masks[:, 1:]
    digit_acc = (pred[m] == rows[:, 1:][m]).float().mean().item()
    model.train()
    return loss, digit_acc


# ----------------------------------------------------------------------------- eval (torch)
@torch.no_grad()
def greedy(model, ids, n_new, se, device):
    x = torch.tensor([ids], device=device)
    out = []
    for _ in range(n_new):
        logits = model(x, se)[0, -1]
        t = int(logits.argmax())
        out.append(t)
        x = torch.cat([x, torch.tensor([[t]], device=device)], 1)
    return out


def plan(L, N):
    """Same choice as @self-extend/core's planSelfExtend (checked against `self-extend plan`)."""
    if N <= L:
        return (1, L)
    limit = (2 * L) // 3
    for G in range(2, 1025):
        best = None
        for W in range(max(1, math.ceil(L / 8)), L // 2 + 1):
            if W % G:
                continue
            if (N - 1) // G + W - W // G <= limit - 0:
                best = W
        if best is not None:
            return (G, best)
    raise ValueError("no plan")


@torch.no_grad()
def eval_passkey(model, tok, device, L, lengths, depths, trials, seed, plans):
    model.eval()
    results = []
    for N in lengths:
        for method in ("plain", "self-extend"):
            se = None if method == "plain" else plans[N]
            if method == "self-extend" and se[0] == 1:
                se = None
            for d in depths:
                ok = 0
                for t in range(trials):
                    key = passkey.trial_key(seed, N, d, t)
                    ids = passkey.eval_prompt_ids(tok, N, d, key)
                    gen = greedy(model, ids, 8, se, device)
                    ok += str(key) in tok.decode(gen)
                results.append({"length": N, "method": method, "group": (se or (1, 0))[0], "window": (se or (1, 0))[1],
                                "depth": d, "trials": trials, "correct": ok, "accuracy": ok / trials})
            acc = [r["accuracy"] for r in results if r["length"] == N and r["method"] == method]
            print(f"  passkey N={N:5d} {method:11s} {se}: " + " ".join(f"{a:.2f}" for a in acc), flush=True)
    return results


@torch.no_grad()
def eval_ppl(model, tokens, device, lengths, plans, total=65536):
    model.eval()
    out = []
    for N in lengths:
        for method in ("plain", "self-extend"):
            se = None if method == "plain" else plans[N]
            if method == "self-extend" and se[0] == 1:
                continue
            n = total // N
            x = torch.stack([tokens[i * N : i * N + N] for i in range(n)]).long().to(device)
            y = torch.stack([tokens[i * N + 1 : i * N + N + 1] for i in range(n)]).long().to(device)
            nll = []
            for b in range(0, n, max(1, 8192 // N)):
                logits = model(x[b : b + max(1, 8192 // N)], se if se else (1, N)).double()
                nll.append(F.cross_entropy(logits.transpose(1, 2), y[b : b + max(1, 8192 // N)], reduction="none"))
            nll = torch.cat(nll, 0)  # [n, N]
            buckets = {}
            for lo, hi in ((0, 256), (256, 512), (512, 1024), (1024, 2048), (2048, 4096)):
                if lo < N:
                    buckets[f"{lo}-{min(hi, N) - 1}"] = math.exp(nll[:, lo:min(hi, N)].mean().item())
            r = {"length": N, "method": method, "se": se, "ppl": math.exp(nll.mean().item()), "buckets": buckets}
            out.append(r)
            print(f"  ppl N={N:5d} {method:11s} {se}: {r['ppl']:.3f} buckets {json.dumps({k: round(v, 3) for k, v in buckets.items()})}", flush=True)
    return out


# ----------------------------------------------------------------------------- main
def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=".train-data")
    p.add_argument("--out", default=os.environ.get("OUT", "out"))
    p.add_argument("--resume", default=None)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--vocab-size", type=int, default=1024)
    p.add_argument("--dim", type=int, default=192)
    p.add_argument("--hidden-dim", type=int, default=512)
    p.add_argument("--n-layers", type=int, default=6)
    p.add_argument("--n-heads", type=int, default=6)
    p.add_argument("--n-kv-heads", type=int, default=2)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--min-lr", type=float, default=2e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--passkey-fraction", type=float, default=0.5)
    p.add_argument("--answer-weight", type=float, default=1.0)
    p.add_argument("--passkey-pool", type=int, default=100000)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--time-limit", type=float, default=300.0, help="seconds of training before stopping early")
    p.add_argument("--eval-trials", type=int, default=20)
    p.add_argument("--no-eval", action="store_true", help="skip the PyTorch passkey/perplexity measurement")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "train-log.txt"), "a")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    say(f"args: {json.dumps(vars(args))}")
    t_start = time.time()
    device = "cuda"
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    tok_path = os.path.join(args.data, f"tok{args.vocab_size}.bin")
    tok = sptok.Tokenizer.load_llama2c(tok_path)
    assert tok.size == args.vocab_size
    c = Config(dim=args.dim, hidden_dim=args.hidden_dim, n_layers=args.n_layers, n_heads=args.n_heads,
               n_kv_heads=args.n_kv_heads, vocab_size=args.vocab_size, seq_len=args.seq_len, dropout=args.dropout)
    model = Transformer(c).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model {c.as_dict()} head_size {c.head_size}: {n_params} parameters")

    batches = Batches(args, tok, device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    gen = torch.Generator().manual_seed(args.seed)
    step = 0
    best = (float("inf"), -1)
    if args.resume:
        model.load_state_dict(torch.load(os.path.join(args.resume, "ckpt-model.pt"), map_location=device))
        m = torch.load(os.path.join(args.resume, "ckpt-adam-m.pt"), map_location=device)
        v = torch.load(os.path.join(args.resume, "ckpt-adam-v.pt"), map_location=device)
        st = json.load(open(os.path.join(args.resume, "ckpt-state.json")))
        sd = opt.state_dict()
        sd["state"] = {i: {"step": torch.tensor(float(st["step"])), "exp_avg": m[i], "exp_avg_sq": v[i]} for i in range(len(m))}
        opt.load_state_dict(sd)
        step = st["step"]
        gen.set_state(torch.tensor(st["generator"], dtype=torch.uint8))
        best = tuple(st["best"])
        say(f"resumed at step {step}")

    def save_ckpt():
        params = [p for g in opt.param_groups for p in g["params"]]
        torch.save(model.state_dict(), os.path.join(args.out, "ckpt-model.pt"))
        torch.save([opt.state[p_]["exp_avg"] for p_ in params], os.path.join(args.out, "ckpt-adam-m.pt"))
        torch.save([opt.state[p_]["exp_avg_sq"] for p_ in params], os.path.join(args.out, "ckpt-adam-v.pt"))
        json.dump({"step": step, "generator": gen.get_state().tolist(), "best": list(best), "config": c.as_dict()},
                  open(os.path.join(args.out, "ckpt-state.json"), "w"))

    def lr_at(s):
        if s < args.warmup:
            return args.lr * (s + 1) / args.warmup
        frac = min(1.0, (s - args.warmup) / max(1, args.steps - args.warmup))
        return args.min_lr + 0.5 * (1 + math.cos(math.pi * frac)) * (args.lr - args.min_lr)

    best_state = None
    t_train = time.time()
    model.train()
    while step < args.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x, y, answer = batches.get(gen, args.batch)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x)
        ce = F.cross_entropy(logits.float().reshape(-1, c.vocab_size), y.reshape(-1), reduction="none")
        loss = ce.mean()
        if args.answer_weight > 0 and answer.any():
            # extra weight on the five answer digits of passkey rows: the copy is the point
            loss = loss + args.answer_weight * ce[answer.reshape(-1)].mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            say(f"step {step} loss {loss.item():.4f} lr {lr_at(step):.2e} {time.time() - t_train:.0f}s")
        out_of_time = time.time() - t_train > args.time_limit
        if step % args.eval_every == 0 or step == args.steps or out_of_time:
            vl, acc = evaluate(model, batches, device)
            say(f"eval step {step}: val loss {vl:.4f} (ppl {math.exp(vl):.3f}), passkey answer digit acc {acc:.3f}")
            if vl < best[0] and acc > 0.98:
                best = (vl, step)
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            save_ckpt()
        if out_of_time:
            say(f"time limit reached at step {step}")
            break
    say(f"training done: {step} steps in {time.time() - t_train:.0f}s; best val {best[0]:.4f} at step {best[1]}")
    if best_state is not None:
        model.load_state_dict(best_state)
    export_llama2c(model, os.path.join(args.out, "demo-model.bin"))
    shutil.copy(tok_path, os.path.join(args.out, os.path.basename(tok_path)))
    say(f"exported demo-model.bin (step {best[1]}) and {os.path.basename(tok_path)}")

    if args.no_eval:
        return
    # independent PyTorch measurement, fp32, exact Self-Extend (spec formula)
    model.float()
    L = args.seq_len
    lengths = [L, 2 * L, 4 * L, 8 * L]
    plans = {N: plan(L, N) for N in lengths}
    say(f"plans (core planner's choice for N): {plans}")
    results = {"passkey": eval_passkey(model, tok, device, L, lengths, [0, 0.25, 0.5, 0.75, 1], args.eval_trials, args.seed, plans)}
    ppl_path = os.path.join(args.data, "eval-val256k.u16")
    if os.path.exists(ppl_path):
        raw = open(ppl_path, "rb").read()
        toks = torch.frombuffer(bytearray(raw), dtype=torch.int16).to(torch.int32) & 0xFFFF
        results["ppl"] = eval_ppl(model, toks, device, lengths, plans)
    json.dump(results, open(os.path.join(args.out, "eval-torch.json"), "w"), indent=1)
    say(f"all done in {time.time() - t_start:.0f}s")


if __name__ == "__main__":
    main()
