"""Reference byte-level BPE encoder/decoder for Hugging Face style `tokenizer.json` files.

This is the reference the C++ tokenizer (src/tokenizer/) is checked against, so every rule it
follows is written down here. Run with /usr/bin/python3; needs Debian's python3-regex.

Supported file shape (anything else is rejected with an error naming the field):
  model:          {"type": "BPE", "vocab": {token: id}, "merges": ["a b", ...] or [["a", "b"], ...],
                   "byte_fallback": false, "unk_token": null, "dropout": null, "ignore_merges": false}
  normalizer:     null, or {"type": "Sequence", "normalizers": []}
  pre_tokenizer:  {"type": "Sequence", "pretokenizers": [Split..., ByteLevel]} where every Split is
                  {"pattern": {"Regex": R}, "behavior": "Isolated", "invert": false} and ByteLevel is
                  last with add_prefix_space false and use_regex false.
  added_tokens:   [{"id": i, "content": s, "special": b, ...}]
  decoder:        {"type": "ByteLevel", ...}

Encoding, encode(text, allow_special=False) -> list[int]
  0. Input is bytes. A `str` is first turned into UTF-8 bytes with errors="surrogateescape", so a
     str that came from bytes via surrogateescape maps back to exactly those bytes.
  1. Added tokens (only when allow_special=True): the byte string is cut at every occurrence of an
     added token's content, scanning left to right and taking at each position the leftmost match,
     the longest one when several start there (leftmost-longest, like HF's added-vocabulary
     matcher). Each match becomes that token's id; the text between matches goes on to step 2
     chunk by chunk. With allow_special=False added-token strings are plain text.
  2. UTF-8 validity: a chunk is scanned left to right; where a well-formed UTF-8 sequence
     (Unicode Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF) starts, it is taken
     whole, otherwise that single byte is invalid. Maximal runs of valid sequences are decoded and
     pre-tokenized (step 3) independently of each other; every invalid byte is a piece of its own
     (one byte, so it encodes to that byte's token). So an invalid byte is a hard boundary: no
     regex sees across it and no merge joins it to a neighbour. (HF `tokenizers` cannot take
     invalid UTF-8 at all; this is our extension. Python's surrogateescape decoder marks exactly
     the same bytes invalid.)
  3. Pre-tokenization: a list of pieces starts as [run]. Each Split regex, in file order, is
     applied to EACH piece produced by the previous one, on its own: the regex is searched in
     that piece alone (a lookahead such as (?!\\S) sees the end of the piece, not the text after
     it), left to right, non-overlapping, leftmost match with alternatives tried in order
     (backtracking semantics). With behavior "Isolated" the piece is replaced by the sequence of
     the gaps between matches and the matches themselves, in order; nothing is dropped except
     empty strings. Pieces never merge again, so a later regex can only cut finer.
     For the DeepSeek-V3 family sequence that means: runs of digits are cut into groups of 1-3
     digits from the left; then runs of CJK ideographs U+4E00-U+9FA5 / hiragana U+3040-U+309F /
     katakana U+30A0-U+30FF become separate pieces; then the GPT-style word regex cuts the rest.
     Unicode classes (\\p{L}, \\p{N}, \\p{P}, \\p{S}, \\p{M}, \\s = White_Space) are those of the
     `regex` module's Unicode tables.
  4. Byte-level mapping: each piece's UTF-8 bytes map one-to-one to symbols with the GPT-2
     bytes-to-unicode table (printable Latin-1 bytes map to themselves, the other 68 bytes to
     U+0100.. in byte order).
  5. BPE per piece: start from one symbol per byte; repeatedly take, among all adjacent symbol
     pairs that have a merge, the one with the lowest merge rank (index in "merges"), the leftmost
     if that pair occurs more than once, and join it into one symbol; stop when no adjacent pair
     has a merge. Each final symbol's id is vocab[symbol]. (This is what HF's BPE model does with
     its priority queue of (rank, position), dropout off.)
  Ids are concatenated in input order.

Decoding, decode_bytes(ids) -> bytes
  Added tokens decode to their content's UTF-8 bytes. A model token decodes through the inverse
  byte table; if one of its characters is not in the table (e.g. a special-token string that also
  sits in the model vocab) the token's own UTF-8 bytes are used, as HF's ByteLevel decoder does.
  decode(ids) -> str is decode_bytes(...).decode("utf-8", errors="surrogateescape"), so
  decode(encode(s)) == s for every str s and decode_bytes(encode(b)) == b for every bytes b.
  (HF decodes lossily with U+FFFD instead; streaming decoders should emit bytes.)
"""

