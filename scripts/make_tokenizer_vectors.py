#!/usr/bin/env python3
"""Tokenizer parity vectors: a varied text set and the ids the reference implementations give it.

Writes tests/fixtures/tokenizer/:
  texts.json              {"texts": [...]}: prose, code, many scripts, emoji, combining marks, white
                          space runs, digits, contractions, punctuation, recent Unicode, special-token
                          text, long pieces, and lines from ../shared/data
  llama3_ids.json         tiktoken, LLaMA-3 ranks + Meta's pattern, special text as plain text
  llama3_special_ids.json the same with allowed_special="all"
  llama2_ids.json, mistral_ids.json, mistral-v3_ids.json   sentencepiece sp.encode(text) (no BOS)
  tiny_bpe/tokenizer.json a ~1000-token byte-level BPE trained here with HF tokenizers, LLaMA-3's
                          pre-tokenizer and ignore_merges (only with --retrain-tiny or if missing)
  tiny_bpe_ids.json       tokenizers encode(text, add_special_tokens=False): added tokens split out
  tiny_bpe_nospecial_ids.json  the same with encode_special_tokens=True (special text as plain text)
Each ids file is {"texts_sha256": sha256 of texts.json's bytes, "ids": [[...] per text]}.

It also converts the LLaMA-3 tiktoken file to a HF tokenizer.json (transformers' TikTokenConverter)
in a temp dir and checks that tokenizers gives tiktoken's ids on every text (--keep-llama3-json
keeps the file for the C++ test gated on MT_LLAMA3_TOKENIZER_JSON). Vocabularies stay in
../shared/data (or $MT_SHARED_DIR/data); nothing big is written into the repo.

  ~/.cache/maintune/torch-2.11.0/bin/python scripts/make_tokenizer_vectors.py
"""
import argparse
import base64
import hashlib
import json
import os
import random
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SHARED = os.environ.get("MT_SHARED_DIR") or os.path.join(ROOT, "..", "shared")
DATA = os.path.join(SHARED, "data")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def llama3_special_tokens(num_base):
    # Llama 3.1+ (meta-llama/llama-models models/llama3_1/api/tokenizer.py).
    names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
             "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
             "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
    names += [f"<|reserved_special_token_{2 + i}|>" for i in range(256 - len(names))]
    return {n: num_base + i for i, n in enumerate(names)}


# --- the text set ----------------------------------------------------------------------------------

def data_texts():
    """A few lines / passages of each shared data set (deterministic picks)."""
    out = []
    with open(os.path.join(DATA, "unlabeled", "tinyshakespeare.txt"), encoding="utf-8") as f:
        shakes = f.read()
    for start in (0, 5000, 123456, 600000, 1100000):
        chunk = shakes[start:start + 400]
        out.append(chunk[chunk.find("\n") + 1:])  # from a line start, ends mid-line
    with open(os.path.join(DATA, "unlabeled", "wiki_demo.txt"), encoding="utf-8") as f:
        wiki = f.read().split("\n")
    for k, line in enumerate(wiki[:6]):
        a = (k * 997) % max(1, len(line) - 1500)
        out.append(line[a:a + 1200])
    with open(os.path.join(DATA, "instructions", "alpaca_gpt4_en_demo_999.json"), encoding="utf-8") as f:
        alpaca = json.load(f)
    for k in (0, 7, 100, 345, 998):
        r = alpaca[k]
        out.append(r["instruction"] + ("\n\n" + r["input"] if r["input"] else "") + "\n\n" + r["output"])
    with open(os.path.join(DATA, "instructions", "mt_bench", "question.jsonl"), encoding="utf-8") as f:
        mt = [json.loads(l) for l in f if l.strip()]
    for k in (0, 11, 25, 40, 55, 70, 79):
        out.extend(mt[k]["turns"])
    with open(os.path.join(DATA, "instructions", "alpaca_eval", "alpaca_eval_gpt4_1106_preview.json"),
              encoding="utf-8") as f:
        ae = json.load(f)
    for k in (3, 400):
        out.append(ae[k]["instruction"] + "\n" + ae[k]["output"][:1500])
    with open(os.path.join(DATA, "instructions", "ifeval_input_data.jsonl"), encoding="utf-8") as f:
        ife = [json.loads(l) for l in f if l.strip()]
    for k in (0, 200):
        out.append(ife[k]["prompt"])
    return out


