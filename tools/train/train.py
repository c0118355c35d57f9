#!/usr/bin/python3
"""Train the tiny DeepSeek-V4 model shipped in models/tiny-v4 on tinyshakespeare (last 10 % held out).

Every architectural feature is exercised (docs/deepseek-v4.md §1.2 shapes, scaled down): 2 window-only
layers, CSA (ratio 4, lightning indexer, top-k < compressed entries at ctx 512) and HCA (ratio 128)
layers, 2 hash-routed MoE layers, 4 hyper-connection streams, top-2 of 8 routed experts + a clamped
shared expert, one MTP block (its loss is trained too). The forward pass is tools/reference itself
(prefill path); training-only pieces live here:
  - indexer: trained only by KL(main attention over all compressed entries || softmax(index scores))
    (attention.py Attention.index_kl), its inputs detached, as DeepSeek-V3.2 trained its indexer; the
    main attention uses all compressed entries for the first --dense-frac of the run, then the top-k;
  - routing balance: auxiliary-loss-free bias update on the non-hash gates (DeepSeek-V3 noaux_tc);
  - quantization-aware training from --qat-frac of the run on: every weight is used at its stored
    value (FP8 128x128 / FP4 1x32 / bf16) with straight-through gradients; the FP8 KV and FP4 indexer
    simulations are always on (also straight-through);
  - a wall-clock schedule: warm-up, cosine decay over --minutes; checkpoints every --ckpt-minutes.

usage: train.py --work DIR [--minutes 55] [--resume | --init-from CKPT]; then export.py writes models/tiny-v4.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(ROOT, "tools/reference"))
from common import ModelArgs  # noqa: E402
from model import Transformer  # noqa: E402

CORPUS = os.path.join(ROOT, "../shared/data/tinyshakespeare.txt")
TOKENIZER = os.path.join(ROOT, "models/tiny-v4/tokenizer.json")


def hf_config(vocab_size):
    """config.json of tiny-v4 with the official field names (§1.2)."""
    return {
        "architectures": ["DeepseekV4ForCausalLM"], "model_type": "deepseek_v4", "vocab_size": vocab_size,
        "hidden_size": 256, "num_hidden_layers": 6, "num_nextn_predict_layers": 1,
        "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 128, "qk_rope_head_dim": 64,
        "q_lora_rank": 128, "o_groups": 2, "o_lora_rank": 128, "sliding_window": 128,
        "compress_ratios": [0, 0, 4, 128, 4, 128, 0], "compress_rope_theta": 160000, "rope_theta": 10000,
        "rope_scaling": {"type": "yarn", "factor": 16, "original_max_position_embeddings": 65536,
                         "beta_fast": 32, "beta_slow": 1},
        "index_n_heads": 4, "index_head_dim": 128, "index_topk": 16,
        "hc_mult": 4, "hc_sinkhorn_iters": 20, "hc_eps": 1e-6,
        "n_routed_experts": 8, "n_shared_experts": 1, "num_experts_per_tok": 2, "moe_intermediate_size": 256,
        "num_hash_layers": 2, "scoring_func": "sqrtsoftplus", "topk_method": "noaux_tc", "norm_topk_prob": True,
        "routed_scaling_factor": 1.5, "swiglu_limit": 10.0, "rms_norm_eps": 1e-6, "hidden_act": "silu",
        "attention_bias": False, "attention_dropout": 0.0, "initializer_range": 0.02, "use_cache": True,
        "max_position_embeddings": 1048576, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1,
        "tie_word_embeddings": False, "expert_dtype": "fp4", "torch_dtype": "bfloat16",
        "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                "scale_fmt": "ue8m0", "weight_block_size": [128, 128]},
    }


def load_tokenizer():
    sys.path.insert(0, os.path.join(ROOT, "tools/tokenizer"))
    import bpe
    return bpe.Tokenizer(TOKENIZER)


def corpus_ids(cache_dir):
    """(train ids, held-out ids): the text is split at 90 % of its characters, each part encoded alone."""
    path = os.path.join(cache_dir, "ids.pt")
    if os.path.exists(path):
        return torch.load(path)
    text = open(CORPUS, encoding="utf-8").read()
    cut = int(0.9 * len(text))
    tok = load_tokenizer()
    ids = (torch.tensor(tok.encode(text[:cut].encode())), torch.tensor(tok.encode(text[cut:].encode())))
    torch.save(ids, path)
    return ids


def init_weights(model, seed):
    """small normal init; output projections scaled by 1/sqrt(2 L); mHC starts near identity mixing."""
    g = torch.Generator().manual_seed(seed)
    a = model.args
    out_scale = (2 * (a.n_layers + a.n_mtp_layers)) ** -0.5
    with torch.no_grad():
        for name, p in model.named_parameters():
            def normal(std):
                p.copy_(torch.randn(p.shape, generator=g) * std)
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif "hc_" in name and name.endswith("_fn"):
                normal(1e-3)
            elif "hc_" in name and name.endswith("_scale"):
                p.fill_(1.0)
            elif name.endswith("hc_attn_base") or name.endswith("hc_ffn_base"):
                hc = a.hc_mult
                base = torch.cat([torch.full((hc,), -1.1), torch.zeros(hc), 2.0 * torch.eye(hc).flatten()])
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith("hc_head_base") or name.endswith("attn_sink") or name.endswith(".ape"):
                p.zero_()
            elif name.endswith("gate.bias"):
                p.zero_()
            elif name.endswith("wo_b.weight") or name.endswith("w2.weight"):
                normal(0.02 * out_scale)
            else:
                normal(0.02)
        for mod in model.modules():
            if getattr(mod, "hash", False):
                r = torch.rand(a.vocab_size, a.n_routed_experts, generator=g)
                mod.tid2eid.copy_(r.argsort(-1)[:, :a.n_activated_experts])


def losses(model, chunk, dense_index):
    """chunk [B, T+2] -> dict of lm (next token), mtp (token after next) and indexer KL losses."""
    T = chunk.size(1) - 2
    ids = chunk[:, :T]
    out = model.prefill(ids, dense_index=dense_index)
    V = out["logits"].size(-1)
    lm = F.cross_entropy(out["logits"].reshape(-1, V), chunk[:, 1:T + 1].reshape(-1))
    mtp_logits = model.mtp_prefill(out["x"], chunk[:, 1:T + 1])
    mtp = F.cross_entropy(mtp_logits.reshape(-1, V), chunk[:, 2:T + 2].reshape(-1))
    kls = [i["index_kl"] for i in out["info"] if "index_kl" in i]
    return {"lm": lm, "mtp": mtp, "kl": sum(kls) / max(len(kls), 1)}


@torch.no_grad()
def heldout_nll(model, ids, ctx, max_chunks=None, dense_index=False):
    """llama-perplexity style, as run_official.py: chunks of ctx ids, NLL over the second half of each."""
    nll, cnt = 0.0, 0
    n = len(ids) // ctx if max_chunks is None else min(max_chunks, len(ids) // ctx)
    for c in range(n):
        chunk = ids[c * ctx:(c + 1) * ctx].unsqueeze(0)
        lp = torch.log_softmax(model.prefill(chunk, dense_index=dense_index)["logits"][0], -1)
        first = ctx // 2
        nll -= lp[first:ctx - 1].gather(1, chunk[0, first + 1:].unsqueeze(1)).sum().item()
        cnt += ctx - 1 - first
    return nll / max(cnt, 1), cnt


@torch.no_grad()
def greedy(model, prompt_ids, n):
    caches = model.new_caches()
    out = model.prefill(torch.tensor([prompt_ids]), caches=caches)
    tok = int(out["logits"][0, -1].argmax())
    gen = [tok]
    for t in range(len(prompt_ids), len(prompt_ids) + n - 1):
        tok = int(model.decode(tok, t, caches)[0].argmax())
        gen.append(tok)
    return gen


def update_gate_bias(model, rate):
    """auxiliary-loss-free balancing: raise the bias of under-loaded experts, lower over-loaded ones."""
    for mod in model.modules():
        if hasattr(mod, "gate") and getattr(mod.gate, "bias", None) is not None and mod.load is not None:
            load = mod.load.float()
            mod.gate.bias.data += rate * torch.sign(load.mean() - load)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="checkpoints, log and token cache go here")
    ap.add_argument("--minutes", type=float, default=55.0)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--dense-frac", type=float, default=0.1)
    ap.add_argument("--qat-frac", type=float, default=0.3)
    ap.add_argument("--mtp-weight", type=float, default=0.3)
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--eval-chunks", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resume", action="store_true", help="continue the run in --work where it stopped")
    ap.add_argument("--init-from", help="start a new schedule (warm restart) from this checkpoint's weights")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (timing runs)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    train_ids, held_ids = corpus_ids(a.work)
    tok = load_tokenizer()
    cfg = hf_config(tok.vocab_size)
    json.dump(cfg, open(os.path.join(a.work, "config.json"), "w"), indent=2)
    model = Transformer(ModelArgs.from_hf(cfg, max_seq_len=max(a.ctx, 1024)))
    init_weights(model, a.seed)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() == 2]
    other = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    ck_path = os.path.join(a.work, "ckpt.pt")
    step, elapsed0 = 0, 0.0
    if a.resume and os.path.exists(ck_path):
        ck = torch.load(ck_path)
        model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"])
        step, elapsed0 = ck["step"], ck["elapsed"]
    elif a.init_from:
        ck = torch.load(a.init_from)
        model.load_state_dict(ck["model"])
        if "opt" in ck:
            opt.load_state_dict(ck["opt"])
        step = ck["step"]
    g = torch.Generator().manual_seed(a.seed + step)
    log = open(os.path.join(a.work, "log.jsonl"), "a")
    budget = a.minutes * 60
    t0 = time.time() - elapsed0
    last_ck = time.time()
    print(f"train tokens {len(train_ids)}, held-out {len(held_ids)}, vocab {tok.vocab_size}, "
          f"params {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M", flush=True)

    def save(tag=""):
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed": time.time() - t0}
        torch.save(state, ck_path + ".tmp"); os.replace(ck_path + ".tmp", ck_path)
        if tag:
            torch.save({"model": model.state_dict(), "step": step}, os.path.join(a.work, f"model_{tag}.pt"))

    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1.0 or (a.max_steps and step >= a.max_steps):
            break
        model.args.qat = frac >= a.qat_frac
        dense = frac < a.dense_frac
        lr = a.lr * min(1.0, (step + 1) / a.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for grp in opt.param_groups:
            grp["lr"] = lr
        off = torch.randint(0, len(train_ids) - a.ctx - 2, (a.batch,), generator=g)
        chunk = torch.stack([train_ids[o:o + a.ctx + 2] for o in off.tolist()])
        ts = time.time()
        with torch.autocast("cpu", dtype=torch.bfloat16):           # bf16 matmuls (oneDNN), f32 elsewhere
            ls = losses(model, chunk, dense)
        loss = ls["lm"] + a.mtp_weight * ls["mtp"] + ls["kl"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        update_gate_bias(model, 2e-3)
        step += 1
        rec = {"step": step, "min": (time.time() - t0) / 60, "lr": lr, "lm": ls["lm"].item(),
               "mtp": ls["mtp"].item(), "kl": ls["kl"].item(), "gnorm": gn.item(), "qat": model.args.qat,
               "dense": dense, "sec": time.time() - ts}
        if step % 10 == 0 or step == 1:
            print(json.dumps(rec), flush=True)
        if time.time() - last_ck > a.ckpt_minutes * 60:
            model.eval()
            nll, _ = heldout_nll(model, held_ids, a.ctx, a.eval_chunks)
            rec["heldout_ppl"] = math.exp(nll)
            model.train()
            save(); last_ck = time.time()
            print(json.dumps(rec), flush=True)
        log.write(json.dumps(rec) + "\n"); log.flush()
    save("final")
    model.eval()
    for qat in (False, True):
        model.args.qat = qat
        nll, cnt = heldout_nll(model, held_ids, a.ctx, a.eval_chunks)
        print(f"final held-out ppl ({'quantized' if qat else 'f32 master'} weights, {cnt} tokens): "
              f"{math.exp(nll):.3f}", flush=True)
    prompt = tok.encode("ROMEO:\n".encode())
    print("greedy:", repr(tok.decode(prompt + greedy(model, prompt, 80))), flush=True)


if __name__ == "__main__":
    main()
