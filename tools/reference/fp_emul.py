"""Exact FP8 e4m3 / FP4 e2m1 / e8m0 emulation for torch 1.13 (no float8 dtypes).

All rounding is round-to-nearest-even on the target grid, computed with power-of-two quanta so every
step is exact in f32 (docs/deepseek-v4.md §2.A). Scales are powers of two, derived from the f32 bits of
`amax * fl32(1/MAX)` with frexp (the kernel's "exponent - 127, +1 if any mantissa bit" rule), never from
log2(), which can round a value just above a power of two down to it.

Also: STE (straight-through) wrappers used for quantization-aware training, and the weight codecs used
to read/write the official checkpoint layout (§2.B, §4.1).
"""
import numpy as np
import torch

FP8_MAX, FP4_MAX = 448.0, 6.0
INV_FP8_MAX = float(np.float32(1.0) / np.float32(448.0))   # fl32(1/448)
INV_FP4_MAX = float(np.float32(1.0) / np.float32(6.0))     # fl32(1/6)


def pow2_ceil(x):
    """2^ceil(log2(x)) for positive f32 x, exact: x = m * 2^e with m in [0.5, 1)."""
    m, e = torch.frexp(x)
    e = torch.where(m == 0.5, e - 1, e)
    return torch.ldexp(torch.ones_like(x), e)


def round_e4m3(x):
    """Round f32 values (|x| <= 448 after scaling) to the e4m3fn grid, RNE, saturating at 448."""
    a = x.abs().clamp(max=FP8_MAX)
    _, e = torch.frexp(a)                        # a = m * 2^e, m in [0.5,1) -> floor(log2 a) = e - 1
    e = (e - 1).clamp(min=-6)                    # subnormals share the 2^-6 binade's quantum
    q = torch.ldexp(torch.ones_like(a), e - 3)   # 3 mantissa bits
    return torch.copysign(torch.round(a / q) * q, x)


def round_e2m1(x):
    """Round f32 values (|x| <= 6 after scaling) to the e2m1 grid {0,.5,1,1.5,2,3,4,6}, RNE."""
    a = x.abs().clamp(max=FP4_MAX)
    _, e = torch.frexp(a)
    e = (e - 1).clamp(min=0)                     # below 1: subnormal quantum 0.5
    q = torch.ldexp(torch.ones_like(a), e - 1)   # 1 mantissa bit
    return torch.copysign(torch.round(a / q) * q, x)


def act_quant_sim(x, block):
    """FP8 simulation of `act_quant(x, block, "ue8m0", ..., inplace=True)` on f32 values (§2.A)."""
    xb = x.float().unflatten(-1, (-1, block))
    amax = xb.abs().amax(-1, keepdim=True).clamp_min(1e-4)
    s = pow2_ceil(amax * INV_FP8_MAX)
    return (round_e4m3((xb / s).clamp(-FP8_MAX, FP8_MAX)) * s).flatten(-2)


def fp4_act_quant_sim(x, block=32):
    """FP4 simulation of `fp4_act_quant(x, 32, inplace=True)` on f32 values (§2.A)."""
    xb = x.float().unflatten(-1, (-1, block))
    amax = xb.abs().amax(-1, keepdim=True).clamp_min(FP4_MAX * 2.0 ** -126)
    s = pow2_ceil(amax * INV_FP4_MAX)
    return (round_e2m1((xb / s).clamp(-FP4_MAX, FP4_MAX)) * s).flatten(-2)


def ste(x, q):
    """Forward q, backward identity (straight-through estimator)."""
    return x + (q - x).detach()


# ---- weights: official block formats (§2.A, §4.1) ----

def fp8_block_scales(w):
    """w [r, c] f32 -> power-of-two scales [ceil(r/128), ceil(c/128)] and the padded view."""
    r, c = w.shape
    R, C = -(-r // 128), -(-c // 128)
    pad = w.new_zeros(R * 128, C * 128)
    pad[:r, :c] = w
    blk = pad.view(R, 128, C, 128)
    amax = blk.abs().amax(dim=(1, 3)).clamp_min(1e-30)
    return pow2_ceil(amax * INV_FP8_MAX), blk


def fake_fp8_weight(w):
    """Dequantized value of w stored as e4m3 with e8m0 scales per 128x128 block."""
    r, c = w.shape
    s, blk = fp8_block_scales(w.float())
    q = round_e4m3(blk / s[:, None, :, None]) * s[:, None, :, None]
    return q.reshape(blk.shape[0] * 128, -1)[:r, :c]


def fake_fp4_weight(w):
    """Dequantized value of w stored as e2m1 with e8m0 scales per 1x32 block (along the input dim)."""
    r, c = w.shape
    blk = w.float().view(r, c // 32, 32)
    s = pow2_ceil(blk.abs().amax(-1, keepdim=True).clamp_min(1e-30) * INV_FP4_MAX)
    return (round_e2m1(blk / s) * s).view(r, c)


def fake_bf16(w):
    return w.bfloat16().float()


E4M3_TABLE = None


def _e4m3_table():
    global E4M3_TABLE
    if E4M3_TABLE is None:
        v = np.zeros(256, np.float32)
        for c in range(256):
            e, m = (c >> 3) & 0xF, c & 7
            mag = (m / 8.0) * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7)
            v[c] = np.nan if (e == 15 and m == 7) else (-mag if c & 0x80 else mag)
        E4M3_TABLE = v
    return E4M3_TABLE


E2M1_TABLE = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], np.float32)


