#!/usr/bin/env python3
"""Summary of a bench/prefill_ab.sh log: per prompt length and variant, the median prefill tok/s,
its ratio to the first variant, the runs, and the fraction of the same-run FMA (and, with
--act-quant, bf16 dot-product) peak."""
import json
import statistics as st
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
variants, cases = [], []
for r in rows:
    if r["variant"] not in variants:
        variants.append(r["variant"])
    if r["case"] not in cases:
        cases.append(r["case"])
for case in cases:
    print(f"== prompt {case}")
    base = None
    for v in variants:
        rs = [r["result"] for r in rows if r["variant"] == v and r["case"] == case and r["result"]]
        if not rs:
            continue
        tps = [x["prefill_tokens_per_s"] for x in rs]
        med = st.median(tps)
        base = base or med
        fma = st.median(x["prefill_fraction_of_fma_peak"] for x in rs)
        dot = [x["prefill_fraction_of_bf16_dot_peak"] for x in rs
               if x.get("prefill_fraction_of_bf16_dot_peak")]
        extra = f", of bf16-dot peak {st.median(dot):.1%}" if dot else ""
        runs = ", ".join(f"{a:.1f}" for a in tps)
        print(f"  {v:8s} median {med:7.1f} tok/s  x{med / base:.3f}  ({runs}); "
              f"of FMA peak {fma:.1%}{extra}")