def texts():
    t = []
    # English prose
    t += [
        "Hello world",
        "The quick brown fox jumps over the lazy dog.",
        "It was the best of times, it was the worst of times, it was the age of wisdom...",
        "Dr. Smith's lab (est. 1998) costs $1,234.56/yr — or ~€1.1k.",
        "\"Quoted,\" she said. 'Single quoted,' he replied.",
        "Mr. O'Brien and Ms. D'Angelo met at 10:30 a.m. on 2024-03-15.",
        "e-mail: someone@example.com; web: https://example.org/path?q=1&r=two#frag",
        "ALL CAPS SENTENCE WITH NUMBERS 123 AND SYMBOLS #@!",
        "camelCaseIdentifier snake_case_identifier kebab-case-identifier SCREAMING_SNAKE",
        "Tokenization isn't trivial: 'tis the season, y'all, rock 'n' roll.",
    ]
    # Code: Python, C++, JSON, shell, HTML, SQL, Markdown, LaTeX, Makefile (tabs)
    t += [
        "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
        "class Foo:\n\tdef __init__(self, x):\n\t\tself.x = x  # tab-indented\n\n\tdef __repr__(self):\n\t\treturn f\"Foo({self.x!r})\"\n",
        "#include <vector>\n\nint main() {\n  std::vector<int> v{1, 2, 3};\n  for (auto& x : v) x *= 2;\n  return v.size() > 2 ? 0 : 1;\n}\n",
        "template <typename T>\nT clamp(T v, T lo, T hi) {\n\treturn v < lo ? lo : (hi < v ? hi : v);\n}\n",
        '{"name": "maintune", "version": [0, 1, 2], "nested": {"a": null, "b": true}}',
        "for f in *.txt; do\n  wc -l \"$f\" | awk '{print $1}' >> counts.log 2>&1\ndone",
        "<html>\n  <body>\n    <p class=\"x\">Hi &amp; bye</p>\n  </body>\n</html>",
        "SELECT id, COUNT(*) AS n FROM users WHERE age >= 18 GROUP BY id HAVING n > 1;",
        "# Title\n\n- item one\n- item two\n\n```python\nprint('hi')\n```\n",
        "$$\\int_0^\\infty e^{-x^2}\\,dx = \\frac{\\sqrt{\\pi}}{2}$$",
        "all: build\n\nbuild:\n\tgcc -O2 -Wall -o app main.c\n\nclean:\n\trm -f app *.o\n",
        "    \n    x = 1    \n\n\n        y = 2\n",
        "if (a&&b||!c) { x+=1; y<<=2; z=a?b:c; }",
    ]
    # Scripts and languages
    t += [
        "你好，世界！今天天气很好。我们去公园散步吧。",
        "機器學習是人工智慧的一個分支。",
        "日本語のテキスト：ひらがな、カタカナ、漢字を含みます。東京は日本の首都です。",
        "한국어 텍스트입니다. 안녕하세요! 만나서 반갑습니다.",
        "مرحبا بالعالم. هذه جملة باللغة العربية مع أرقام ١٢٣٤٥٦٧.",
        "שלום עולם! זהו משפט בעברית.",
        "नमस्ते दुनिया। यह हिंदी में एक वाक्य है। संख्या: १२३४५",
        "স্বাগতম! এটি বাংলা ভাষার একটি বাক্য।",
        "வணக்கம் உலகம்! இது தமிழ் வாக்கியம்.",
        "สวัสดีชาวโลก นี่คือประโยคภาษาไทย",
        "ສະບາຍດີ ໂລກ",
        "សួស្តីពិភពលោក",
        "မင်္ဂလာပါ ကမ္ဘာ",
        "བཀྲ་ཤིས་བདེ་ལེགས།",
        "Привет, мир! Это предложение на русском языке. Ёлка, щётка, объём.",
        "Привіт, світе! Ґанок, їжак, є.",
        "Γειά σου Κόσμε! Αυτή είναι μια ελληνική πρόταση. ΆΈΉΊΌΎΏ ΐΰ",
        "გამარჯობა მსოფლიო! ეს არის ქართული წინადადება. ᲒᲐᲛᲐᲠᲯᲝᲑᲐ",
        "Բարեւ աշխարհ",
        "ሰላም ዓለም",
        "Xin chào thế giới! Tiếng Việt có nhiều dấu: ắ ằ ẳ ẵ ặ.",
        "Türkçe: İstanbul, ılık, ĞÜŞÖÇ ğüşöç.",
        "Zażółć gęślą jaźń. Łódź.",
        "Größe, Straße, Fußgängerübergänge, ÄÖÜ äöü ß ẞ",
        "Français : élève, garçon, cœur, « guillemets », Noël.",
        "Español: ¿Dónde está el niño? ¡Olé! Año, pingüino.",
        "Íslenska: Þetta er ðrjú. Æ æ Ö ö",
        "فارسی: سلام دنیا. اردو: ہیلو دنیا",
        "ייִדיש: שלום־עליכם",
        "Монгол: Сайн байна уу? ᠮᠣᠩᠭᠣᠯ",
        "ආයුබෝවන් ලෝකය",
        "నమస్కారం ప్రపంచం",
        "ਸਤ ਸ੍ਰੀ ਅਕਾਲ ਦੁਨੀਆ",
        "નમસ્તે વિશ્વ",
        "Ελληνικά and English mixed with 中文 and עברית in one line.",
        "ᚠᚢᚦᚨᚱᚲ ᚷᚹ ᚺᚾᛁᛃ (runes) and 𐌰𐌱𐌲 (Gothic) and 𓀀𓀁 (hieroglyphs)",
        "ℌ𝔢𝔩𝔩𝔬 𝐁𝐨𝐥𝐝 𝘐𝘵𝘢𝘭𝘪𝘤 ＦＵＬＬＷＩＤＴＨ ｆｕｌｌ",
    ]
    # Emoji
    t += [
        "I love pizza 🍕🍕🍕!",
        "Family: 👨‍👩‍👧‍👦 and couple: 👩‍❤️‍👨",
        "Thumbs: 👍👍🏻👍🏼👍🏽👍🏾👍🏿",
        "Flags: 🇺🇸🇬🇧🇯🇵🇩🇪 and 🏴󠁧󠁢󠁳󠁣󠁴󠁿",
        "Keycaps: 1️⃣ 2️⃣ #️⃣ and hearts ❤️ ♥ ❤",
        "🧑🏽‍💻 writes code; 🏳️‍🌈; 🐻‍❄️",
        "😀😃😄😁😆😅🤣😂🙂🙃🫠😉😊😇",
        "New emoji: 🫨 🩷 🪼 🫎 🪿 🫚 🫛 🪭 🪮 🫩 🫆 🪾 🫜 🪉 🪏 🫟",
    ]
    # Combining marks
    t += [
        "cafe\u0301 vs caf\u00e9",
        "a\u0301\u0302\u0303\u0304 b\u0308\u0308",
        "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333!",
        "Vie\u0302\u0323t Nam",
        "\u05e9\u05c1\u05b8\u05dc\u05d5\u05b9\u05dd",
        "\u0915\u094d\u0937 \u0924\u094d\u0930 \u091c\u094d\u091e",
        "\u0301 leading combining mark",
        "x\u20dd \u20e3 \u0489",
    ]
    # White space
    t += [
        "", " ", "  ", "   ", "\n", "\n\n", "\n\n\n\n", "\t", "\t\t\t", "\r\n", "\r\n\r\n", "\r", "\r\r\n\n",
        "a b", "a  b", "a   b", "a    b", "a\tb", "a\t\tb", "a \tb", "a\t b",
        "trailing spaces   ", "trailing newline\n", "space before newline \n", "spaces before newline   \nnext",
        "tabs before newline\t\t\nnext", "   leading spaces", "\n\n   indented after blank lines",
        "line1\r\nline2\r\n\r\nline4", "x  \n  y", "x \n \n \n y", "a\n \nb", "  \n", " \n ",
        "word\n\n\n\n\nword", "end with spaces and newlines  \n\n  ", " " * 17 + "x", "\t" * 9 + "y",
        "\n" * 13, " \t \t \n\t", "a\x0bb\x0cc",
    ]
    # Digits
    t += ["1", "12", "123", "1234", "12345", "123456", "1234567", "12345678", "123456789", "1234567890",
          "12345678901", "123456789012"]
    t += [
        "abc123def4567ghi", "x1y22z333w4444", "3.14159265358979", "1,234,567.89", "2024-01-01T12:34:56Z",
        "v1.2.3-rc4", "0x1F600 0b1010 0o777", "١٢٣٤٥٦٧٨٩٠", "०१२३४५६७८९", "１２３４５６", "x²³ H₂O ½ ¾",
        "Ⅻ Ⅳ ⅻ ① ② ③ ⑩", "+1 (555) 010-9999", "9999999999999999999999", "-42 +7 1e-10 6.02e23",
    ]
    # Contractions and apostrophes
    t += [
        "it's", "IT'S", "It'S", "don't DON'T Don'T", "we're WE'RE We'Re we'rE", "I've I'VE I'Ve",
        "I'm I'M", "you'll YOU'LL You'Ll you'lL", "he'd HE'D", "'s 't 're 've 'm 'll 'd",
        "'S 'T 'RE 'VE 'M 'LL 'D", "'ſ 'ſt it'ſ", "ſ long s ſſ", "'''", "''", "'", "' s", "'sup 'tis",
        "don’t ‘quoted’ “double”", "don`t don´t donʼt", "O'Neil's", "'123 '\n '\t", "rock'n'roll",
        "'x 'll've 'dd 'mm 'ss",
    ]
    # Punctuation runs
    t += [
        "!!!???", "...", "…", "—", "-- --- ----", "=" * 16, "***bold***", "<<>>", "{{ }}", "([{<>}])",
        "@#$%^&*()_+-=[]{}|;:,./<>?", "!!!\n\n", " !!!\r\n", "?!\n\n\nabc", "a.b,c;d:e", "::: ;;; ,,,",
        "«»„“”‘’‚‹›", "、。「」『』【】〈〉《》", "¿¡¡¡!!!", "~~~^^^```",
    ]
    # Unusual white space and format characters
    t += [
        "a\u00a0b", "\u00a0word", "a\u2009b", "a\u3000b\u3000\u3000c", "a\u0085b", "a\u2028b\u2029c",
        "a\u1680b", "a\u202fb\u205fc", "a\u180eb", "a\u200bb", "a\u200db\u200cc", "x\u001c\u001d\u001e\u001fy",
        "\ufeffBOM at start", "soft\u00adhyphen", "rtl \u200fmark\u200e", "\u3000\u3000indented",
        "\u00a0\u00a0\u00a0\n", "a \u00a0 b",
    ]
    # Recent Unicode: 15.0 / 15.1 / 16.0 letters, digits, marks, symbols; and code points that are
    # only assigned in 17.0 (unassigned, class Other, for tiktoken's Unicode 16 tables).
    t += [
        "\U00011f04\U00011f05\U00011f06 Kawi (15.0)",
        "\U0001e030\U0001e031 \U0001e4d0\U0001e4d1\U0001e4f0\U0001e4f1 Nag Mundari digits (15.0)",
        "\U00031350\U00031351\U00031352 CJK Ext H (15.0); \U0002ebf0\U0002ebf1 Ext I (15.1)",
        "\U000105c0\U000105c1\U000105c2 Todhri (16.0)",
        "\U00010d4a\U00010d4b\U00010d40\U00010d41 Garay (16.0)",
        "\U00016d43\U00016d44\U00016d70\U00016d71\U00016d72 Kirat Rai letters and digits (16.0)",
        "\U0001e5d0\U0001e5d1\U0001e5f1\U0001e5f2 Ol Onal (16.0)",
        "\U00011380\U00011381\U000113b8 Tulu-Tigalari (16.0)",
        "\U0001ccf0\U0001ccf1\U0001ccf2 outlined digits (16.0) \U0001fbf0",
        "\U00010940\U00010941 \U0001e6c0\U0001e6c1 \U00011db0 (17.0, unassigned in 16)",
        "abc\U00010940def \U0001e6c0123",
        "\U0001fae9\U0001fa89\U0001fadf emoji 16, \U0001f6dc emoji 15, \U0001faea emoji 17",
        "private use \ue000\uf8ff and \U000f0000, noncharacters \ufdd0 \uffff \U0010ffff",
        "replacement \ufffd\ufffd and \x00 NUL \x01\x02\x7f DEL",
    ]
    # Special-token text (plain text for llama3_ids, special tokens for llama3_special_ids)
    t += [
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        "<|begin_of_text|>plain",
        "text then <|end_of_text|>",
        "<|eot_id|><|eot_id|>  <|eot_id|>\n",
        "<|python_tag|>print(1)<|eom_id|>",
        "<|finetune_right_pad_id|><|step_id|><|reserved_special_token_0|><|reserved_special_token_1|>",
        "<|reserved_special_token_246|> is the last; <|reserved_special_token_247|> is not special",
        "<|EOT_ID|> <|eot_id <eot_id|> <|eot_id|",
        "<|<|eot_id|>|>",
        "a<|start_header_id|>b<|end_header_id|>c",
    ]
    # Long pieces (heap merge path and beyond): one pre-token of hundreds of bytes
    rng = random.Random(1234)
    letters = "abcdefghijklmnopqrstuvwxyz"
    t += [
        "a" * 300,
        "=" * 200,
        "1234567890" * 30,
        "".join(rng.choice(letters) for _ in range(500)),
        "".join(rng.choice(letters + letters.upper()) for _ in range(257)),
        "中华人民共和国国务院办公厅关于进一步加强和改进新形势下人民调解工作的意见" * 6,
        "https://example.com/" + "/".join("segment%d" % i for i in range(60)),
        base64.b64encode(bytes(rng.randrange(256) for _ in range(300))).decode(),
        "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft" * 4,
        " " * 300 + "x",
        "\n" * 100 + "x",
        "ab" * 200,
    ]
    t += data_texts()
    return t


