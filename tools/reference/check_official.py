#!/usr/bin/python3
"""Side-by-side check of tools/reference against DeepSeek's official V4 inference/model.py.

The official file runs on CPU through ../shared/tools/official-v4/run_official.py (exact e4m3/e2m1 kernel
shims). Both models load the same checkpoint in the official layout; hooks capture the official
per-layer streams, compressor outputs (main and indexer) and indexer top-k lists, in prefill and in
token-by-token decode. The official run uses --dtype f32 (bf16 weights upcast, f32 activations) unless
--official-dtype bf16 is given, which shows the size of the bf16 activation rounding for comparison.

usage: check_official.py --model-py /work/official/model.py --ckpt DIR [--make-random small|flash-like]
       [--ctx 600] [--prefill 300] [--official-dtype f32|bf16] [--shared-clamp on|off]
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import checkpoint  # noqa: E402


def official(model_py, tools_dir, ckpt, ctx, dtype, clamp):
    sys.path.insert(0, tools_dir)
    import run_official
    model, cfg, _ = run_official.build(model_py, ckpt, ctx, dtype, clamp)
    if not clamp:                       # later upstream files clamp the shared expert unconditionally
        for mod in model.modules():
            if hasattr(mod, "shared_experts"):
                mod.shared_experts.swiglu_limit = 0
    rec = {"blocks": [], "comp": {}, "topk": {}}
    names = {m: n for n, m in model.named_modules()}

    def hook_block(m, inp, out):
        rec["blocks"].append(out.float().clone())

    def hook_comp(m, inp, out):
        if out is not None:
            rec["comp"].setdefault(names[m], []).append(out.float().clone())

    def hook_idx(m, inp, out):
        rec["topk"].setdefault(names[m], []).append(out.clone())
    for m in model.modules():
        cls = type(m).__name__
        if cls == "Block":
            m.register_forward_hook(hook_block)
        elif cls == "Compressor":
            m.register_forward_hook(hook_comp)
        elif cls == "Indexer":
            m.register_forward_hook(hook_idx)
        elif cls == "Gate":
            m.register_forward_hook(lambda m, i, o: rec.setdefault("gate", []).append(o[1].clone()))
    return model, rec, run_official.reset


def hook_gates(model):
    """record my routed-expert choices per MoE call, in call order (layers, then MTP)."""
    rec = []
    for m in model.modules():
        if type(m).__name__ == "Gate":
            m.register_forward_hook(lambda m, i, o: rec.append(o[1].clone()))
    return rec


def routing_diff(mine, theirs):
    """number of tokens whose expert SET differs, per MoE call"""
    out = []
    for a, b in zip(mine, theirs):
        a, b = a.sort(-1)[0], b.long().sort(-1)[0]
        out.append(int((a != b).any(-1).sum()))
    return out


FLASH_LIKE = {"sliding_window": 128, "compress_ratios": [0, 0, 4, 128, 4, 128, 0], "index_topk": 16,
              "rope_scaling": {"type": "yarn", "factor": 16, "original_max_position_embeddings": 65536,
                               "beta_fast": 32, "beta_slow": 1}}


def make_random(model_py, tools_dir, out, seed, flash_like):
    """random checkpoint from the official make_random.py; flash_like: Flash's window 128 and ratios
    4 / 128 instead of make_random's small test values (window 16, ratios 4 / 16)."""
    sys.path.insert(0, tools_dir)
    import make_random as mr
    if flash_like:
        mr.TINY = dict(mr.TINY, **FLASH_LIKE)
    argv = sys.argv
    sys.argv = ["make_random.py", "--model-py", model_py, "--out", out, "--seed", str(seed)]
    try:
        mr.main()
    finally:
        sys.argv = argv
    torch.set_default_dtype(torch.float32)


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def set_diff(mine, theirs, score, margin):
    """rows whose selected sets differ; a difference counts as a tie when the score gap between the
    entries picked only by one side is within margin (relative to the row's score scale)."""
    diff = ties = 0
    for r in range(mine.shape[0]):
        a = set(x for x in mine[r].tolist() if x >= 0)
        b = set(x for x in theirs[r].tolist() if x >= 0)
        if a == b:
            continue
        diff += 1
        only_a, only_b = sorted(a - b), sorted(b - a)
        s = score[r]
        scale = s[torch.isfinite(s)].abs().max().item()
        gap = abs(s[only_a].min().item() - s[only_b].max().item()) if only_a and only_b else float("inf")
        ties += gap <= margin * scale
    return diff, ties


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-py", required=True)
    ap.add_argument("--tools", default=os.path.join(HERE, "../../../shared/tools/official-v4"))
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--ctx", type=int, default=600, help="prefill length checked")
    ap.add_argument("--prefill", type=int, default=300, help="decode check: prefill this many, then decode")
    ap.add_argument("--official-dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--shared-clamp", default="on", choices=["on", "off"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ids", help="file of whitespace-separated token ids to use (default: random ids)")
    ap.add_argument("--make-random", choices=["small", "flash-like"],
                    help="first write a random checkpoint to --ckpt with the official make_random.py")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.make_random:
        make_random(a.model_py, os.path.abspath(a.tools), a.ckpt, a.seed + 1, a.make_random == "flash-like")
    clamp = a.shared_clamp == "on"
    mine, cfg = checkpoint.load(a.ckpt, max_seq_len=max(a.ctx, 64), shared_clamp=clamp)
    off, rec, reset = official(a.model_py, os.path.abspath(a.tools), a.ckpt, max(a.ctx, 64),
                               a.official_dtype, clamp)
    g = torch.Generator().manual_seed(a.seed)
    ids = torch.randint(0, cfg["vocab_size"], (1, a.ctx), generator=g)
    if a.ids:
        ids = torch.tensor([[int(t) for t in open(a.ids).read().split()[:a.ctx]]])
    n_layers = cfg["num_hidden_layers"]
    ratios = cfg["compress_ratios"]
    print(f"config: layers {n_layers}, ratios {ratios}, window {cfg['sliding_window']}, "
          f"index_topk {cfg['index_topk']}, ctx {a.ctx}, official dtype {a.official_dtype}, "
          f"shared clamp {a.shared_clamp}")

    my_gates = hook_gates(mine)
    # ---- prefill ----
    reset(off)
    with torch.no_grad():
        ref = off(ids, 0)[0].float()                                   # [T, V]
        out = mine.prefill(ids, keep_hidden=range(n_layers))
    lg = out["logits"][0]
    rd = routing_diff(my_gates, rec.get("gate", []))
    print(f"routing: tokens with a different expert set per layer {rd}")
    for i in range(n_layers):
        d = (out["hidden"][i][0] - rec["blocks"][i][0]).abs().amax((1, 2))
        print(f"  layer {i}: worst position {int(d.argmax())} (diff {d.max().item():.3g}), "
              f"positions with diff > 1e-3 of scale: {int((d > 1e-3 * rec['blocks'][i].abs().max()).sum())}")
    print(f"prefill logits: max|diff| {(lg - ref).abs().max().item():.3g}, rel {rel(lg, ref):.3g}, "
          f"argmax agree {(lg.argmax(-1) == ref.argmax(-1)).float().mean().item():.4f}")
    for i in range(n_layers):
        h, r = out["hidden"][i][0], rec["blocks"][i][0]
        print(f"  layer {i} (ratio {ratios[i]}) streams: rel max diff {rel(h, r):.3g}")
    for i in range(n_layers):
        if not ratios[i]:
            continue
        mc = out["info"][i]["comp"][0]
        oc = rec["comp"][f"layers.{i}.attn.compressor"][0][0]
        print(f"  layer {i} compressor entries {tuple(mc.shape)}: rel max diff {rel(mc, oc):.3g}")
        if ratios[i] == 4:
            ik = off.layers[i].attn.indexer.kv_cache[0, :a.ctx // 4].float()
            mk = out["info"][i]["ikeys"][0]
            ot = rec["topk"][f"layers.{i}.attn.indexer"][0][0]
            ot = torch.where(ot >= 0, ot - a.ctx, ot)
            d, t = set_diff(out["info"][i]["topk"][0], ot, out["info"][i]["iscore"][0], 1e-3)
            print(f"  layer {i} indexer keys: rel max diff {rel(mk, ik):.3g}, "
                  f"top-k rows differing {d}/{a.ctx} (near-ties {t})")
    # MTP on the official main streams (position t paired with token t+1), fed to both MTP blocks
    if cfg.get("num_nextn_predict_layers", 0):
        with torch.no_grad():
            x_main = rec["blocks"][n_layers - 1]
            dt = torch.bfloat16 if a.official_dtype == "bf16" else torch.float32
            om = off.mtp[0](x_main[:, :-1].to(dt), 0, ids[:, 1:])[0].float()
            mm = mine.mtp_prefill(x_main[:, :-1].float(), ids[:, 1:])[0]      # same input streams
        print(f"MTP logits (prefill): max|diff| {(mm - om).abs().max().item():.3g}, rel {rel(mm, om):.3g}")

    # ---- decode: prefill P tokens, then one token at a time ----
    P = a.prefill
    rec["blocks"].clear(); rec["topk"].clear(); rec["comp"].clear()
    reset(off)
    caches = mine.new_caches()
    with torch.no_grad():
        off(ids[:, :P], 0)
        mine.prefill(ids[:, :P], caches=caches)
        worst, worst_rel, agree, sel_rows, sel_diff, sel_ties = 0.0, 0.0, 0, 0, 0, 0
        route_steps = 0
        for t in range(P, a.ctx):
            rec["topk"].clear(); rec["gate"] = []; my_gates.clear()
            r = off(ids[:, t:t + 1], t)[0, -1].float()
            lg, _, infos, _ = mine.decode(int(ids[0, t]), t, caches)
            worst = max(worst, (lg - r).abs().max().item())
            worst_rel = max(worst_rel, rel(lg, r))
            agree += int(lg.argmax() == r.argmax())
            route_steps += int(any(routing_diff(my_gates, rec["gate"])))
            for i in range(n_layers):
                if ratios[i] == 4:
                    ot = rec["topk"][f"layers.{i}.attn.indexer"][0].view(-1) - cfg["sliding_window"]
                    mt = infos[i]["topk"]
                    sel_rows += 1
                    if set(ot.tolist()) != set(mt.tolist()):
                        sel_diff += 1
    n = a.ctx - P
    print(f"decode {P}..{a.ctx - 1}: logits max|diff| {worst:.3g}, rel {worst_rel:.3g}, "
          f"argmax agree {agree}/{n}; indexer top-k sets differing {sel_diff}/{sel_rows}; "
          f"steps with a routing difference {route_steps}/{n}")
    # ---- my own prefill vs my own decode ----
    caches = mine.new_caches()
    with torch.no_grad():
        full = mine.prefill(ids)["logits"][0]
        mine.prefill(ids[:, :1], caches=caches)
        steps = [full[0]]
        for t in range(1, a.ctx):
            steps.append(mine.decode(int(ids[0, t]), t, caches)[0])
    steps = torch.stack(steps)
    print(f"reference prefill vs its own token-by-token decode (from t=1): rel max diff {rel(steps, full):.3g}, "
          f"argmax agree {(steps.argmax(-1) == full.argmax(-1)).float().mean().item():.4f}")


if __name__ == "__main__":
    main()
