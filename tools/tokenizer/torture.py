"""The Unicode torture texts for tokenizer parity (tests/fixtures/tokenizer/texts/).

Each entry: file name -> raw bytes. Written with escapes so that invisible characters are explicit.
Everything here is valid UTF-8 except the files ending in .bin. Characters are from Unicode <= 12
so that regex engines with older Unicode tables (PCRE2 in Debian 12, the `regex` module) agree.
"""

S = "<\uff5cbegin\u2581of\u2581sentence\uff5c>"
E = "<\uff5cend\u2581of\u2581sentence\uff5c>"
U = "<\uff5cUser\uff5c>"
A = "<\uff5cAssistant\uff5c>"
D = "\uff5cDSML\uff5c"


def _u(s):
    return s.encode("utf-8")


TEXTS = {
    "empty.txt": b"",
    "ascii_prose.txt": _u(
        "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
        "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!\n"
        "Hello,world.Hello , world .  Double  spaces   and trailing   \n"),
    "cjk.txt": _u(
        "\u4eca\u5929\u5929\u6c14\u5f88\u597d\u3002\u6211\u4eec\u53bb\u516c\u56ed\u5427\uff01"
        "\u4e2d\u6587abc\u4e2d\u6587 123\u5e74 \u7b2c3\u7ae0\u300c\u5f15\u7528\u300d\uff0c\u9017\u53f7\n"
        "\u9fa5\u9fa6\u9fbb|\u3400\u3401|\U00020000\U0002a6d6|\uf900\uf901|\u3007\u3005\u4e00\n"
        "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\u3002\u4e00 \u4e8c  \u4e09\t\u56db\n"
        "\u300a\u4e09\u56fd\u6f14\u4e49\u300b\u2014\u2014\u7f57\u8d2f\u4e2d\u8457\u3002\u201c\u4f60\u597d\u201d"),
    "japanese.txt": _u(
        "\u3053\u3093\u306b\u3061\u306f\u3001\u4e16\u754c\uff01\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a"
        "\u3068\u6f22\u5b57\u3002\u30b3\u30fc\u30d2\u30fc\u304c\u597d\u304d\u3067\u3059\u3002\n"
        "\u30fb\u30fc\u309b\u309c\u309f\u30a0\u30ff|\uff76\uff80\uff76\uff85 \uff8a\uff9f\uff9d|\u3005\u3006\u3007\n"
        "\u6771\u4eac\u90fd\u6e0b\u8c37\u533a1-2-3\u3000\u30c6\u30b9\u30c8\u30d3\u30eb5F\n"
        "\u304c\u3099 \u304b\u3099 \u30d5\u309a\u30ed\u30b0\u30e9\u30e0 Python\u3067\u66f8\u304f"),
    "emoji.txt": _u(
        "I \u2764\ufe0f NY \U0001f600\U0001f600\U0001f600 \U0001f44d\U0001f3fd ok\n"
        "family: \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 rainbow: \U0001f3f3\ufe0f\u200d\U0001f308\n"
        "flags: \U0001f1ef\U0001f1f5\U0001f1fa\U0001f1f8 \U0001f1e9\U0001f1ea keycap: 1\ufe0f\u20e3 #\ufe0f\u20e3\n"
        "\U0001f9d1\U0001f3ff\u200d\U0001f4bb\U0001f469\u200d\u2764\ufe0f\u200d\U0001f48b\u200d\U0001f468 "
        "text\u263a\ufe0e emoji\u263a\ufe0f\n"
        "\U0001f680rocket\U0001f680 abc\U0001f525def \U0001f4af% \u2b50\u2b50\u2b50"),
    "combining.txt": _u(
        "\u0301start with a mark. cafe\u0301 cafe\u0301s na\u0308ive re\u0301sume\u0301\n"
        "Vi\u1ec7t Nam ti\u1ebfng Vi\u00ea\u0323t Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f"
        "\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u0334\u0335\u031c\u0330\u0354"
        "\u036b\u0357\u0362L\u0360\u0328\u0327\u0329\u0318\u0320G\u0311\u0357\u030e\u0305\u035b"
        "\u0301\u0334\u033b\u0348\u034d\u0354\u0339O\u0302\u030f\u0305\u035b\u0301\u0334\n"
        "\u0939\u093f\u0928\u094d\u0926\u0940 \u0928\u092e\u0938\u094d\u0924\u0947 "
        "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd \u0627\u064e\u0644\u0633\u0651\u064e\u0644\u0627\u0645\u064f\n"
        " \u0301 1\u0301 a\u20dd \u0e01\u0e34\u0e19\u0e02\u0e49\u0e32\u0e27 \u1100\u1161\u11a8"),
    "digits.txt": _u(
        "1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890 12345678901234567890\n"
        "abc123def 3.14159 1,000,000 -42 +7 1e10 0x1F 2024-01-02 10:30:59 $100.00 50%\n"
        " 7  77   777\t7777\n\u0660\u0661\u0662\u0663\u0664 \u06f1\u06f2 \u0966\u0967\u0968 "
        "\uff11\uff12\uff13\uff14 \u00b2\u00b3\u00b9 \u2162\u216b \u00bd\u00bc \u2460\u2461 "
        "\U0001d7ce\U0001d7cf x\u00b2+y\u00b2 \u4e001\u4e8c2 A1B22C333D4444\n1"),
    "whitespace.txt": _u(
        "   leading spaces\n\n\n\ttab\t\ttabs\n"
        "crlf line\r\ncrlf line\r\n\r\n\r\nlone cr\rafter cr\n"
        "spaces before newline   \nmix \t \n \t\n"
        "nbsp\u00a0here \u00a0\u00a0 ideographic\u3000space\u3000\u3000x line\u2028sep para\u2029sep "
        "nel\u0085x vt\x0bff\x0cx\n"
        "zwsp\u200bx zwj\u200dx zwnj\u200cx figure\u2007space thin\u2009space mvs\u180ex \u180e \u1680ogham\n"
        "unitsep\x1fx recsep\x1ex filesep\x1cx groupsep\x1dx\n"
        "word  \n  word\n\n    \n\t \r\n     "),
    "punctuation.txt": _u(
        "Wait... what?! Really??? No!!! -- yes \u2014 maybe \u2013 so.\n"
        "\u00abguillemets\u00bb \u201equotes\u201c \u201cdouble\u201d (parens) [brackets] {braces} <angle>\n"
        ".Hello ,world !bang ?q @user #tag $var %pct ^caret &amp *star _under `tick` ~tilde |pipe\n"
        "a.b.c a-b-c a_b_c a/b/c C++ C# x->y x=>y x<=y x!=y x==y !!!\n\n"
        "https://example.com/path/to?q=1&r=two#frag user@example.org\n"
        "def f(x): return x**2  # comment\nint main() { return 0; }\n"
        "\u00a1Hola! \u00bfQu\u00e9? \u2026 \u00b7 \u2022 \u00a7 \u00b6 \u2020 \u00a9 \u00ae \u2122 \u20ac \u00a3 "
        "\u00a5 + = < > \u00b1 \u00d7 \u00f7 \u221e \u2260 \u2264\n:\n;\r\n,\n\n.\r\n\r\n"),
    "apostrophes.txt": _u(
        "don't I'm it's we'll they've she'd you're DON'T I'M IT'S\n"
        "'tis o'er rock 'n' roll 'hello' ''double'' '' ' '\n"
        "curly don\u2019t it\u2019s \u2018quoted\u2019 \u2018tis rock \u2019n\u2019 roll\n"
        "O'Brien's l'amour d'accord aujourd'hui Ma'am 90's '90s\n"
        "'s 't 're 've 'm 'll 'd 'S 'T"),
    "mixed_scripts.txt": _u(
        "\ufeffBOM at start. \u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! "
        "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u03ba\u03cc\u03c3\u03bc\u03b5\n"
        "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 \u05e9\u05dc\u05d5\u05dd "
        "\u05e2\u05d5\u05dc\u05dd \u200fRTL mark\u200f \u202aembed\u202c\n"
        "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01 "
        "\u10d2\u10d0\u10db\u10d0\u10e0\u10ef\u10dd\u10d1\u10d0 \u0532\u0561\u0580\u0587 "
        "\u1375\u12a0\u121b\u122d\u129b\n"
        "Latin\u4e2d\u6587\u65e5\u672c\u8a9e\u0420\u0443\u0441\u0441\u043a\u0438\u0439\U0001f600"
        "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac123\u0639\u0631\u0628\u064a\n"
        "Stra\u00dfe \u00c5ngstr\u00f6m \u0130stanbul \u0131\u0130 \ufb01 \ufb03 \u01c5 \u1e9e \U0001d400\U0001d41a"),
    "controls.txt": _u(
        "nul\x00byte del\x7fchar bell\x07 esc\x1b[31mred\x1b[0m\x01\x02\x03 "
        "c1\u0080\u0081\u009f soft\u00adhyphen\n\x00\x00\x00 \x00"),
    "long_runs.txt": _u(
        "a" * 300 + " " + "ab" * 150 + " " + "e" * 101 + "\n" + "!" * 64 + "\n" + " " * 200 + "x\n"
        + "\n" * 40 + "9" * 100 + " " + "-" * 80 + "\n" + "\u4e2d" * 50 + " " + "\U0001f600" * 30 + " "
        + "thethethethethe" * 10 + "\n" + "lll" * 30),
    "specials.txt": _u(
        S + "You are a poet." + U + "Write a line." + A + "</think>To be, or not to be." + E
        + U + "Think first." + A + "<think>hmm</think>Done." + E + "\n"
        + "<" + D + "tool_calls>\n<" + D + 'invoke name="get">\n<' + D
        + 'parameter name="q" string="true">x</' + D + "parameter>\n</" + D + "invoke>\n</" + D
        + "tool_calls>\n"
        + "<\uff5clatest_reminder\uff5c><\uff5caction\uff5c><\uff5cquery\uff5c><\uff5cauthority\uff5c>"
        + "<\uff5cdomain\uff5c><\uff5ctitle\uff5c><\uff5cextracted_url\uff5c><\uff5cread_url\uff5c>"
        + "<\uff5c\u2581pad\u2581\uff5c>\n"
        + "partial: <\uff5cUser <think <\uff5cbegin\u2581of <<think>> </think></think>" + U + U
        + " " + E + " x" + S + "y"),
    "invalid_utf8.bin": (
        b"valid start \x80 lone continuation\n"
        b"\xbf\xbf\xbf three continuations\n"
        b"truncated 2-byte \xc3 end\n"
        b"truncated 3-byte \xe2\x82 end \xe2 end\n"
        b"truncated 4-byte \xf0\x9f\x98 end \xf0\x9f end\n"
        b"overlong \xc0\x80 \xc1\xbf \xe0\x80\x80 \xe0\x9f\xbf \xf0\x80\x80\x80 \xf0\x8f\xbf\xbf\n"
        b"surrogates \xed\xa0\x80 \xed\xbf\xbf \xed\x9f\xbf(ok U+D7FF)\n"
        b"too big \xf4\x90\x80\x80 \xf5\x80\x80\x80 \xf8\x88\x80\x80\x80 \xfe \xff\xff\n"
        b"inside words: ab\xffcd 12\xfe34 \xff 5 \xc3\xa9\xff\xc3\xa9 caf\xc3 \xe4\xb8\xad\xe4\xb8\n"
        b"space run  \xff  \xfe\n\xff\n\r\xff\r\n"
        b"<\xef\xbd\x9cUser\xef\xbd\x9c>\xff<\xef\xbd\x9cUser\xef\xbd\x9c\xff>\n"
        b"\xe4\xb8\xad\xe6\x96\x87\xe6\x96 ends truncated \xf0\x9f\x98"),
    "invalid_only.bin": bytes(range(0x80, 0x100)) + b"\x00" + bytes(range(0x80, 0x100)),
}
