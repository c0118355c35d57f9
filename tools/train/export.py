#!/usr/bin/python3
"""Export a tiny-v4 training checkpoint in the official DeepSeek-V4 layout (docs/deepseek-v4.md §1.2, §4.1)
and evaluate it from the exported files alone.

Writes OUT/config.json and OUT/model.safetensors (FP8 e4m3 + e8m0 128x128 scales for the FP8 linears,
FP4 e2m1 packed in I8 + e8m0 1x32 scales for routed experts, bf16 / f32 as the official checkpoint,
tid2eid I64), reloads OUT through tools/reference/checkpoint.py, checks that the reloaded weights equal
the training model's quantized view bit for bit, and reports held-out perplexity before quantization
(f32 master weights) and after (the exported file), plus greedy samples, into OUT_JSON.

usage: export.py --work DIR [--state model_final.pt] [--out models/tiny-v4] [--json results.json]
"""
import argparse
import hashlib
import json
import math
import os
import sys

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(ROOT, "tools/reference"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint  # noqa: E402
from common import ModelArgs, qw  # noqa: E402
from model import Transformer  # noqa: E402
import train  # noqa: E402

PROMPTS = ["ROMEO:\n", "First Citizen:\nWe are", "KING HENRY VI:\n", "To be, or not to be"]


def indexer_ablation(model, held, ctx, chunks):
    """held-out ppl on the first `chunks` chunks with the trained indexer's top-k, with a random top-k
    among the same causal entries, and with every compressed entry (no selection): does the choice matter?"""
    out = {"chunks": chunks}
    idx = [m for m in model.modules() if type(m).__name__ == "Indexer"]
    g = torch.Generator().manual_seed(0)
    for mode in ("indexer", "random", "all_entries"):
        for m in idx:
            m.score_hook = (lambda s: torch.rand(s.shape, generator=g)) if mode == "random" else None
        nll, _ = train.heldout_nll(model, held, ctx, chunks, dense_index=mode == "all_entries")
        out[mode] = math.exp(nll)
        print(f"indexer ablation, {chunks} chunks: {mode} -> ppl {out[mode]:.3f}", flush=True)
    for m in idx:
        m.score_hook = None
    # attention-mass recall: the share of the main attention's compressed-part probability (the KL
    # target) that falls on the indexer's top-k, vs on a random top-k, where the choice is not forced
    attn = [m for m in model.modules() if type(m).__name__ == "Attention" and m.indexer is not None]
    for m in attn:
        m.keep_cmp_dist = True
    rec, rnd, kls, rows = 0.0, 0.0, 0.0, 0
    with torch.no_grad():
        for c in range(chunks):
            o = model.prefill(held[c * ctx:(c + 1) * ctx].unsqueeze(0))
            for info in o["info"]:
                if "cmp_dist" not in info:
                    continue
                p, top = info["cmp_dist"][0], info["topk"][0]          # [T, N], [T, k]
                n_valid = (torch.arange(1, ctx + 1) // 4)
                free = n_valid > top.size(-1)
                sel = torch.zeros(p.shape[0], p.shape[1] + 1).scatter_(1, torch.where(top < 0, p.shape[1], top), 1.0)
                rec += (p * sel[:, :-1]).sum(-1)[free].sum().item()
                rnd += (top.size(-1) / n_valid[free].float()).sum().item()
                kls += info["index_kl"].item()
                rows += int(free.sum())
    for m in attn:
        m.keep_cmp_dist = False
    out["attention_mass_recall_indexer"] = rec / rows
    out["attention_mass_recall_random_expected"] = rnd / rows
    out["index_kl"] = kls / (chunks * len(attn))
    print(f"attention mass on the top-k: indexer {rec / rows:.3f}, random {rnd / rows:.3f} (rows {rows})", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--state", default="model_final.pt", help="file in --work (or ckpt.pt for a partial run)")
    ap.add_argument("--out", default=os.path.join(ROOT, "models/tiny-v4"))
    ap.add_argument("--json", default=None, help="results file (default WORK/results.json)")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--sample-tokens", type=int, default=100)
    ap.add_argument("--skip-f32-eval", action="store_true", help="only evaluate the exported model")
    ap.add_argument("--eval-chunks", type=int, default=None, help="default: the whole held-out text")
    ap.add_argument("--ablation-chunks", type=int, default=16)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg = json.load(open(os.path.join(a.work, "config.json")))
    cfg = dict(train.hf_config(cfg["vocab_size"]), **cfg)     # descriptive fields added after a run started
    model = Transformer(ModelArgs.from_hf(cfg, max_seq_len=1024))
    st = torch.load(os.path.join(a.work, a.state))
    model.load_state_dict(st["model"])
    model.eval()
    os.makedirs(a.out, exist_ok=True)
    checkpoint.st_write(os.path.join(a.out, "model.safetensors"), checkpoint.export_tensors(model))
    json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)
    sha = hashlib.sha256(open(os.path.join(a.out, "model.safetensors"), "rb").read()).hexdigest()
    size = os.path.getsize(os.path.join(a.out, "model.safetensors"))
    print(f"wrote {a.out}: model.safetensors {size / 1e6:.2f} MB, sha256 {sha}", flush=True)

    qmodel, _ = checkpoint.load(a.out, max_seq_len=1024)
    model.args.qat = True
    worst = 0.0
    with torch.no_grad():
        mine = dict(model.named_parameters())
        for name, p in qmodel.named_parameters():
            worst = max(worst, (qw(mine[name], model.args) - p).abs().max().item())
        for name, b in qmodel.named_buffers():
            worst = max(worst, (dict(model.named_buffers())[name].float() - b.float()).abs().max().item())
    print(f"exported weights vs quantization-aware view of the training weights: max |diff| {worst}", flush=True)
    assert worst == 0.0, "export does not reproduce the weights the model was trained with"

    _, held = train.corpus_ids(a.work)
    res = {"state": a.state, "step": st.get("step"), "model_sha256": sha, "model_bytes": size, "ctx": a.ctx}
    nll, cnt = train.heldout_nll(qmodel, held, a.ctx, a.eval_chunks)
    res["heldout_ppl_exported"] = math.exp(nll)
    res["heldout_tokens"] = cnt
    print(f"held-out ppl, exported FP8/FP4 model (ctx {a.ctx}, {cnt} tokens): {math.exp(nll):.3f}", flush=True)
    if not a.skip_f32_eval:
        model.args.qat = False
        nll, cnt = train.heldout_nll(model, held, a.ctx, a.eval_chunks)
        res["heldout_ppl_f32_master"] = math.exp(nll)
        print(f"held-out ppl, f32 master weights before quantization: {math.exp(nll):.3f}", flush=True)
    res["indexer_ablation"] = indexer_ablation(qmodel, held, a.ctx, a.ablation_chunks)
    tok = train.load_tokenizer()
    res["samples"] = {}
    for p in PROMPTS:
        ids = tok.encode(p.encode())
        text = tok.decode(ids + train.greedy(qmodel, ids, a.sample_tokens))
        res["samples"][p] = text
        print(f"--- greedy from {p!r}:\n{text}", flush=True)
    json.dump(res, open(a.json or os.path.join(a.work, "results.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