import heapq
import json
import sys

import regex


def bytes_to_unicode():
    """GPT-2 byte -> printable character table (list of 256 one-char strings, index = byte)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    table = [None] * 256
    extra = 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in enumerate(BYTE_TO_CHAR)}

# Well-formed UTF-8 sequences (Unicode 15, Table 3-7), one alternative per row, on bytes.
_UTF8_VALID = regex.compile(
    rb"(?:[\x00-\x7F]|[\xC2-\xDF][\x80-\xBF]|\xE0[\xA0-\xBF][\x80-\xBF]"
    rb"|[\xE1-\xEC\xEE\xEF][\x80-\xBF]{2}|\xED[\x80-\x9F][\x80-\xBF]"
    rb"|\xF0[\x90-\xBF][\x80-\xBF]{2}|[\xF1-\xF3][\x80-\xBF]{3}|\xF4[\x80-\x8F][\x80-\xBF]{2})+"
)


def utf8_runs(data):
    """Split bytes into (is_valid, bytes) parts: maximal valid UTF-8 runs and single invalid bytes."""
    out = []
    pos = 0
    n = len(data)
    while pos < n:
        m = _UTF8_VALID.match(data, pos)
        if m:
            out.append((True, m.group()))
            pos = m.end()
        else:
            out.append((False, data[pos:pos + 1]))
            pos += 1
    return out


def split_isolated(pieces, pattern):
    """Apply one Split(behavior=Isolated) to every piece; returns the new piece list."""
    out = []
    for piece in pieces:
        last = 0
        for m in pattern.finditer(piece):
            s, e = m.span()
            if s > last:
                out.append(piece[last:s])
            if e > s:
                out.append(piece[s:e])
            last = e
        if last < len(piece):
            out.append(piece[last:])
    return out


def pretokenize(text, patterns):
    """Pre-tokenize a valid str with a sequence of compiled Split regexes (see module docstring)."""
    pieces = [text] if text else []
    for pat in patterns:
        pieces = split_isolated(pieces, pat)
    return pieces


class TokenizerError(ValueError):
    pass


def _merge_pair(entry, idx):
    if isinstance(entry, str):
        parts = entry.split(" ")
        if len(parts) != 2:
            raise TokenizerError(f"model.merges[{idx}]: expected 'left right', got {entry!r}")
        return parts[0], parts[1]
    if isinstance(entry, list) and len(entry) == 2 and all(isinstance(p, str) for p in entry):
        return entry[0], entry[1]
    raise TokenizerError(f"model.merges[{idx}]: expected a string or a pair of strings, got {entry!r}")


class Tokenizer:
    """Byte-level BPE tokenizer loaded from a tokenizer.json (path or parsed dict)."""

    def __init__(self, source):
        if isinstance(source, dict):
            data, name = source, "<dict>"
        else:
            name = str(source)
            with open(source, "r", encoding="utf-8") as f:
                data = json.load(f)
        self._load(data, name)

    # ---- loading ---------------------------------------------------------------------------
    def _load(self, data, name):
        def fail(msg):
            raise TokenizerError(f"{name}: {msg}")

        model = data.get("model")
        if not isinstance(model, dict) or model.get("type") != "BPE":
            fail("model.type: expected 'BPE'")
        for key, ok in (("byte_fallback", (False, None)), ("dropout", (None,)), ("unk_token", (None,)),
                        ("ignore_merges", (False, None)), ("continuing_subword_prefix", (None, "")),
                        ("end_of_word_suffix", (None, ""))):
            if model.get(key) not in ok:
                fail(f"model.{key}: expected one of {ok}, got {model.get(key)!r}")
        vocab = model.get("vocab")
        if not isinstance(vocab, dict):
            fail("model.vocab: expected an object of token -> id")
        self.vocab = {}
        for tok, i in vocab.items():
            if not isinstance(i, int) or i < 0:
                fail(f"model.vocab[{tok!r}]: expected a non-negative integer id, got {i!r}")
            self.vocab[tok] = i
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        if len(self.id_to_token) != len(self.vocab):
            fail("model.vocab: two tokens share an id")
        for b, c in enumerate(BYTE_TO_CHAR):
            if c not in self.vocab:
                fail(f"model.vocab: byte 0x{b:02X} (symbol {c!r}) is missing; byte-level BPE needs all 256")
        # merges: (left_id, right_id) -> (rank, merged_id); a repeated pair is an error.
        self.merges = {}
        merges = model.get("merges")
        if not isinstance(merges, list):
            fail("model.merges: expected a list")
        for rank, entry in enumerate(merges):
            left, right = _merge_pair(entry, rank)
            for part in (left, right, left + right):
                if part not in self.vocab:
                    fail(f"model.merges[{rank}]: token {part!r} is not in model.vocab")
            key = (self.vocab[left], self.vocab[right])
            if key in self.merges:
                fail(f"model.merges[{rank}]: pair {left!r} {right!r} repeats merge {self.merges[key][0]}")
            self.merges[key] = (rank, self.vocab[left + right])

        norm = data.get("normalizer")
        if norm is not None and not (norm.get("type") == "Sequence" and norm.get("normalizers") == []):
            fail(f"normalizer: only null or an empty Sequence is supported, got {norm!r}")

        pre = data.get("pre_tokenizer")
        if not isinstance(pre, dict):
            fail("pre_tokenizer: expected an object")
        steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else [pre]
        if not isinstance(steps, list) or not steps:
            fail("pre_tokenizer.pretokenizers: expected a non-empty list")
        last = steps[-1]
        if not (last.get("type") == "ByteLevel" and last.get("add_prefix_space") is False
                and last.get("use_regex") is False):
            fail("pre_tokenizer: the last step must be ByteLevel with add_prefix_space=false, use_regex=false")
        self.split_regexes = []
        self.patterns = []
        for k, step in enumerate(steps[:-1]):
            where = f"pre_tokenizer.pretokenizers[{k}]"
            if step.get("type") != "Split":
                fail(f"{where}.type: expected 'Split', got {step.get('type')!r}")
            if step.get("behavior") != "Isolated" or step.get("invert") not in (False, None):
                fail(f"{where}: expected behavior 'Isolated' and invert false")
            pat = step.get("pattern", {})
            if "Regex" not in pat:
                fail(f"{where}.pattern: expected {{'Regex': ...}}")
            self.split_regexes.append(pat["Regex"])
            try:
                self.patterns.append(regex.compile(pat["Regex"]))
            except regex.error as e:
                fail(f"{where}.pattern.Regex: does not compile: {e}")

        dec = data.get("decoder")
        if not isinstance(dec, dict) or dec.get("type") != "ByteLevel":
            fail("decoder.type: expected 'ByteLevel'")

        self.added = {}  # content -> id
        self.special_ids = set()
        for k, tok in enumerate(data.get("added_tokens") or []):
            content, i = tok.get("content"), tok.get("id")
            if not isinstance(content, str) or not content or not isinstance(i, int):
                fail(f"added_tokens[{k}]: expected non-empty 'content' and integer 'id'")
            if content in self.vocab and self.vocab[content] != i:
                fail(f"added_tokens[{k}]: {content!r} has id {i} but model.vocab says {self.vocab[content]}")
            if i in self.id_to_token and self.id_to_token[i] != content:
                fail(f"added_tokens[{k}]: id {i} is {self.id_to_token[i]!r} in model.vocab")
            self.added[content] = i
            if tok.get("special"):
                self.special_ids.add(i)
        # Longest first so that, at one position, the longest added token wins.
        alts = sorted(self.added, key=lambda s: (-len(s.encode("utf-8")), s))
        self._added_re = (regex.compile(b"|".join(regex.escape(s.encode("utf-8")) for s in alts))
                          if alts else None)
        self._added_by_bytes = {s.encode("utf-8"): i for s, i in self.added.items()}

        # id -> bytes for decoding
        self.id_bytes = {}
        for tok, i in self.vocab.items():
            if all(c in CHAR_TO_BYTE for c in tok):
                self.id_bytes[i] = bytes(CHAR_TO_BYTE[c] for c in tok)
            else:
                self.id_bytes[i] = tok.encode("utf-8")
        for content, i in self.added.items():
            self.id_bytes[i] = content.encode("utf-8")
        self.vocab_size = max(self.id_bytes) + 1
        self._byte_ids = [self.vocab[BYTE_TO_CHAR[b]] for b in range(256)]
        self._cache = {}

    # ---- encoding --------------------------------------------------------------------------
    def bpe(self, piece):
        """Token ids for one pre-tokenized piece (bytes)."""
        ids = self._cache.get(piece)
        if ids is not None:
            return ids
        syms = [self._byte_ids[b] for b in piece]
        if len(syms) > 48:
            syms = self._bpe_long(syms)
        merges = self.merges
        while len(syms) > 1:
            best = None
            best_pos = -1
            for j in range(len(syms) - 1):
                m = merges.get((syms[j], syms[j + 1]))
                if m is not None and (best is None or m[0] < best[0]):
                    best, best_pos = m, j
            if best is None:
                break
            syms[best_pos:best_pos + 2] = [best[1]]
        if len(self._cache) < 200000:
            self._cache[piece] = syms
        return syms

    def _bpe_long(self, syms):
        """Same result as the quadratic loop in bpe(), in O(n log n) for long pieces: a heap of
        (rank, position) over a linked list of symbols; stale entries are skipped when popped."""
        merges = self.merges
        n = len(syms)
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []
        for j in range(n - 1):
            m = merges.get((syms[j], syms[j + 1]))
            if m is not None:
                heap.append((m[0], j, syms[j], syms[j + 1], m[1]))
        heapq.heapify(heap)
        while heap:
            _, j, left, right, new = heapq.heappop(heap)
            k = nxt[j]
            if not alive[j] or k >= n or syms[j] != left or syms[k] != right:
                continue
            syms[j] = new
            alive[k] = False
            nxt[j] = nxt[k]
            if nxt[k] < n:
                prv[nxt[k]] = j
            p = prv[j]
            if p >= 0:
                m = merges.get((syms[p], new))
                if m is not None:
                    heapq.heappush(heap, (m[0], p, syms[p], new, m[1]))
            if nxt[j] < n:
                m = merges.get((new, syms[nxt[j]]))
                if m is not None:
                    heapq.heappush(heap, (m[0], j, new, syms[nxt[j]], m[1]))
        return [syms[j] for j in range(n) if alive[j]]

    def pieces(self, data):
        """Pre-tokenized pieces (bytes) of a chunk without added tokens (steps 2-3)."""
        out = []
        for valid, run in utf8_runs(data):
            if not valid:
                out.append(run)
                continue
            out.extend(p.encode("utf-8") for p in pretokenize(run.decode("utf-8"), self.patterns))
        return out

    def encode(self, text, allow_special=False):
        data = text.encode("utf-8", errors="surrogateescape") if isinstance(text, str) else bytes(text)
        chunks = []  # (is_added, bytes)
        if allow_special and self._added_re is not None:
            last = 0
            for m in self._added_re.finditer(data):
                if m.start() > last:
                    chunks.append((False, data[last:m.start()]))
                chunks.append((True, m.group()))
                last = m.end()
            if last < len(data):
                chunks.append((False, data[last:]))
        else:
            chunks.append((False, data))
        ids = []
        for is_added, chunk in chunks:
            if is_added:
                ids.append(self._added_by_bytes[chunk])
                continue
            for piece in self.pieces(chunk):
                ids.extend(self.bpe(piece))
        return ids

    # ---- decoding --------------------------------------------------------------------------
    def decode_bytes(self, ids, skip_special=False):
        out = bytearray()
        for i in ids:
            b = self.id_bytes.get(i)
            if b is None:
                raise TokenizerError(f"decode: token id {i} is not in the vocabulary (size {self.vocab_size})")
            if skip_special and i in self.special_ids:
                continue
            out += b
        return bytes(out)

    def decode(self, ids, skip_special=False):
        return self.decode_bytes(ids, skip_special).decode("utf-8", errors="surrogateescape")


def bench(tok, path, repeats=5):
    """Median encode and decode speed over `repeats` runs, the piece cache emptied before each."""
    import statistics
    import time
    with open(path, "rb") as f:
        data = f.read()
    enc, dec = [], []
    for _ in range(repeats):
        tok._cache.clear()
        t0 = time.perf_counter()
        ids = tok.encode(data)
        t1 = time.perf_counter()
        tok.decode_bytes(ids)
        t2 = time.perf_counter()
        enc.append(t1 - t0)
        dec.append(t2 - t1)
    mb = len(data) / 1e6
    print(f"{path}: {len(data)} bytes -> {len(ids)} tokens; encode {mb / statistics.median(enc):.2f} MB/s, "
          f"decode {mb / statistics.median(dec):.1f} MB/s (median of {repeats}, one core)")


def main(argv):
    """usage: bpe.py TOKENIZER_JSON [--special] [--decode] < input > output  (ids whitespace-separated)
       or:    bpe.py TOKENIZER_JSON --bench FILE"""
    if len(argv) < 2:
        print(main.__doc__, file=sys.stderr)
        return 2
    tok = Tokenizer(argv[1])
    if len(argv) == 4 and argv[2] == "--bench":
        bench(tok, argv[3])
        return 0
    if "--decode" in argv[2:]:
        ids = [int(x) for x in sys.stdin.read().split()]
        sys.stdout.buffer.write(tok.decode_bytes(ids))
    else:
        ids = tok.encode(sys.stdin.buffer.read(), allow_special="--special" in argv[2:])
        sys.stdout.write(" ".join(map(str, ids)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
