"""DeepSeek-V4 reference model (PyTorch, f32): MoE, mHC blocks, MTP, whole-model prefill and decode.

Written from docs/deepseek-v4.md §2 and checked against the official inference/model.py
(tools/reference/check_official.py; method and figures in tools/README.md). Module and tensor names
match the official ones, so state_dict keys are the checkpoint's tensor names (§4.1).
"""
import torch
import torch.nn.functional as F
from torch import nn

from attention import Attention
from common import Linear, ModelArgs, RMSNorm, linear, precompute_freqs_cis, qw, tag_kinds


class Gate(nn.Module):
    """mirrors Gate: sqrt(softplus) scores; hash layers route by token id (tid2eid), the others by
    top-k of score + bias; weights = renormalized unbiased scores * route_scale (§2.7)."""
    def __init__(self, layer_id, args):
        super().__init__()
        self.args, self.topk = args, args.n_activated_experts
        self.hash = layer_id < args.n_hash_layers
        self.weight = nn.Parameter(torch.empty(args.n_routed_experts, args.dim))
        if self.hash:
            self.register_buffer("tid2eid", torch.zeros(args.vocab_size, self.topk, dtype=torch.long))
            self.bias = None
        else:
            self.bias = nn.Parameter(torch.zeros(args.n_routed_experts), requires_grad=False)

    def forward(self, x, input_ids):
        scores = linear(x, qw(self.weight, self.args))
        assert self.args.score_func == "sqrtsoftplus"
        scores = F.softplus(scores).sqrt()
        if self.hash:
            indices = self.tid2eid[input_ids]
        else:
            indices = (scores + self.bias).topk(self.topk, dim=-1)[1]
        weights = scores.gather(1, indices)
        weights = weights / weights.sum(-1, keepdim=True) * self.args.route_scale
        return weights, indices


class Expert(nn.Module):
    """mirrors Expert: SwiGLU with the routing weight applied before w2; clamp when limit > 0."""
    def __init__(self, args, inter_dim, swiglu_limit):
        super().__init__()
        self.w1 = Linear(args, args.dim, inter_dim)
        self.w2 = Linear(args, inter_dim, args.dim)
        self.w3 = Linear(args, args.dim, inter_dim)
        self.swiglu_limit = swiglu_limit

    def forward(self, x, weights=None):
        gate, up = self.w1(x), self.w3(x)
        if self.swiglu_limit > 0:
            up = torch.clamp(up, min=-self.swiglu_limit, max=self.swiglu_limit)
            gate = torch.clamp(gate, max=self.swiglu_limit)
        h = F.silu(gate) * up
        if weights is not None:
            h = weights * h
        return self.w2(h)


class MoE(nn.Module):
    def __init__(self, layer_id, args):
        super().__init__()
        self.args = args
        self.gate = Gate(layer_id, args)
        self.experts = nn.ModuleList([Expert(args, args.moe_inter_dim, args.swiglu_limit)
                                      for _ in range(args.n_routed_experts)])
        assert args.n_shared_experts == 1
        self.shared_experts = Expert(args, args.moe_inter_dim, args.swiglu_limit if args.shared_clamp else 0)
        self.load = None                                 # tokens per expert in the last call

    def forward(self, x, input_ids):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        weights, indices = self.gate(x, input_ids.reshape(-1))
        self.load = torch.bincount(indices.flatten(), minlength=self.args.n_routed_experts)
        y = torch.zeros_like(x)
        for i, expert in enumerate(self.experts):
            idx, top = torch.where(indices == i)
            if idx.numel():
                y = y.index_add(0, idx, expert(x[idx], weights[idx, top, None]))
        y = y + self.shared_experts(x)
        return y.view(shape)


def hc_split_sinkhorn(mixes, scale, base, hc, iters, eps):
    """pre/post weights and the Sinkhorn-normalised comb matrix of mHC (§2.6), all f32."""
    pre = torch.sigmoid(mixes[..., :hc] * scale[0] + base[:hc]) + eps
    post = 2 * torch.sigmoid(mixes[..., hc:2 * hc] * scale[1] + base[hc:2 * hc])
    comb = mixes[..., 2 * hc:].unflatten(-1, (hc, hc)) * scale[2] + base[2 * hc:].view(hc, hc)
    comb = comb.softmax(-1) + eps
    comb = comb / (comb.sum(-2, keepdim=True) + eps)
    for _ in range(iters - 1):
        comb = comb / (comb.sum(-1, keepdim=True) + eps)
        comb = comb / (comb.sum(-2, keepdim=True) + eps)
    return pre, post, comb


