#!/usr/bin/python3
"""Regenerate tests/fixtures/tiny-v4/: reference outputs of models/tiny-v4 (the shipped FP8/FP4 file,
dequantized exactly) for the C++ engine's numerical tests. Format: tests/fixtures/tiny-v4/README.md.

Numerics: tools/reference (docs/deepseek-v4.md §2.B): f32 activations, FP8 KV / FP4 indexer simulation,
shared expert clamped, fresh compressor state per sequence. Decode steps are teacher-forced with the
text's own next tokens, so no golden depends on an argmax.

usage: make_goldens.py [--model models/tiny-v4] [--out tests/fixtures/tiny-v4]
"""
import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../.."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools/train"))
import checkpoint  # noqa: E402
import train  # noqa: E402

DT = {"f32": np.float32, "i32": np.int32, "f64": np.float64}
HIDDEN_STEPS = [0, 1, 15, 31]          # decode steps whose per-layer streams are stored


class Writer:
    def __init__(self, out):
        self.out, self.arrays = out, {}

    def add(self, name, arr, dtype, desc):
        arr = np.ascontiguousarray(np.asarray(arr, DT[dtype]))
        fname = f"{name}.{dtype}.bin"
        arr.astype(arr.dtype.newbyteorder("<")).tofile(os.path.join(self.out, fname))
        self.arrays[name] = {"file": fname, "dtype": dtype, "shape": list(arr.shape), "desc": desc}


def topk_rows(top, score, k):
    """sorted selections (-1 last) and the margin between the k-th and (k+1)-th valid score per row
    (inf when the row has at most k valid entries: the selection is then forced)."""
    top = top.clone()
    top[top < 0] = 1 << 30
    top = top.sort(-1)[0]
    top[top == 1 << 30] = -1
    s = score.sort(-1, descending=True)[0]
    valid = torch.isfinite(s).sum(-1)
    margin = torch.full(valid.shape, float("inf"))
    has = valid > k
    if k > 0 and has.any():
        margin[has] = (s[has, k - 1] - s[has, k]).float()
    return top, margin


