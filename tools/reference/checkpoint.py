"""Read and write DeepSeek-V4 checkpoints in the official HF layout (docs/deepseek-v4.md §4.1):
config.json + model.safetensors, FP8 e4m3 weights with e8m0 scales per 128x128 block, routed experts
as FP4 e2m1 packed in I8 with e8m0 scales per 1x32, bf16 / f32 elsewhere, tid2eid as I64.
Weights are dequantized exactly into f32 (§2.B)."""
import json
import os
import struct

import numpy as np
import torch

import fp_emul
from common import ModelArgs, weight_kind
from model import Transformer

NP = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32, "I8": np.int8,
      "U8": np.uint8, "F8_E4M3": np.uint8, "F8_E8M0": np.uint8, "BF16": np.uint16}


def st_read(path):
    """-> {name: (dtype, np array of the raw element type)}"""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        arr = np.frombuffer(data[a:b], NP[v["dtype"]]).reshape(v["shape"])
        out[k] = (v["dtype"], arr)
    return out


def st_write(path, tensors):
    """tensors: {name: (dtype, np array)}; names sorted, header padded to 8 bytes."""
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        dt, arr = tensors[k]
        b = np.ascontiguousarray(arr).tobytes()
        header[k] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def bf16_to_f32(u16):
    return torch.from_numpy((u16.astype(np.uint32) << 16).view(np.float32).copy())


def f32_to_bf16(t):
    """RNE, as torch's own cast."""
    return t.float().bfloat16().view(torch.int16).numpy().view(np.uint16)


def dequant(name, ck):
    dt, raw = ck[name]
    if dt == "BF16":
        return bf16_to_f32(raw)
    if dt == "F32":
        return torch.from_numpy(np.array(raw, np.float32))
    if dt == "I64":
        return torch.from_numpy(np.array(raw, np.int64))
    sname = name[:-len("weight")] + "scale"
    if sname not in ck or ck[sname][0] != "F8_E8M0":
        raise ValueError(f"{name}: {dt} weight needs an F8_E8M0 tensor {sname}")
    if dt == "F8_E4M3":
        return fp_emul.dequant_fp8_weight(raw, ck[sname][1])
    if dt == "I8":
        return fp_emul.dequant_fp4_weight(raw, ck[sname][1])
    raise ValueError(f"{name}: unsupported dtype {dt}")


def load(ckpt_dir, max_seq_len=4096, **kw):
    """-> (Transformer with exactly dequantized weights, HF config dict)"""
    cfg = json.load(open(os.path.join(ckpt_dir, "config.json")))
    args = ModelArgs.from_hf(cfg, max_seq_len=max_seq_len, **kw)
    model = Transformer(args)
    ck = st_read(os.path.join(ckpt_dir, "model.safetensors"))
    sd = model.state_dict()
    missing = [k for k in sd if k not in ck]
    if missing:
        raise ValueError(f"{ckpt_dir}: checkpoint lacks {len(missing)} tensors, e.g. {missing[:4]}")
    with torch.no_grad():
        for name, p in sd.items():
            v = dequant(name, ck)
            if tuple(v.shape) != tuple(p.shape):
                raise ValueError(f"{name}: shape {tuple(v.shape)}, expected {tuple(p.shape)}")
            p.copy_(v.to(p.dtype))
    return model.eval(), cfg


def export_tensors(model):
    """model (f32 master weights) -> {name: (dtype, np array)} in the official layout."""
    out = {}
    with torch.no_grad():
        for name, p in model.state_dict().items():
            k = weight_kind(name)
            if k == "I64":
                out[name] = ("I64", p.long().numpy())
            elif k == "FP8":
                q, s = fp_emul.quant_fp8_weight(p)
                out[name] = ("F8_E4M3", q)
                out[name[:-len("weight")] + "scale"] = ("F8_E8M0", s)
            elif k == "FP4":
                q, s = fp_emul.quant_fp4_weight(p)
                out[name] = ("I8", q)
                out[name[:-len("weight")] + "scale"] = ("F8_E8M0", s)
            elif k == "F32":
                out[name] = ("F32", p.float().numpy())
            else:
                out[name] = ("BF16", f32_to_bf16(p))
    return out
