"""Shared pieces of the DeepSeek-V4 reference: ModelArgs (official names), weight kinds and their
quantization-aware view, RMSNorm, RoPE with YaRN (docs/deepseek-v4.md §1.2, §2.0, §2.A, §2.B)."""
import math
from dataclasses import dataclass, field
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

import fp_emul


@dataclass
class ModelArgs:
    """Field names follow the official ModelArgs; from_hf() maps the HF config.json names."""
    vocab_size: int = 512
    dim: int = 256
    moe_inter_dim: int = 256
    n_layers: int = 6
    n_hash_layers: int = 2
    n_mtp_layers: int = 1
    n_heads: int = 4
    n_routed_experts: int = 8
    n_shared_experts: int = 1
    n_activated_experts: int = 2
    score_func: str = "sqrtsoftplus"
    route_scale: float = 1.5
    swiglu_limit: float = 10.0
    q_lora_rank: int = 128
    head_dim: int = 128
    rope_head_dim: int = 64
    norm_eps: float = 1e-6
    o_groups: int = 2
    o_lora_rank: int = 128
    window_size: int = 128
    compress_ratios: Tuple[int, ...] = (0, 0, 4, 128, 4, 128, 0)
    compress_rope_theta: float = 160000.0
    original_seq_len: int = 65536
    rope_theta: float = 10000.0
    rope_factor: float = 16.0
    beta_fast: int = 32
    beta_slow: int = 1
    index_n_heads: int = 4
    index_head_dim: int = 128
    index_topk: int = 16
    hc_mult: int = 4
    hc_sinkhorn_iters: int = 20
    hc_eps: float = 1e-6
    max_seq_len: int = 4096          # rope table length (positions 0..max_seq_len-1)
    # frugal reference options (§2.B)
    shared_clamp: bool = True        # clamp the shared expert like the routed ones (current upstream)
    qat: bool = False                # use the quantized value of every weight (straight-through grads)
    act_quant: bool = False          # deployed numerics: FP8/FP4 linears take act_quant(x, 128) inputs (§2.A)

    @staticmethod
    def from_hf(cfg, max_seq_len=4096, **kw):
        rs = cfg.get("rope_scaling") or {}
        return ModelArgs(
            vocab_size=cfg["vocab_size"], dim=cfg["hidden_size"], moe_inter_dim=cfg["moe_intermediate_size"],
            n_layers=cfg["num_hidden_layers"], n_hash_layers=cfg.get("num_hash_layers", 0),
            n_mtp_layers=cfg.get("num_nextn_predict_layers", 0), n_heads=cfg["num_attention_heads"],
            n_routed_experts=cfg["n_routed_experts"], n_shared_experts=cfg["n_shared_experts"],
            n_activated_experts=cfg["num_experts_per_tok"], score_func=cfg["scoring_func"],
            route_scale=cfg["routed_scaling_factor"], swiglu_limit=cfg.get("swiglu_limit", 0.0),
            q_lora_rank=cfg["q_lora_rank"], head_dim=cfg["head_dim"], rope_head_dim=cfg["qk_rope_head_dim"],
            norm_eps=cfg["rms_norm_eps"], o_groups=cfg["o_groups"], o_lora_rank=cfg["o_lora_rank"],
            window_size=cfg["sliding_window"], compress_ratios=tuple(cfg["compress_ratios"]),
            compress_rope_theta=cfg["compress_rope_theta"], rope_theta=cfg["rope_theta"],
            original_seq_len=rs.get("original_max_position_embeddings", 0), rope_factor=rs.get("factor", 1),
            beta_fast=rs.get("beta_fast", 32), beta_slow=rs.get("beta_slow", 1),
            index_n_heads=cfg["index_n_heads"], index_head_dim=cfg["index_head_dim"],
            index_topk=cfg["index_topk"], hc_mult=cfg["hc_mult"], hc_sinkhorn_iters=cfg["hc_sinkhorn_iters"],
            hc_eps=cfg.get("hc_eps", 1e-6), max_seq_len=max_seq_len, **kw)


FP8_LINEARS = ("attn.wq_a.", "attn.wq_b.", "attn.wkv.", "attn.wo_a.", "attn.wo_b.", "indexer.wq_b.",
               "shared_experts.w1.", "shared_experts.w2.", "shared_experts.w3.", "e_proj.", "h_proj.")


