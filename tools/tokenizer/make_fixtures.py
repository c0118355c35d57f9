"""Regenerate tests/fixtures/tokenizer/ from bpe.py and models/tiny-v4/tokenizer.json.

Usage (from the repository root): /usr/bin/python3 tools/tokenizer/make_fixtures.py [--check]

Writes, for every torture text in torture.py:
  texts/NAME            the raw bytes (.txt: valid UTF-8, .bin: contains invalid UTF-8)
  NAME.ids              encode(bytes, allow_special=False), ids separated by single spaces, then "\\n"
  NAME.special.ids      encode(bytes, allow_special=True)
and for the whole corpus (../shared/data/tinyshakespeare.txt, copied next to its ids so the test
needs nothing outside the repository):
  corpus.ids            encode(corpus, allow_special=False), same format
plus manifest.json: sha256 and byte length of every input (the corpus included), the sha256 of every
ids file, token counts, and the tokenizer.json sha256 the ids belong to.

Before writing, every case is checked: decode_bytes(encode(x)) == x for both modes, decode(ids) ==
the input decoded with surrogateescape, and encoding the text a second time gives the same ids.
With --check nothing is written; it fails if any file on disk differs from what would be written.
"""

import argparse
import hashlib
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import torture  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def ids_text(ids):
    return (" ".join(map(str, ids)) + "\n").encode("ascii")


def check_roundtrip(tok, name, data, ids):
    back = tok.decode_bytes(ids)
    if back != data:
        raise SystemExit(f"{name}: decode_bytes(encode(x)) != x")
    if tok.decode(ids) != data.decode("utf-8", errors="surrogateescape"):
        raise SystemExit(f"{name}: decode(encode(x)) != x as str")


def main():
    ap = argparse.ArgumentParser(description="regenerate tokenizer fixtures")
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "models", "tiny-v4", "tokenizer.json"))
    ap.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "tokenizer"))
    ap.add_argument("--check", action="store_true", help="compare with the files on disk, write nothing")
    args = ap.parse_args()

    tok = bpe.Tokenizer(args.tokenizer)
    with open(args.tokenizer, "rb") as f:
        tok_sha = sha256(f.read())
    files = {}  # relative path -> bytes
    cases = []
    for name, data in torture.TEXTS.items():
        if name.endswith(".txt"):
            data.decode("utf-8")  # .txt must be valid UTF-8
        plain = tok.encode(data, allow_special=False)
        special = tok.encode(data, allow_special=True)
        for mode, ids in (("plain", plain), ("special", special)):
            check_roundtrip(tok, f"{name} ({mode})", data, ids)
        if tok.encode(data) != plain:
            raise SystemExit(f"{name}: second encode differs")
        if data.decode("utf-8", errors="surrogateescape") and tok.encode(
                data.decode("utf-8", errors="surrogateescape")) != plain:
            raise SystemExit(f"{name}: encode(str) differs from encode(bytes)")
        stem = name.rsplit(".", 1)[0]
        files[f"texts/{name}"] = data
        files[f"{stem}.ids"] = ids_text(plain)
        files[f"{stem}.special.ids"] = ids_text(special)
        cases.append({"text": f"texts/{name}", "bytes": len(data), "sha256": sha256(data),
                      "ids": f"{stem}.ids", "tokens": len(plain), "ids_sha256": sha256(files[f"{stem}.ids"]),
                      "special_ids": f"{stem}.special.ids", "special_tokens": len(special),
                      "special_ids_sha256": sha256(files[f"{stem}.special.ids"]),
                      "valid_utf8": name.endswith(".txt")})

    with open(args.corpus, "rb") as f:
        corpus = f.read()
    t0 = time.perf_counter()
    corpus_ids = tok.encode(corpus)
    dt = time.perf_counter() - t0
    check_roundtrip(tok, "corpus", corpus, corpus_ids)
    files["corpus.ids"] = ids_text(corpus_ids)
    files["tinyshakespeare.txt"] = corpus
    corpus_entry = {"source": "tinyshakespeare.txt (this folder; a copy of shared/data/tinyshakespeare.txt)",
                    "bytes": len(corpus), "sha256": sha256(corpus), "ids": "corpus.ids",
                    "tokens": len(corpus_ids), "ids_sha256": sha256(files["corpus.ids"]),
                    "train_split_chars": int(0.9 * len(corpus.decode("utf-8")))}
    manifest = {
        "about": "Expected ids of tools/tokenizer/bpe.py for models/tiny-v4/tokenizer.json; "
                 "regenerate with tools/tokenizer/make_fixtures.py. *.ids: allow_special=False; "
                 "*.special.ids: added tokens recognised. Ids are separated by single spaces, one line.",
        "tokenizer_sha256": tok_sha,
        "vocab_size": tok.vocab_size,
        "cases": cases,
        "corpus": corpus_entry,
    }
    files["manifest.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    print(f"corpus: {len(corpus)} bytes -> {len(corpus_ids)} tokens "
          f"({len(corpus) / len(corpus_ids):.2f} bytes/token), round trip ok, "
          f"cold encode {len(corpus) / dt / 1e6:.2f} MB/s")
    print(f"{len(cases)} torture cases, round trip ok in both modes")

    bad = []
    for rel, data in sorted(files.items()):
        path = os.path.join(args.out, rel)
        if args.check:
            try:
                with open(path, "rb") as f:
                    if f.read() != data:
                        bad.append(rel)
            except FileNotFoundError:
                bad.append(rel)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
    if args.check:
        if bad:
            raise SystemExit("fixtures differ from bpe.py output: " + ", ".join(bad))
        print(f"check ok: {len(files)} files match")
    else:
        print(f"wrote {len(files)} files under {args.out}")


if __name__ == "__main__":
    main()