class Block(nn.Module):
    """mirrors Block: attention and MoE sub-layers, each wrapped in hc_pre / hc_post."""
    def __init__(self, layer_id, args):
        super().__init__()
        self.args, self.layer_id = args, layer_id
        self.attn = Attention(layer_id, args)
        self.ffn = MoE(layer_id, args)
        self.attn_norm = RMSNorm(args, args.dim)
        self.ffn_norm = RMSNorm(args, args.dim)
        hc, mix = args.hc_mult, (2 + args.hc_mult) * args.hc_mult
        for n in ("attn", "ffn"):
            setattr(self, f"hc_{n}_fn", nn.Parameter(torch.empty(mix, hc * args.dim)))
            setattr(self, f"hc_{n}_base", nn.Parameter(torch.zeros(mix)))
            setattr(self, f"hc_{n}_scale", nn.Parameter(torch.ones(3)))

    def hc_pre(self, x, fn, scale, base):
        # x [B, T, hc, D] -> y [B, T, D], post [B, T, hc], comb [B, T, hc, hc]
        xf = x.flatten(2)
        mixes = linear(xf, fn) * torch.rsqrt(xf.square().mean(-1, keepdim=True) + self.args.norm_eps)
        pre, post, comb = hc_split_sinkhorn(mixes, scale, base, self.args.hc_mult,
                                            self.args.hc_sinkhorn_iters, self.args.hc_eps)
        return (pre.unsqueeze(-1) * x).sum(2), post, comb

    @staticmethod
    def hc_post(y, residual, post, comb):
        # new stream k = post[k] * y + sum_j comb[j, k] * residual[j]
        return post.unsqueeze(-1) * y.unsqueeze(-2) + (comb.unsqueeze(-1) * residual.unsqueeze(-2)).sum(2)

    def forward(self, x, input_ids, attn_fn):
        """attn_fn(normed [B, T, D]) -> (out, info): prefill or decode attention, chosen by the caller."""
        y, post, comb = self.hc_pre(x, self.hc_attn_fn, self.hc_attn_scale, self.hc_attn_base)
        y, info = attn_fn(self.attn_norm(y))
        x = self.hc_post(y, x, post, comb)
        y, post, comb = self.hc_pre(x, self.hc_ffn_fn, self.hc_ffn_scale, self.hc_ffn_base)
        x = self.hc_post(self.ffn(self.ffn_norm(y), input_ids), x, post, comb)
        return x, info


def hc_head(x, fn, scale, base, args):
    """mirrors ParallelHead.hc_head: one pre-weighted sum of the streams, no Sinkhorn."""
    xf = x.flatten(2)
    mixes = linear(xf, fn) * torch.rsqrt(xf.square().mean(-1, keepdim=True) + args.norm_eps)
    pre = torch.sigmoid(mixes * scale + base) + args.hc_eps
    return (pre.unsqueeze(-1) * x).sum(2)


class MTPBlock(Block):
    """mirrors MTPBlock: X_in[k] = e_proj(enorm(embed(next id))) + h_proj(hnorm(X_main[k])) (§2.8)."""
    def __init__(self, layer_id, args):
        super().__init__(layer_id, args)
        self.e_proj = Linear(args, args.dim, args.dim)
        self.h_proj = Linear(args, args.dim, args.dim)
        self.enorm = RMSNorm(args, args.dim)
        self.hnorm = RMSNorm(args, args.dim)
        self.norm = RMSNorm(args, args.dim)
        self.hc_head_fn = nn.Parameter(torch.empty(args.hc_mult, args.hc_mult * args.dim))
        self.hc_head_base = nn.Parameter(torch.zeros(args.hc_mult))
        self.hc_head_scale = nn.Parameter(torch.ones(1))

    def mtp_in(self, emb, x):
        return self.e_proj(self.enorm(emb)).unsqueeze(2) + self.h_proj(self.hnorm(x))

    def head_in(self, x):
        return self.norm(hc_head(x, self.hc_head_fn, self.hc_head_scale, self.hc_head_base, self.args))


