#!/usr/bin/env python3
"""Checks that an exported model directory (a run's `final/`) renders chats in transformers as
maintune trained on them, and stops where the model learned to.

    python scripts/check_chat_export.py MODEL_DIR CASES.json

CASES.json: [{"name", "messages": [{"role", "content"}...], "add_generation_prompt": bool,
"ids": [...]}, ...] where "ids" are maintune's render_chat ids for the conversation. The tokenizer
is loaded with AutoTokenizer.from_pretrained(MODEL_DIR) and each conversation rendered with
apply_chat_template(messages, tokenize=True, add_generation_prompt=...); the generation config
with GenerationConfig.from_pretrained(MODEL_DIR).

Prints one JSON line {"ok", "tokenizer_class", "chat_template_from_jinja", "eos_token_id",
"cases": [{"name", "equal", "text_equal", "hf_ids"?}]}: "equal" compares ids, "text_equal" the
texts transformers decodes both id lists to (hf_ids only when they differ).
Exit status: 0 when every case is equal, 1 when not, 2 when something cannot be loaded.
"""
import json
import os
import sys


def fail(msg):
    print(f"check_chat_export: {msg}", file=sys.stderr)
    sys.exit(2)


def main():
    if len(sys.argv) != 3:
        fail("usage: check_chat_export.py MODEL_DIR CASES.json")
    model_dir, cases_file = sys.argv[1], sys.argv[2]
    from transformers import AutoTokenizer, GenerationConfig
    try:
        with open(cases_file, encoding="utf-8") as f:
            cases = json.load(f)
        tok = AutoTokenizer.from_pretrained(model_dir)
        gen = GenerationConfig.from_pretrained(model_dir)
    except Exception as e:
        fail(f"{model_dir}: cannot load: {type(e).__name__}: {str(e).strip()[:1000]}")
    jinja_path = os.path.join(model_dir, "chat_template.jinja")
    from_jinja = os.path.isfile(jinja_path) and open(jinja_path, encoding="utf-8").read() == tok.chat_template
    out = []
    for c in cases:
        try:
            r = tok.apply_chat_template(c["messages"], tokenize=True,
                                        add_generation_prompt=c.get("add_generation_prompt", False))
        except Exception as e:
            fail(f"case {c['name']}: apply_chat_template failed: {type(e).__name__}: {e}")
        ids = list(r["input_ids"] if not isinstance(r, list) else r)
        res = {"name": c["name"], "equal": ids == c["ids"],
               "text_equal": tok.decode(ids) == tok.decode(c["ids"])}
        if not res["equal"]:
            res["hf_ids"] = ids
        out.append(res)
    ok = all(r["equal"] for r in out)
    eos = gen.eos_token_id
    print(json.dumps({"ok": ok, "tokenizer_class": type(tok).__name__, "chat_template_from_jinja": from_jinja,
                      "eos_token_id": eos if isinstance(eos, list) or eos is None else [eos], "cases": out}),
          flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