# --- reference ids ---------------------------------------------------------------------------------

def read_tiktoken(path):
    with open(path, "rb") as f:
        return {base64.b64decode(tok): int(rank) for tok, rank in (l.split() for l in f.read().splitlines() if l)}


def write_ids(name, sha, ids):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"texts_sha256": "%s",\n "ids": [\n' % sha)
        f.write(",\n".join("  " + json.dumps(x, separators=(",", ":")) for x in ids))
        f.write("\n]}\n")
    print(f"wrote {os.path.relpath(path, ROOT)}")


def llama3_encoding():
    import tiktoken
    ranks = read_tiktoken(os.path.join(DATA, "tokenizers", "llama3", "tokenizer.model"))
    return tiktoken.Encoding(name="llama3", pat_str=LLAMA3_PAT, mergeable_ranks=ranks,
                             special_tokens=llama3_special_tokens(len(ranks))), ranks


def train_tiny_bpe(path):
    """~1000-token byte-level BPE with LLaMA-3's pre-tokenizer, exactly as Meta-Llama-3's
    tokenizer.json configures it."""
    os.environ["RAYON_NUM_THREADS"] = "1"
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PAT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                "<|eot_id|>"]
    trainer = trainers.BpeTrainer(vocab_size=1000, min_frequency=2, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = []
    with open(os.path.join(DATA, "unlabeled", "tinyshakespeare.txt"), encoding="utf-8") as f:
        corpus += f.read()[:300000].split("\n\n")
    with open(os.path.join(DATA, "unlabeled", "wiki_demo.txt"), encoding="utf-8") as f:
        corpus += f.read()[:300000].split(". ")
    corpus += texts()[:120]
    tok.train_from_iterator(corpus, trainer=trainer)
    # Added tokens beyond the trained specials: a special one with lstrip, plain (non-special) ones,
    # one of them with a space (outside the byte-level alphabet: it decodes as its UTF-8 text).
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, rstrip=False, special=True, normalized=False)])
    tok.add_tokens([AddedToken("<tool_call>", special=False), AddedToken("hello world", special=False),
                    AddedToken("</tool_call>", special=False, rstrip=True)])
    tok.save(path)
    with open(path, encoding="utf-8") as f:
        j = json.load(f)
    # The saved pre_tokenizer/decoder must be exactly what LLaMA-3's tokenizer.json has.
    assert j["model"]["ignore_merges"] is True, j["model"]
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")


