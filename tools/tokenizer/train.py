"""Train the byte-level BPE tokenizer of models/tiny-v4 and write tokenizer.json + tokenizer_config.json.

Usage (from the repository root; one core, a few seconds):
    /usr/bin/python3 tools/tokenizer/train.py [--corpus ../shared/data/tinyshakespeare.txt]
                                              [--vocab-size 4096] [--out models/tiny-v4]

Training text: the first 90 % of the corpus, text[:int(0.9 * len(text))] counted in characters
(the corpus is ASCII, so also in bytes); the rest is held out for evaluation.

Algorithm: the training text is pre-tokenized with the DeepSeek-V3 family pre-tokenizer (bpe.py,
three Split regexes); identical pieces are counted once with their frequency. Starting from the 256
byte symbols, each step merges the adjacent pair with the highest total count (ties: the pair whose
(left, right) byte-level strings sort first), updating pair counts only in the pieces that contain
the merged pair. It stops when the vocabulary (special tokens + 256 bytes + merged tokens) reaches
--vocab-size, or when no pair occurs at least twice (then it fails: pick a smaller size).

Vocabulary layout: ids 0..len(SPECIALS)-1 are the special tokens (below), then the 256 byte tokens in
byte order, then merged tokens in merge order. The special tokens sit in model.vocab too (as in the
DeepSeek-V3 file, where ids 0-2 do), so the model vocabulary is exactly ids 0..vocab_size-1.
"""

import argparse
import heapq
import json
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402

import regex  # noqa: E402

# The DeepSeek-V3 family pre-tokenizer (docs/deepseek-v4.md §4.2; same strings as the Split patterns
# of DeepSeek-V3's tokenizer.json, whose "pre_tokenizer" is a Sequence of these three Splits with
# behavior "Isolated", invert false, followed by ByteLevel add_prefix_space false, use_regex false).
SPLIT_REGEXES = [
    r"\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^""" "\r\n" r"""\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"""
    r"""| ?[\p{P}\p{S}]+""" "[\r\n]*" r"""|\s*""" "[\r\n]+" r"""|\s+(?!\S)|\s+""",
]

# (content, special). Ids are the list positions. BOS 0 / EOS 1 as in DeepSeek's generation_config;
# the pad string is DeepSeek-V3's id-2 token. <think>/</think> are added but not "special" (so
# decode(skip_special) keeps them), as in the DeepSeek-R1/V3.1 files.
SPECIALS = [
    ("<｜begin▁of▁sentence｜>", True),
    ("<｜end▁of▁sentence｜>", True),
    ("<｜▁pad▁｜>", True),
    ("<｜User｜>", True),
    ("<｜Assistant｜>", True),
    ("<think>", False),
    ("</think>", False),
    ("<｜latest_reminder｜>", True),
    ("｜DSML｜", True),
    ("<｜action｜>", True),
    ("<｜query｜>", True),
    ("<｜authority｜>", True),
    ("<｜domain｜>", True),
    ("<｜title｜>", True),
    ("<｜extracted_url｜>", True),
    ("<｜read_url｜>", True),
]


def count_pieces(text):
    patterns = [regex.compile(p) for p in SPLIT_REGEXES]
    return Counter(p.encode("utf-8") for p in bpe.pretokenize(text, patterns))