def run_sequence(model, w, name, ids, prompt_len, steps, positions, layers, mtp_steps):
    """prefill prompt_len ids, then decode `steps` ids one at a time; record logits, streams, indexer."""
    a = model.args
    csa = [i for i in range(a.n_layers) if a.compress_ratios[i] == 4]
    cmp_layers = [i for i in range(a.n_layers) if a.compress_ratios[i]]
    V, k = a.vocab_size, a.index_topk
    x = torch.tensor([ids[:prompt_len]])
    caches, mcache = model.new_caches(), model.new_mtp_cache()
    with torch.no_grad():
        out = model.prefill(x, caches=caches, keep_hidden=range(a.n_layers))
        nxt = torch.tensor([ids[1:prompt_len + 1]])
        mtp = model.mtp_prefill(out["x"], nxt, cache=mcache)[0]
        w.add(f"{name}.ids", ids[:prompt_len + steps], "i32", "token ids: prompt, then the decode inputs")
        w.add(f"{name}.prefill_logits", out["logits"][0, positions], "f32",
              f"prefill logits at positions {positions} [n_pos, vocab]")
        w.add(f"{name}.prefill_hidden", torch.stack([out["hidden"][i][0, positions] for i in layers]), "f32",
              f"HC streams after layers {layers} at positions {positions} [n_layers, n_pos, hc_mult, dim]")
        w.add(f"{name}.mtp_prefill_logits", mtp[positions], "f32",
              "MTP logits (streams at t + embedding of token t+1, predicts t+2) at the prefill positions")
        if csa:
            sel = [topk_rows(out["info"][i]["topk"][0], out["info"][i]["iscore"][0], k) for i in csa]
            w.add(f"{name}.prefill_topk", torch.stack([s[0] for s in sel]), "i32",
                  f"indexer selections of CSA layers {csa} per prefill position, entry ids ascending, -1 = none")
            w.add(f"{name}.prefill_topk_margin", torch.stack([s[1] for s in sel]), "f32",
                  "index score gap between the k-th and (k+1)-th best entry (inf: selection forced)")
        logits, hid, tops, margins, mtps = [], [], [], [], []
        for j in range(steps):
            t = prompt_len + j
            lg, xm, infos, hidden = model.decode(ids[t], t, caches, keep_hidden=range(a.n_layers))
            logits.append(lg)
            if j in HIDDEN_STEPS:
                hid.append(torch.stack([hidden[i][0, 0] for i in layers]))
            sel = [topk_rows(F.pad(infos[i]["topk"], (0, k - len(infos[i]["topk"])), value=-1)[None],
                             infos[i]["iscore"][None], k) for i in csa]
            if csa:
                tops.append(torch.stack([s[0][0] for s in sel]))
                margins.append(torch.stack([s[1][0] for s in sel]))
            if j < mtp_steps and t + 1 < len(ids):
                mtps.append(model.mtp_decode(xm, ids[t + 1], t, mcache))
        w.add(f"{name}.decode_logits", torch.stack(logits), "f32",
              f"logits after each decode step, positions {prompt_len}..{prompt_len + steps - 1} [steps, vocab]")
        w.add(f"{name}.decode_hidden", torch.stack(hid), "f32",
              f"HC streams after layers {layers} at decode steps {HIDDEN_STEPS} [4, n_layers, hc_mult, dim]")
        if csa:
            w.add(f"{name}.decode_topk", torch.stack(tops), "i32",
                  f"indexer selections of CSA layers {csa} at each decode step, ascending, -1 padded "
                  "[steps, n_csa, index_topk]")
            w.add(f"{name}.decode_topk_margin", torch.stack(margins), "f32",
                  "index score gap between the k-th and (k+1)-th best entry per decode step [steps, n_csa]")
        if mtps:
            w.add(f"{name}.mtp_decode_logits", torch.stack(mtps), "f32",
                  f"MTP decode logits at positions {prompt_len}..{prompt_len + len(mtps) - 1} (input: the main "
                  "streams of that step and the next text token) after an MTP prefill over the prompt")
        for i in cmp_layers:
            comp = torch.stack(caches[i]["comp"]) if caches[i]["comp"] else torch.zeros(0, a.head_dim)
            w.add(f"{name}.comp_l{i}", comp, "f32",
                  f"layer {i} compressed KV entries after the last decode step [n_entries, head_dim]")
            if a.compress_ratios[i] == 4:
                w.add(f"{name}.ikeys_l{i}", torch.stack(caches[i]["ikeys"]), "f32",
                      f"layer {i} indexer compressed keys after the last decode step [n_entries, index_head_dim]")
    return {"prompt_len": prompt_len, "decode_steps": steps, "prefill_positions": positions,
            "decode_hidden_steps": HIDDEN_STEPS,
            "hidden_layers": layers, "csa_layers": csa, "compressed_layers": cmp_layers}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(ROOT, "models/tiny-v4"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests/fixtures/tiny-v4"))
    ap.add_argument("--ctx", type=int, default=512, help="held-out perplexity context")
    ap.add_argument("--heldout-chunks", type=int, default=None, help="default: all (testing only)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    model, cfg = checkpoint.load(a.model, max_seq_len=1024)
    tok = train.load_tokenizer()
    text = open(train.CORPUS, encoding="utf-8").read()
    held = tok.encode(text[int(0.9 * len(text)):].encode())
    w = Writer(a.out)
    seqs = {
        "long": run_sequence(model, w, "long", held[:632], 600, 32, [0, 127, 128, 255, 511, 599],
                             list(range(model.args.n_layers)), 8),
        "short": run_sequence(model, w, "short", held[1000:1052], 20, 32, list(range(20)),
                              list(range(model.args.n_layers)), 8),
    }
    # The deployed numerics (ModelOptions::act_quant): the short prompt's prefill logits with the
    # inputs of the FP8/FP4 linears rounded by act_quant(x, 128).
    model.args.act_quant = True
    with torch.no_grad():
        aq = model.prefill(torch.tensor([held[1000:1020]]))["logits"][0]
    model.args.act_quant = False
    w.add("act_quant.short.prefill_logits", aq, "f32",
          "short prompt (20 tokens) prefill logits with act_quant on the FP8/FP4 linears' inputs [20, vocab]")
    n = len(held) // a.ctx if a.heldout_chunks is None else a.heldout_chunks
    chunk_nll = []
    with torch.no_grad():
        for c in range(n):
            chunk = torch.tensor([held[c * a.ctx:(c + 1) * a.ctx]])
            lp = torch.log_softmax(model.prefill(chunk)["logits"][0], -1)
            f = a.ctx // 2
            chunk_nll.append(-lp[f:a.ctx - 1].gather(1, chunk[0, f + 1:].unsqueeze(1)).sum().item())
    cnt = n * (a.ctx - 1 - a.ctx // 2)
    w.add("heldout.ids", held, "i32", "the whole held-out text (last 10 % of the corpus characters), encoded")
    w.add("heldout.chunk_nll", chunk_nll, "f64",
          f"summed NLL (nats) over positions {a.ctx // 2}..{a.ctx - 2} predicting the next id, per chunk of {a.ctx}")
    sha = hashlib.sha256(open(os.path.join(a.model, "model.safetensors"), "rb").read()).hexdigest()
    manifest = {
        "model": {"dir": "models/tiny-v4", "model_safetensors_sha256": sha},
        "reference": "tools/reference (f32 activations, FP8 KV + FP4 indexer simulation, shared expert clamped, "
                     "fresh compressor state per sequence; docs/deepseek-v4.md §2.B)",
        "byte_order": "little", "layout": "C order (last index fastest)",
        "vocab_size": cfg["vocab_size"], "sequences": seqs,
        "heldout": {"ctx": a.ctx, "chunks": n, "tokens_scored": cnt,
                    "ppl": math.exp(sum(chunk_nll) / cnt), "nll_sum": sum(chunk_nll)},
        "arrays": w.arrays,
    }
    json.dump(manifest, open(os.path.join(a.out, "manifest.json"), "w"), indent=1)
    with open(os.path.join(a.out, "manifest.txt"), "w") as f:     # the same facts for check_goldens.sh
        f.write(f"model_sha256 {sha}\n")
        for name, m in w.arrays.items():
            n = int(np.prod(m["shape"])) * np.dtype(DT[m["dtype"]]).itemsize
            f.write(f"array {name} {m['file']} {m['dtype']} {'x'.join(map(str, m['shape'])) or '1'} {n}\n")
    print(f"wrote {len(w.arrays)} arrays to {a.out}; held-out ppl {manifest['heldout']['ppl']:.4f}")


if __name__ == "__main__":
    main()