def check_hf_conversion(all_texts, enc, ranks, keep):
    """tiktoken file -> HF tokenizer.json (as transformers converts it); its ids must be tiktoken's."""
    from tokenizers import Tokenizer
    from transformers.convert_slow_tokenizer import TikTokenConverter
    specials = llama3_special_tokens(len(ranks))
    conv = TikTokenConverter(vocab_file=os.path.join(DATA, "tokenizers", "llama3", "tokenizer.model"),
                             pattern=LLAMA3_PAT, additional_special_tokens=list(specials))
    tok = conv.converted()
    if not tok.get_added_tokens_decoder():  # transformers 5.x leaves the specials out: add them in id order
        from tokenizers import AddedToken
        tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    j = json.loads(tok.to_str())
    for a in j["added_tokens"]:
        assert specials[a["content"]] == a["id"], a
    j["model"]["ignore_merges"] = True  # as Meta-Llama-3's tokenizer.json
    tok = Tokenizer.from_str(json.dumps(j))
    bad = 0
    for text in all_texts:
        want = enc.encode(text, allowed_special="all")
        got = tok.encode(text, add_special_tokens=False).ids
        if got != want:
            bad += 1
            if bad <= 3:
                print(f"  HF conversion mismatch on {text[:60]!r}: {got[:12]} vs {want[:12]}")
        tok.encode_special_tokens = True
        got = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = False
        if got != enc.encode(text, disallowed_special=()):
            bad += 1
    print(f"HF tokenizer.json converted from the tiktoken file: {bad} mismatches vs tiktoken over "
          f"{2 * len(all_texts)} encodings (added tokens on and off); "
          f"{len(j['model']['merges'])} merges, ignore_merges={j['model']['ignore_merges']}")
    if keep:
        tok.save(keep)
        print(f"kept {keep} (for MT_LLAMA3_TOKENIZER_JSON)")
    return bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--retrain-tiny", action="store_true", help="retrain tiny_bpe/tokenizer.json")
    ap.add_argument("--keep-llama3-json", metavar="PATH", help="save the converted LLaMA-3 tokenizer.json")
    ap.add_argument("--skip-hf-check", action="store_true")
    args = ap.parse_args()
    os.makedirs(os.path.join(OUT, "tiny_bpe"), exist_ok=True)

    all_texts = texts()
    assert len(all_texts) >= 150, len(all_texts)
    path = os.path.join(OUT, "texts.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"about": "tokenizer parity texts; made by scripts/make_tokenizer_vectors.py",\n "texts": [\n')
        f.write(",\n".join("  " + json.dumps(x, ensure_ascii=False) for x in all_texts))
        f.write("\n]}\n")
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    print(f"wrote {os.path.relpath(path, ROOT)}: {len(all_texts)} texts")

    enc, ranks = llama3_encoding()
    write_ids("llama3_ids.json", sha, [enc.encode(x, disallowed_special=()) for x in all_texts])
    write_ids("llama3_special_ids.json", sha, [enc.encode(x, allowed_special="all") for x in all_texts])

    import sentencepiece as spm
    for name in ("llama2", "mistral", "mistral-v3"):
        sp = spm.SentencePieceProcessor(model_file=os.path.join(DATA, "tokenizers", name, "tokenizer.model"))
        write_ids(f"{name}_ids.json", sha, [sp.encode(x) for x in all_texts])

    tiny = os.path.join(OUT, "tiny_bpe", "tokenizer.json")
    if args.retrain_tiny or not os.path.exists(tiny):
        train_tiny_bpe(tiny)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tiny)
    write_ids("tiny_bpe_ids.json", sha, [tok.encode(x, add_special_tokens=False).ids for x in all_texts])
    tok.encode_special_tokens = True
    write_ids("tiny_bpe_nospecial_ids.json", sha, [tok.encode(x, add_special_tokens=False).ids for x in all_texts])

    if not args.skip_hf_check:
        if check_hf_conversion(all_texts, enc, ranks, args.keep_llama3_json):
            sys.exit(1)


if __name__ == "__main__":
    main()