def train(piece_counts, n_merges_max, vocab_budget):
    """Returns (merges as (left_str, right_str) list, token strings added in order)."""
    B = bpe.BYTE_TO_CHAR
    tok_str = [B[b] for b in range(256)]  # symbol id (local) -> byte-level string
    str_id = {s: i for i, s in enumerate(tok_str)}
    items = sorted(piece_counts.items())
    words = [[b for b in piece] for piece, _ in items]
    freqs = [c for _, c in items]

    pair_count = Counter()
    pair_where = {}
    for w, (syms, f) in enumerate(zip(words, freqs)):
        for a, b in zip(syms, syms[1:]):
            pair_count[(a, b)] += f
            pair_where.setdefault((a, b), set()).add(w)

    def key(pair):
        return (-pair_count[pair], tok_str[pair[0]], tok_str[pair[1]], pair)

    heap = [key(p) for p in pair_count]
    heapq.heapify(heap)
    merges, new_tokens = [], []
    while len(new_tokens) < vocab_budget and len(merges) < n_merges_max:
        best = None
        while heap:
            negc, _, _, pair = heapq.heappop(heap)
            if pair_count.get(pair, 0) == -negc and negc < 0:
                best = pair
                break
        if best is None or pair_count[best] < 2:
            raise SystemExit(f"train: ran out of pairs seen twice after {len(new_tokens)} new tokens; "
                             f"choose a smaller --vocab-size")
        a, b = best
        s = tok_str[a] + tok_str[b]
        if s in str_id:
            c = str_id[s]
        else:
            c = len(tok_str)
            tok_str.append(s)
            str_id[s] = c
            new_tokens.append(s)
        merges.append((tok_str[a], tok_str[b]))
        changed = set()
        for w in sorted(pair_where.pop(best, ())):
            syms, f = words[w], freqs[w]
            for p in zip(syms, syms[1:]):
                pair_count[p] -= f
                changed.add(p)
                if pair_count[p] == 0:
                    del pair_count[p]
            out = []
            j = 0
            while j < len(syms):
                if j + 1 < len(syms) and syms[j] == a and syms[j + 1] == b:
                    out.append(c)
                    j += 2
                else:
                    out.append(syms[j])
                    j += 1
            words[w] = out
            for p in zip(out, out[1:]):
                pair_count[p] += f
                changed.add(p)
                pair_where.setdefault(p, set()).add(w)
        for p in changed:
            if p in pair_count and p != best:
                heapq.heappush(heap, key(p))
            elif p not in pair_count:
                pair_where.pop(p, None)
        pair_count.pop(best, None)
    return merges, new_tokens


def build_json(merges, new_tokens):
    vocab = {}
    for i, (content, _) in enumerate(SPECIALS):
        vocab[content] = i
    for b in range(256):
        vocab[bpe.BYTE_TO_CHAR[b]] = len(vocab)
    for s in new_tokens:
        vocab[s] = len(vocab)
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": sp} for i, (c, sp) in enumerate(SPECIALS)]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": []},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [{"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated", "invert": False}
                              for r in SPLIT_REGEXES]
            + [{"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [f"{l} {r}" for l, r in merges],
        },
    }


def build_config():
    added = {str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": sp} for i, (c, sp) in enumerate(SPECIALS)}
    return {
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": added,
        "bos_token": SPECIALS[0][0],
        "clean_up_tokenization_spaces": False,
        "eos_token": SPECIALS[1][0],
        "legacy": True,
        "model_max_length": 1048576,
        "pad_token": SPECIALS[1][0],
        "unk_token": None,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default=os.path.join(root, "..", "shared", "data", "tinyshakespeare.txt"))
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--out", default=os.path.join(root, "models", "tiny-v4"))
    args = ap.parse_args()
    if args.vocab_size % 128 != 0:
        raise SystemExit(f"--vocab-size {args.vocab_size}: must be a multiple of 128")
    budget = args.vocab_size - len(SPECIALS) - 256
    if budget <= 0:
        raise SystemExit(f"--vocab-size {args.vocab_size}: too small for {len(SPECIALS)} specials + 256 bytes")

    t0 = time.time()
    with open(args.corpus, "r", encoding="utf-8") as f:
        text = f.read()
    train_text = text[:int(0.9 * len(text))]
    counts = count_pieces(train_text)
    print(f"train text: {len(train_text)} chars of {len(text)}, {sum(counts.values())} pieces, "
          f"{len(counts)} distinct ({time.time() - t0:.1f}s)")
    merges, new_tokens = train(counts, 10 * budget, budget)
    print(f"{len(merges)} merges, {len(new_tokens)} new tokens ({time.time() - t0:.1f}s)")

    tj = build_json(merges, new_tokens)
    assert len(tj["model"]["vocab"]) == args.vocab_size
    bpe.Tokenizer(tj)  # validates the file we are about to write
    os.makedirs(args.out, exist_ok=True)
    for name, obj in (("tokenizer.json", tj), ("tokenizer_config.json", build_config())):
        path = os.path.join(args.out, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=2)
            f.write("\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
