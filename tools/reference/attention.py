"""DeepSeek-V4 attention for the reference: Compressor, Indexer, Attention (docs/deepseek-v4.md §2.3-2.5).

Two call shapes, as in the official model.py: prefill from position 0 (any length, batched,
differentiable, used for training) and single-token decode (batch 1) with the state the official code
keeps (window ring, compressed entries, indexer keys, compressor kv_state/score_state). Numerics follow
§2.B: f32 everywhere except the FP8 simulation of KV entries and the FP4 simulation of the indexer.
The prefill attention is a dense masked softmax over exactly the candidate set that the official
`sparse_attn` index lists describe (window + compressed part), which is the same sum.
"""
import torch
import torch.nn.functional as F
from torch import nn

import fp_emul
from common import Linear, RMSNorm, qw, rope_last


def kv_fp8_sim(kv, rd):
    """FP8 simulation (block 64) of the non-rope dims of a KV vector, STE for training (§2.A)."""
    nope = kv[..., :-rd]
    return torch.cat([fp_emul.ste(nope, fp_emul.act_quant_sim(nope, 64)), kv[..., -rd:]], -1)


def idx_fp4_sim(x):
    """Hadamard rotation + FP4 simulation (block 32) of indexer q / keys, STE for training (§2.5)."""
    x = fp_emul.hadamard(x)
    return fp_emul.ste(x, fp_emul.fp4_act_quant_sim(x, 32))


class Compressor(nn.Module):
    """mirrors Compressor: gated pooling of `ratio` tokens; overlapping (2 blocks) when ratio == 4."""
    def __init__(self, args, ratio, head_dim, rotate=False):
        super().__init__()
        self.args, self.ratio, self.head_dim, self.rotate = args, ratio, head_dim, rotate
        self.overlap = ratio == 4
        self.rd = args.rope_head_dim
        coff = 1 + self.overlap
        self.ape = nn.Parameter(torch.zeros(ratio, coff * head_dim))
        self.wkv = Linear(args, args.dim, coff * head_dim)
        self.wgate = Linear(args, args.dim, coff * head_dim)
        self.norm = RMSNorm(args, head_dim)

    def new_state(self):
        c = 1 + self.overlap
        f32 = torch.float32
        return {"kv": torch.zeros(c * self.ratio, c * self.head_dim, dtype=f32),
                "score": torch.full((c * self.ratio, c * self.head_dim), float("-inf"), dtype=f32)}

    def finish(self, pooled, cos, sin):
        """norm, RoPE at the block's first position, then the FP4 (indexer) or FP8 (main) simulation."""
        kv = rope_last(self.norm(pooled), cos, sin, self.rd)
        return idx_fp4_sim(kv) if self.rotate else kv_fp8_sim(kv, self.rd)

    def prefill(self, x, cos, sin, state=None):
        """x [B, T, D] -> entries [B, T // ratio, head_dim]; fills `state` like the official prefill."""
        B, T, _ = x.shape
        r, d = self.ratio, self.head_dim
        a, b = self.wkv(x), self.wgate(x)                           # [B, T, c*d]
        ape = qw(self.ape, self.args)
        cut = T - T % r
        n = cut // r
        if state is not None:
            with torch.no_grad():
                off = r if self.overlap else 0
                if self.overlap and cut >= r:
                    state["kv"][:r] = a[0, cut - r:cut]
                    state["score"][:r] = b[0, cut - r:cut] + ape
                if T % r:
                    state["kv"][off:off + T % r] = a[0, cut:]
                    state["score"][off:off + T % r] = b[0, cut:] + ape[:T % r]
        if n == 0:
            return x.new_zeros(B, 0, d)
        a = a[:, :cut].view(B, n, r, -1)
        b = b[:, :cut].view(B, n, r, -1) + ape
        if self.overlap:                                            # candidates: prev block's first half
            pa = torch.cat([a.new_zeros(B, 1, r, d), a[:, :-1, :, :d]], 1)
            pb = torch.cat([b.new_full((B, 1, r, d), float("-inf")), b[:, :-1, :, :d]], 1)
            a = torch.cat([pa, a[..., d:]], 2)                      # [B, n, 2r, d]
            b = torch.cat([pb, b[..., d:]], 2)
        pooled = (a * b.softmax(dim=2)).sum(2)                      # [B, n, d]
        return self.finish(pooled, cos[0:cut:r], sin[0:cut:r])

    @torch.no_grad()
    def decode(self, x, t, state, cos, sin):
        """x [1, 1, D] at position t; returns the entry [head_dim] completed by t, or None."""
        r, d = self.ratio, self.head_dim
        a = self.wkv(x)[0, 0]
        b = self.wgate(x)[0, 0] + qw(self.ape, self.args)[t % r]
        kv, sc = state["kv"], state["score"]
        emit = (t + 1) % r == 0
        if self.overlap:
            kv[r + t % r], sc[r + t % r] = a, b
            if not emit:
                return None
            ka = torch.cat([kv[:r, :d], kv[r:, d:]], 0)
            sa = torch.cat([sc[:r, :d], sc[r:, d:]], 0)
            pooled = (ka * sa.softmax(dim=0)).sum(0)
            kv[:r], sc[:r] = kv[r:].clone(), sc[r:].clone()
        else:
            kv[t % r], sc[t % r] = a, b
            if not emit:
                return None
            pooled = (kv * sc.softmax(dim=0)).sum(0)
        p = t + 1 - r
        return self.finish(pooled[None], cos[p:p + 1], sin[p:p + 1])[0]