class Transformer(nn.Module):
    """embed -> 4 streams -> blocks -> hc_head -> norm -> head; plus the MTP block(s)."""
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        assert len(args.compress_ratios) >= args.n_layers + args.n_mtp_layers
        self.embed = nn.Module()
        self.embed.weight = nn.Parameter(torch.empty(args.vocab_size, args.dim))
        self.layers = nn.ModuleList([Block(i, args) for i in range(args.n_layers)])
        self.norm = RMSNorm(args, args.dim)
        self.head = nn.Module()
        self.head.weight = nn.Parameter(torch.empty(args.vocab_size, args.dim))
        self.hc_head_fn = nn.Parameter(torch.empty(args.hc_mult, args.hc_mult * args.dim))
        self.hc_head_base = nn.Parameter(torch.zeros(args.hc_mult))
        self.hc_head_scale = nn.Parameter(torch.ones(1))
        self.mtp = nn.ModuleList([MTPBlock(args.n_layers + i, args) for i in range(args.n_mtp_layers)])
        rope = (args.rope_head_dim, args.max_seq_len)
        yarn = (args.rope_factor, args.beta_fast, args.beta_slow)
        self.freqs_win = precompute_freqs_cis(*rope, 0, args.rope_theta, *yarn)      # ratio-0 layers
        self.freqs_cmp = precompute_freqs_cis(*rope, args.original_seq_len, args.compress_rope_theta, *yarn)
        tag_kinds(self)

    def freqs(self, layer_id):
        return self.freqs_cmp if self.args.compress_ratios[layer_id] else self.freqs_win

    def embed_ids(self, ids):
        return F.embedding(ids, qw(self.embed.weight, self.args))

    def logits(self, h):
        return linear(h, qw(self.head.weight, self.args))

    def prefill(self, ids, caches=None, dense_index=False, keep_hidden=()):
        """ids [B, T] from position 0 -> dict(logits [B,T,V], x: final streams [B,T,hc,D],
        info: per-layer attention info, hidden: {layer: streams after it} for keep_hidden)."""
        x = self.embed_ids(ids).unsqueeze(2).repeat(1, 1, self.args.hc_mult, 1)
        infos, hidden = [], {}
        for i, layer in enumerate(self.layers):
            cos, sin = self.freqs(i)
            cache = caches[i] if caches is not None else None
            x, info = layer(x, ids, lambda h: layer.attn.prefill(h, cos, sin, cache, dense_index))
            infos.append(info)
            if i in keep_hidden:
                hidden[i] = x
        h = self.norm(hc_head(x, self.hc_head_fn, self.hc_head_scale, self.hc_head_base, self.args))
        return {"logits": self.logits(h), "x": x, "info": infos, "hidden": hidden}

    def mtp_prefill(self, x_main, next_ids, cache=None):
        """MTP logits for positions 0..T-1: x_main [B,T,hc,D] (main streams), next_ids [B,T] = token t+1."""
        m = self.mtp[0]
        cos, sin = self.freqs(m.layer_id)
        x = m.mtp_in(self.embed_ids(next_ids), x_main)
        x, _ = m(x, next_ids, lambda h: m.attn.prefill(h, cos, sin, cache))
        return self.logits(m.head_in(x))

    @torch.no_grad()
    def decode(self, token, t, caches, keep_hidden=()):
        """one token id at position t -> (logits [V], final streams [1,1,hc,D], infos, hidden)."""
        ids = torch.tensor([[token]])
        x = self.embed_ids(ids).unsqueeze(2).repeat(1, 1, self.args.hc_mult, 1)
        infos, hidden = [], {}
        for i, layer in enumerate(self.layers):
            cos, sin = self.freqs(i)
            x, info = layer(x, ids, lambda h: layer.attn.decode(h, t, caches[i], cos, sin))
            infos.append(info)
            if i in keep_hidden:
                hidden[i] = x
        h = self.norm(hc_head(x, self.hc_head_fn, self.hc_head_scale, self.hc_head_base, self.args))
        return self.logits(h)[0, 0], x, infos, hidden

    @torch.no_grad()
    def mtp_decode(self, x_main, next_token, t, cache):
        m = self.mtp[0]
        cos, sin = self.freqs(m.layer_id)
        ids = torch.tensor([[next_token]])
        x = m.mtp_in(self.embed_ids(ids), x_main)
        x, _ = m(x, ids, lambda h: m.attn.decode(h, t, cache, cos, sin))
        return self.logits(m.head_in(x))[0, 0]

    def new_caches(self):
        return [layer.attn.new_cache() for layer in self.layers]

    def new_mtp_cache(self):
        return self.mtp[0].attn.new_cache()
