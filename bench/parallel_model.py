#!/usr/bin/env python3
"""Decode and prefill speed of a parallel frugal run (docs/PARALLEL.md), predicted from bytes.

The weights and the exchanged bytes come from the model's config through `frugal mem
--config-only --json` (decode weight bytes per token, routed-expert bytes) and from the exchange
rules of src/parallel/mpi_exchange.cpp, which `frugal bench` under mpirun measures:

  expert parallel (E processes per stage), per token and MoE layer: each process receives the rows
    of the experts it does not hold, n_activated_experts x dim x 4 bytes x (E - 1) / E on average,
    in one in-place allgather over the stage;
  pipeline (S stages), per token and stage boundary: hc_mult x dim x 4 bytes, point to point;
  outputs: the last stage's logits (vocab x 4 bytes per decode step) broadcast to every process.

A node runs its share at the single-node rates measured by `frugal bench` on one machine: decode
reads weights at NODE_GBPS (achieved decode weight GB/s), prefill runs matmuls at NODE_GFLOPS
(achieved prefill GFLOP/s). Decode of one stream (a step waits for every expert):

  t = (dense bytes + L x Emax x expert bytes) / node_gbps  +  L x (lat + gather bytes / link)
      + (S - 1) x (lat + stream bytes / link)  +  lat + logits bytes / link

where dense bytes are what every process of a stage reads (each runs the attention, the shared
expert, the router and the head on the same rows; with S stages a stage reads 1/S of the blocks but
the stages run one after the other for one token) and Emax is the expected largest number of a
token's n_activated_experts held by one process (uniform routing, computed exactly by enumeration
over a Monte Carlo sample). Prefill (long prompts, spans pipelined through the stages):

  t/token = [(dense flops / S + expert flops / (E x S)) / node_gflops  +  L/S x gather bytes / link
             + stream bytes / link] x (spans + S - 1) / spans

for a prompt of `spans` spans of 2,048 tokens (--prompt, default 8,192: the stages fill and drain).

Latency `lat` per collective: --latency-us (default 10 us: RDMA-class links; TCP is 20-50 us).

  bench/parallel_model.py FRUGAL_BIN --node-gbps G --node-gflops F [--markdown]
"""
import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {
    "V4-Flash": ROOT / "tests/fixtures/configs/deepseek-v4-flash.json",
    "V4-Pro": ROOT / "tests/fixtures/configs/deepseek-v4-pro.json",
}


def mem_json(frugal, config):
    out = subprocess.run([frugal, "mem", "-m", str(config), "--config-only", "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def expected_max_share(n_experts, topk, ranks, samples=20000, seed=1):
    """E[max over processes of the token's experts each holds], uniform routing."""
    if ranks == 1:
        return float(topk)
    rng = random.Random(seed)
    bounds = [i * n_experts // ranks for i in range(ranks + 1)]
    owner = [0] * n_experts
    for r in range(ranks):
        for e in range(bounds[r], bounds[r + 1]):
            owner[e] = r
    total = 0
    for _ in range(samples):
        counts = [0] * ranks
        for e in rng.sample(range(n_experts), topk):
            counts[owner[e]] += 1
        total += max(counts)
    return total / samples


def model(cfg, mem, nodes, stages, link_gbps, node_gbps, node_gflops, lat_s, prompt=8192,
          span=2048):
    dim, L = cfg["hidden_size"], cfg["num_hidden_layers"]
    topk, n_exp = cfg["num_experts_per_tok"], cfg["n_routed_experts"]
    inter, hc, vocab = cfg["moe_intermediate_size"], cfg.get("hc_mult", 4), cfg["vocab_size"]
    E = nodes // stages
    link = link_gbps * 1e9 / 8  # bytes/s
    expert_bytes = mem["weights_by_kind"]["routed_experts"] / (L * n_exp)
    decode_bytes = mem["decode_weight_bytes_per_token"]
    dense = decode_bytes - L * topk * expert_bytes
    emax = expected_max_share(n_exp, topk, E)
    gather = topk * dim * 4 * (E - 1) / E if E > 1 else 0.0
    stream = hc * dim * 4
    logits = vocab * 4
    comm = L * ((lat_s + gather / link) if E > 1 else 0.0)
    comm += (stages - 1) * (lat_s + stream / link)
    if nodes > 1:
        comm += lat_s + logits / link
    t_dec = (dense + L * emax * expert_bytes) / (node_gbps * 1e9) + comm
    # prefill: matmul flops per token (2 per multiply-add), experts split over E, blocks over S
    expert_flops = L * topk * 3 * 2 * dim * inter
    dense_flops = mem["prefill_matmul_flops_per_token"] - expert_flops
    t_pre = (dense_flops / stages + expert_flops / (E * stages)) / (node_gflops * 1e9)
    t_pre += (L / stages) * gather / link + (stream / link if stages > 1 else 0.0)
    # the pipeline's fill and drain: a prompt of `spans` spans takes spans + S - 1 span steps
    spans = -(-prompt // span)
    t_pre *= (spans + stages - 1) / spans
    return {"decode_tps": 1 / t_dec, "prefill_tps": 1 / t_pre, "decode_comm_share": comm / t_dec,
            "emax": emax, "gather_bytes": gather}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("frugal")
    ap.add_argument("--node-gbps", type=float, required=True)
    ap.add_argument("--node-gflops", type=float, required=True)
    ap.add_argument("--latency-us", type=float, default=10.0)
    ap.add_argument("--prompt", type=int, default=8192)
    args = ap.parse_args()
    print(f"node: decode reads weights at {args.node_gbps:.1f} GB/s, prefill matmuls at "
          f"{args.node_gflops:.0f} GFLOP/s; {args.latency_us:.0f} us per collective; prefill of "
          f"{args.prompt} tokens\n")
    print("| model | nodes | layout | link | decode tok/s (x 1 node) | decode time in MPI "
          "| prefill tok/s (x 1 node) |")
    print("|---|---|---|---|---|---|---|")
    for name, path in CONFIGS.items():
        cfg = json.loads(path.read_text())
        mem = mem_json(args.frugal, path)
        one = model(cfg, mem, 1, 1, 100, args.node_gbps, args.node_gflops, args.latency_us * 1e-6,
                    args.prompt)
        for nodes in (2, 4, 8):
            for stages, layout in ((1, f"{nodes} expert ranks"), (2, f"2 stages x {nodes // 2}")):
                for link in (25, 100, 400):
                    r = model(cfg, mem, nodes, stages, link, args.node_gbps, args.node_gflops,
                              args.latency_us * 1e-6, args.prompt)
                    print(f"| {name} | {nodes} | {layout} | {link} Gb/s | "
                          f"{r['decode_tps']:.2f} ({r['decode_tps'] / one['decode_tps']:.2f}x) | "
                          f"{100 * r['decode_comm_share']:.0f} % | "
                          f"{r['prefill_tps']:.1f} ({r['prefill_tps'] / one['prefill_tps']:.2f}x) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