def weight_kind(name):
    """Storage format of a tensor in the official checkpoint (§4.1): FP8, FP4, F32, BF16 or I64."""
    if name.endswith("tid2eid"):
        return "I64"
    if ".experts." in name and ".shared_experts." not in name:
        return "FP4"
    if name.endswith(".weight") and any(k in name for k in FP8_LINEARS):
        return "FP8"
    if "hc_" in name or name.endswith("attn_sink") or name.endswith(".ape") or name.endswith("gate.bias"):
        return "F32"
    return "BF16"


def tag_kinds(model):
    for name, p in model.named_parameters():
        p.qkind = weight_kind(name)


def qw(p, args):
    """The value a weight has once stored in the official format; gradients pass straight through."""
    if not args.qat:
        return p
    k = getattr(p, "qkind", "F32")
    if k == "FP8":
        return fp_emul.ste(p, fp_emul.fake_fp8_weight(p))
    if k == "FP4":
        return fp_emul.ste(p, fp_emul.fake_fp4_weight(p))
    if k == "BF16":
        return fp_emul.ste(p, fp_emul.fake_bf16(p))
    return p


class Linear(nn.Module):
    """y = x W^T with W held in f32; the official dtype only matters through qw(). The .float() keeps
    everything after a matmul in f32 when training runs the matmuls under bf16 autocast."""
    def __init__(self, args, in_features, out_features):
        super().__init__()
        self.args = args
        self.weight = nn.Parameter(torch.empty(out_features, in_features))

    def forward(self, x):
        if self.args.act_quant and getattr(self.weight, "qkind", None) in ("FP8", "FP4"):
            # linear() of the official model.py: act_quant(x, 128, "ue8m0") before fp8_gemm / fp4_gemm.
            # e4m3 x e4m3 (or x e2m1) products are exact in f32, so an f32 matmul of the rounded x
            # multiplies the same values; only the summation order differs from the GPU kernels.
            x = fp_emul.act_quant_sim(x, 128)
        return linear(x, qw(self.weight, self.args))


def linear(x, w):
    """F.linear, but f32 inference goes through oneDNN: Debian's torch has a generic (slow) f32 BLAS.
    Same f32 products, a different summation order."""
    if torch.is_grad_enabled() or torch.is_autocast_cpu_enabled() or x.dtype != torch.float32 or x.numel() < 4096:
        return F.linear(x, w).float()
    y = torch._C._nn.mkldnn_linear(x.reshape(-1, x.size(-1)).contiguous().to_mkldnn(), w.contiguous().to_mkldnn())
    return y.to_dense().view(*x.shape[:-1], w.size(0))


class RMSNorm(nn.Module):
    """official RMSNorm, in f32 (§2 notation)."""
    def __init__(self, args, dim):
        super().__init__()
        self.args, self.eps = args, args.norm_eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return qw(self.weight, self.args) * (x * torch.rsqrt(x.square().mean(-1, keepdim=True) + self.eps))


def precompute_freqs_cis(dim, seqlen, original_seq_len, base, factor, beta_fast, beta_slow):
    """-> (cos, sin) f32 [seqlen, dim/2]; YaRN when original_seq_len > 0 (§2.0, official formula)."""
    def corr_dim(n_rot):
        return dim * math.log(original_seq_len / (n_rot * 2 * math.pi)) / (2 * math.log(base))
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    if original_seq_len > 0:
        low = max(math.floor(corr_dim(beta_fast)), 0)
        high = min(math.ceil(corr_dim(beta_slow)), dim - 1)
        if low == high:
            high += 0.001
        ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
        smooth = 1 - ramp
        freqs = freqs / factor * (1 - smooth) + freqs * smooth
    ang = torch.outer(torch.arange(seqlen), freqs)
    fc = torch.polar(torch.ones_like(ang), ang)
    return fc.real.contiguous(), fc.imag.contiguous()


def apply_rotary_emb(x, cos, sin, inverse=False):
    """Interleaved (GPT-J) rotation of the whole last dim of x; cos/sin [T, d/2] broadcast over the
    dims between T and the last one (x: [..., T, d] or [..., T, H, d])."""
    if x.dim() - cos.dim() == 2 or (x.dim() == 4 and cos.dim() == 2):
        cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)
    if inverse:
        sin = -sin
    xr, xi = x[..., 0::2], x[..., 1::2]
    return torch.stack([xr * cos - xi * sin, xr * sin + xi * cos], -1).flatten(-2)


def rope_last(x, cos, sin, rd, inverse=False):
    """RoPE on the last rd dims only (§2.0: rope slice = last qk_rope_head_dim dims)."""
    return torch.cat([x[..., :-rd], apply_rotary_emb(x[..., -rd:], cos, sin, inverse)], -1)