def e8m0_decode(codes):
    codes = np.asarray(codes).astype(np.int32)
    if (codes == 255).any():
        raise ValueError("e8m0 scale byte 255 (NaN)")
    return np.ldexp(np.float32(1.0), codes - 127).astype(np.float32)


def e8m0_encode(s):
    """power-of-two f32 scales -> e8m0 codes (exact)."""
    m, e = np.frexp(np.asarray(s, np.float32))
    assert np.all(m == 0.5), "scale is not a power of two"
    return (e - 1 + 127).clip(0, 254).astype(np.uint8)


def e4m3_encode(v):
    """f32 values already on the e4m3 grid -> uint8 codes."""
    t = _e4m3_table()
    pos = t[:127]                                           # codes 0..126, increasing
    a = np.abs(v)
    idx = np.searchsorted(pos, a).clip(0, 126)
    assert np.array_equal(pos[idx], a), "value not on the e4m3 grid"
    return np.where(np.signbit(v) & (a > 0), idx | 0x80, idx).astype(np.uint8)


def e2m1_encode(v):
    pos = E2M1_TABLE[:8]
    a = np.abs(v)
    idx = np.searchsorted(pos, a).clip(0, 7)
    assert np.array_equal(pos[idx], a), "value not on the e2m1 grid"
    return np.where(np.signbit(v) & (a > 0), idx | 0x8, idx).astype(np.uint8)


def quant_fp8_weight(w):
    """f32 torch [r, c] -> (e4m3 codes uint8 [r, c], e8m0 codes uint8 [R, C])."""
    r, c = w.shape
    s, blk = fp8_block_scales(w.float())
    q = round_e4m3(blk / s[:, None, :, None]).reshape(s.shape[0] * 128, -1)[:r, :c]
    return e4m3_encode(q.numpy()), e8m0_encode(s.numpy())


def quant_fp4_weight(w):
    """f32 torch [r, c] -> (packed e2m1 int8 [r, c/2], low nibble = even element; e8m0 [r, c/32])."""
    r, c = w.shape
    blk = w.float().view(r, c // 32, 32)
    s = pow2_ceil(blk.abs().amax(-1, keepdim=True).clamp_min(1e-30) * INV_FP4_MAX)
    codes = e2m1_encode(round_e2m1(blk / s).view(r, c).numpy())
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8).view(np.int8)
    return packed, e8m0_encode(s.view(r, c // 32).numpy())


def dequant_fp8_weight(codes, scale_codes):
    w = _e4m3_table()[codes]
    if np.isnan(w).any():
        raise ValueError("e4m3 NaN code in weight")
    s = e8m0_decode(scale_codes)
    r, c = w.shape
    return torch.from_numpy((w * np.repeat(np.repeat(s, 128, 0), 128, 1)[:r, :c]).astype(np.float32))


def dequant_fp4_weight(packed, scale_codes):
    u = packed.view(np.uint8)
    w = np.stack([E2M1_TABLE[u & 0xF], E2M1_TABLE[u >> 4]], -1).reshape(u.shape[0], -1)
    return torch.from_numpy((w * np.repeat(e8m0_decode(scale_codes), 32, 1)).astype(np.float32))


def hadamard(x):
    """Sylvester Hadamard transform over the last dim, scaled by n^-0.5 (fast_hadamard_transform)."""
    n = x.size(-1)
    h = x.reshape(-1, n)
    k = 1
    while k < n:
        h = h.view(-1, n // (2 * k), 2, k)
        h = torch.cat([h[:, :, 0] + h[:, :, 1], h[:, :, 0] - h[:, :, 1]], dim=-1).view(-1, n)
        k *= 2
    return (h * n ** -0.5).view(x.shape)