class Indexer(nn.Module):
    """mirrors Indexer: lightning indexer over the compressed keys of a CSA layer (§2.5)."""
    def __init__(self, args):
        super().__init__()
        self.args = args
        self.n_heads, self.head_dim, self.rd = args.index_n_heads, args.index_head_dim, args.rope_head_dim
        self.wq_b = Linear(args, args.q_lora_rank, self.n_heads * self.head_dim)
        self.weights_proj = Linear(args, args.dim, self.n_heads)
        self.compressor = Compressor(args, 4, self.head_dim, rotate=True)
        self.scale = self.head_dim ** -0.5 * self.n_heads ** -0.5
        self.score_hook = None          # ablations only: replaces the prefill index scores

    def query(self, x, qr, cos, sin):
        q = self.wq_b(qr).unflatten(-1, (self.n_heads, self.head_dim))
        q = idx_fp4_sim(rope_last(q, cos, sin, self.rd))
        return q, self.weights_proj(x) * self.scale                  # [B,T,h,d], [B,T,h]

    def prefill(self, x, qr, cos, sin, state=None):
        """-> (topk [B, T, k] entry ids or -1, score [B, T, N] with -inf where not causal, keys)."""
        B, T, _ = x.shape
        q, w = self.query(x, qr, cos[:T], sin[:T])
        keys = self.compressor.prefill(x, cos, sin, state)           # [B, N, d]
        n = keys.size(1)
        score = (torch.einsum("bshd,btd->bsht", q, keys).float().relu() * w.unsqueeze(-1)).sum(2)
        valid = torch.arange(n) < (torch.arange(1, T + 1) // 4).unsqueeze(1)      # [T, N]
        if self.score_hook is not None:
            score = self.score_hook(score)
        score = score.masked_fill(~valid, float("-inf"))
        k = min(self.args.index_topk, n)
        top = score.topk(k, dim=-1)[1] if k > 0 else score.new_zeros(B, T, 0, dtype=torch.long)
        top = torch.where(top >= (torch.arange(1, T + 1) // 4).view(1, T, 1), -1, top)
        return top, score, keys

    @torch.no_grad()
    def decode(self, x, qr, t, cache, cos, sin):
        """-> (selected entry ids long [k], index scores [n]) over the n = (t+1)//4 entries in cache['ikeys']."""
        q, w = self.query(x, qr, cos[t:t + 1], sin[t:t + 1])
        e = self.compressor.decode(x, t, cache["istate"], cos, sin)
        if e is not None:
            cache["ikeys"].append(e)
        n = (t + 1) // 4
        if n == 0:
            return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.float32)
        keys = torch.stack(cache["ikeys"][:n])
        score = (torch.einsum("hd,td->ht", q[0, 0], keys).relu() * w[0, 0].unsqueeze(-1)).sum(0)
        return score.topk(min(self.args.index_topk, n))[1], score


class Attention(nn.Module):
    """mirrors Attention: q-LoRA, per-head q norm, partial RoPE, one shared KV vector (MQA),
    128-token window + compressed entries, attention sink, grouped low-rank output (§2.3)."""
    def __init__(self, layer_id, args):
        super().__init__()
        self.args, self.layer_id = args, layer_id
        self.n_heads, self.head_dim, self.rd = args.n_heads, args.head_dim, args.rope_head_dim
        self.n_groups, self.o_lora_rank, self.win = args.o_groups, args.o_lora_rank, args.window_size
        self.ratio = args.compress_ratios[layer_id]
        self.attn_sink = nn.Parameter(torch.zeros(self.n_heads))
        self.wq_a = Linear(args, args.dim, args.q_lora_rank)
        self.q_norm = RMSNorm(args, args.q_lora_rank)
        self.wq_b = Linear(args, args.q_lora_rank, self.n_heads * self.head_dim)
        self.wkv = Linear(args, args.dim, self.head_dim)
        self.kv_norm = RMSNorm(args, self.head_dim)
        self.wo_a = Linear(args, self.n_heads * self.head_dim // self.n_groups, self.n_groups * self.o_lora_rank)
        self.wo_b = Linear(args, self.n_groups * self.o_lora_rank, args.dim)
        self.softmax_scale = self.head_dim ** -0.5
        if self.ratio:
            self.compressor = Compressor(args, self.ratio, self.head_dim)
        self.indexer = Indexer(args) if self.ratio == 4 else None
        self.keep_cmp_dist = False      # evaluation only: also return the indexer's KL target in prefill

    def qkv(self, x, cos, sin):
        qr = self.q_norm(self.wq_a(x))
        q = self.wq_b(qr).unflatten(-1, (self.n_heads, self.head_dim))
        q = q * torch.rsqrt(q.square().mean(-1, keepdim=True) + self.args.norm_eps)   # weightless
        q = rope_last(q, cos, sin, self.rd)
        kv = kv_fp8_sim(rope_last(self.kv_norm(self.wkv(x)), cos, sin, self.rd), self.rd)
        return qr, q, kv

    def out(self, o, cos, sin):
        """o [B, T, H, hd] -> de-rotate rope dims with the query position, grouped wo_a, wo_b."""
        o = rope_last(o, cos, sin, self.rd, inverse=True)
        B, T = o.shape[:2]
        o = o.reshape(B, T, self.n_groups, -1)
        wo_a = qw(self.wo_a.weight, self.args).view(self.n_groups, self.o_lora_rank, -1)
        return self.wo_b(torch.einsum("bsgd,grd->bsgr", o, wo_a).float().flatten(2))

    def attend(self, q, keys, mask):
        """softmax over the allowed keys plus the sink logit (denominator only); q [B,T,H,d]."""
        s = torch.einsum("bthd,bsd->bhts", q, keys).float() * self.softmax_scale
        s = s.masked_fill(~mask.unsqueeze(1), float("-inf"))
        sink = self.attn_sink.view(1, -1, 1, 1).expand(s.shape[0], -1, s.shape[2], 1)
        p = torch.cat([s, sink], -1).softmax(-1)[..., :-1]
        return torch.einsum("bhts,bsd->bthd", p, keys).float(), s

    def prefill(self, x, cos, sin, cache=None, dense_index=False):
        """x [B, T, D] -> (out [B, T, D], info dict: indexer selections/scores, compressed entries)."""
        B, T, _ = x.shape
        c, s_ = cos[:T], sin[:T]
        qr, q, kv = self.qkv(x, c, s_)
        pos = torch.arange(T)
        mask = (pos.view(1, T) <= pos.view(T, 1)) & (pos.view(1, T) > pos.view(T, 1) - self.win)
        mask = mask.unsqueeze(0).expand(B, T, T)
        keys, info = kv, {}
        if cache is not None:
            cache["ring"] = {p: kv[0, p] for p in range(max(0, T - self.win), T)}
        if self.ratio:
            comp = self.compressor.prefill(x, cos, sin, cache["state"] if cache is not None else None)
            n = comp.size(1)
            info["comp"] = comp
            if cache is not None:
                cache["comp"] = list(comp[0])
            causal = (torch.arange(n) < (pos + 1).unsqueeze(1) // self.ratio).unsqueeze(0).expand(B, T, n)
            cmask = causal
            if self.indexer is not None:
                xi, qi = (x.detach(), qr.detach()) if torch.is_grad_enabled() else (x, qr)
                top, iscore, ikeys = self.indexer.prefill(xi, qi, cos, sin,
                                                          cache["istate"] if cache is not None else None)
                if cache is not None:
                    cache["ikeys"] = list(ikeys[0])
                info["topk"], info["iscore"], info["ikeys"] = top, iscore, ikeys
                if not dense_index:
                    sel = torch.zeros(B, T, n + 1, dtype=torch.bool)
                    sel.scatter_(2, torch.where(top < 0, n, top), True)
                    cmask = sel[..., :n] & causal
            keys = torch.cat([kv, comp], 1)
            mask = torch.cat([mask, cmask], 2)
        o, _ = self.attend(q, keys, mask)
        if self.indexer is not None and (torch.is_grad_enabled() or self.keep_cmp_dist):
            info["index_kl"], info["cmp_dist"] = self.index_kl(q, comp, causal, info["iscore"])
        return self.out(o, c, s_), info

    def index_kl(self, q, comp, causal, iscore):
        """Training loss of the indexer (as V3.2 trained its lightning indexer): KL(p || softmax(I)),
        p = the main attention's distribution over ALL causal compressed entries (per head, renormalised
        over the compressed part, averaged over heads), detached; rows with no entry are skipped.
        Returns (KL averaged over rows, p [B, T, N])."""
        with torch.no_grad():
            s = torch.einsum("bthd,bnd->bhtn", q, comp).float() * self.softmax_scale
            s = s.masked_fill(~causal.unsqueeze(1), float("-inf"))
            rows = causal.any(-1)                                     # [B, T]
            p = torch.where(rows.unsqueeze(1).unsqueeze(-1), s, torch.zeros_like(s)).softmax(-1).mean(1)
            p = torch.where(causal, p, torch.zeros_like(p))
        logq = torch.where(causal, iscore, torch.full_like(iscore, -1e30)).log_softmax(-1)
        kl = torch.where(p > 0, p * (p.clamp_min(1e-30).log() - logq), torch.zeros_like(p)).sum(-1)
        return (kl * rows).sum() / rows.sum().clamp_min(1), p

    @torch.no_grad()
    def decode(self, x, t, cache, cos, sin):
        """x [1, 1, D] at position t (> 0 after a prefill, or 0 on a fresh cache)."""
        c, s_ = cos[t:t + 1], sin[t:t + 1]
        qr, q, kv = self.qkv(x, c, s_)
        ring = cache["ring"]
        ring[t] = kv[0, 0]
        ring.pop(t - self.win, None)                                  # ring of the last `win` positions
        keys = [ring[p] for p in range(max(0, t - self.win + 1), t + 1)]
        info = {}
        if self.ratio:
            e = self.compressor.decode(x, t, cache["state"], cos, sin)
            if e is not None:
                cache["comp"].append(e)
            n = (t + 1) // self.ratio
            if self.indexer is not None:
                sel, info["iscore"] = self.indexer.decode(x, qr, t, cache, cos, sin)
                info["topk"] = sel
                keys += [cache["comp"][j] for j in sel.tolist()]
            else:
                keys += cache["comp"][:n]
        keys = torch.stack(keys).unsqueeze(0)
        o, _ = self.attend(q, keys, torch.ones(1, 1, keys.size(1), dtype=torch.bool))
        return self.out(o, c, s_), info

    def new_cache(self):
        cache = {"ring": {}, "comp": []}
        if self.ratio:
            cache["state"] = self.compressor.new_state()
        if self.indexer is not None:
            cache["istate"], cache["ikeys"] = self.indexer.compressor.new_state(), []
        return cache
