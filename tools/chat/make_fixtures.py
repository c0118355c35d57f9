"""Regenerates tests/fixtures/chat/expected/ with the official DeepSeek-V4 encoder.

The official encoder (`encoding/encoding_dsv4.py` of the DeepSeek-V4 release) is not part of this
repository; pass the path of a local copy:

  /usr/bin/python3 tools/chat/make_fixtures.py /path/to/encoding_dsv4.py          # rewrite
  /usr/bin/python3 tools/chat/make_fixtures.py /path/to/encoding_dsv4.py --check  # compare only

Cases are listed in tests/fixtures/chat/cases.json:
  render: {"name", "input" (a file in conversations/), "thinking", "reasoning_effort",
           "drop_thinking", "add_bos"} -> expected/NAME.txt = encode_messages(...)
  parse:  {"name", "input" (a file in completions/), "thinking"}
          -> expected/NAME.json = parse_message_from_completion_text(...) as JSON, or
             {"error": true} when the official parser rejects the completion.

An input file is an OpenAI-style request: {"messages": [...], "tools": [...]} or a bare list of
messages. Top-level tools are put on the first message when it is a system message, otherwise on
a new empty system message inserted first; frugal's C++ encoder does the same (src/chat).
"""

import copy
import importlib.util
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "chat")


def load_encoder(path):
    spec = importlib.util.spec_from_file_location("encoding_dsv4", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def request_messages(doc):
    if isinstance(doc, list):
        return copy.deepcopy(doc)
    messages = copy.deepcopy(doc["messages"])
    tools = doc.get("tools")
    if tools:
        if messages and messages[0].get("role") == "system":
            messages[0]["tools"] = tools
        else:
            messages.insert(0, {"role": "system", "content": "", "tools": tools})
    return messages


def render_case(enc, case):
    with open(os.path.join(FIXTURES, "conversations", case["input"]), encoding="utf-8") as f:
        doc = json.load(f)
    return enc.encode_messages(
        request_messages(doc),
        thinking_mode="thinking" if case.get("thinking") else "chat",
        drop_thinking=case.get("drop_thinking", True),
        add_default_bos_token=case.get("add_bos", True),
        reasoning_effort=case.get("reasoning_effort"),
    )


def parse_case(enc, case):
    with open(os.path.join(FIXTURES, "completions", case["input"]), encoding="utf-8") as f:
        text = f.read()
    try:
        msg = enc.parse_message_from_completion_text(
            text, thinking_mode="thinking" if case.get("thinking") else "chat")
    except (AssertionError, ValueError) as e:
        return json.dumps({"error": True}) + "\n"
    return json.dumps(msg, ensure_ascii=False) + "\n"


def main(argv):
    if len(argv) < 2 or argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    enc = load_encoder(argv[1])
    check = "--check" in argv[2:]
    with open(os.path.join(FIXTURES, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    outputs = {}
    for case in cases["render"]:
        outputs[case["name"] + ".txt"] = render_case(enc, case)
    for case in cases["parse"]:
        outputs[case["name"] + ".json"] = parse_case(enc, case)
    bad = 0
    os.makedirs(os.path.join(FIXTURES, "expected"), exist_ok=True)
    for name, text in sorted(outputs.items()):
        path = os.path.join(FIXTURES, "expected", name)
        if check:
            old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            if old != text:
                print(f"differs: {path}")
                bad += 1
        else:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
    print(f"{len(outputs)} fixtures {'checked' if check else 'written'}, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
