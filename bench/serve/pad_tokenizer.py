#!/usr/bin/env python3
"""Give a synthetic checkpoint (frugal synth) a tokenizer so that `frugal serve` can run it.

A synthetic V4-Flash checkpoint has random weights and no tokenizer; its 129,280-token vocabulary
is larger than any tokenizer shipped here. This copies a byte-level BPE tokenizer (by default the
shipped tiny model's) into the checkpoint directory and pads its vocabulary up to the config's
vocab_size with filler tokens " w<id>" (no merges produce them, so encoding is unchanged; decoding
any id the random model samples gives readable text). Special tokens keep their ids (BOS 0, EOS 1,
the chat markers), which the V4 configs share.

usage: /usr/bin/python3 bench/serve/pad_tokenizer.py CHECKPOINT_DIR [--from models/tiny-v4]
"""
import argparse
import json
import os
import shutil
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="directory with config.json (e.g. from frugal synth)")
    ap.add_argument("--from", dest="src", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                               "models", "tiny-v4"),
                    help="directory with the tokenizer.json to pad (default: models/tiny-v4)")
    a = ap.parse_args()
    with open(os.path.join(a.checkpoint, "config.json")) as f:
        vocab_size = int(json.load(f)["vocab_size"])
    with open(os.path.join(a.src, "tokenizer.json")) as f:
        tok = json.load(f)
    vocab = tok["model"]["vocab"]
    used = set(vocab.values()) | {t["id"] for t in tok.get("added_tokens", [])}
    if max(used) >= vocab_size:
        print(f"pad_tokenizer: {a.src} already has ids up to {max(used)} >= vocab_size {vocab_size}",
              file=sys.stderr)
        return 1
    added = 0
    for i in range(vocab_size):
        if i in used:
            continue
        name = f"\u0120w{i}"  # byte-level: U+0120 is the space byte
        if name in vocab:
            print(f"pad_tokenizer: {name!r} is already in the vocabulary", file=sys.stderr)
            return 1
        vocab[name] = i
        added += 1
    out = os.path.join(a.checkpoint, "tokenizer.json")
    tmp = out + f".tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(tok, f, ensure_ascii=False)
    os.replace(tmp, out)
    cfg = os.path.join(a.src, "tokenizer_config.json")
    if os.path.exists(cfg):
        shutil.copyfile(cfg, os.path.join(a.checkpoint, "tokenizer_config.json"))
    print(f"pad_tokenizer: {out}: {len(vocab) - added} tokens from {a.src} + {added} fillers "
          f"= {vocab_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
