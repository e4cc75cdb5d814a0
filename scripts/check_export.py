#!/usr/bin/env python3
"""Checks that a Hugging Face model directory written by our trainer (its `final/`) loads in
transformers and gives the same logits as our C++ code.

    python scripts/check_export.py MODEL_DIR EXPECTED.safetensors [--atol 1e-4] [--attn eager|sdpa]

EXPECTED.safetensors holds `input_ids` (int64 [B,S]) and `logits` (fp32 [B,S,V]) computed by our
C++ code on the same weights. The model is loaded with AutoModelForCausalLM.from_pretrained in
float32, put in eval mode, run on input_ids (no attention mask, on the CPU), and its logits are
compared by max absolute difference. Weights missing from the checkpoint also fail the check
(transformers would initialise them at random and only warn). If the file also holds `token_nll`
(fp32 [B,S-1], the next-token negative log-likelihood) its max difference is reported too, for
information only.
The tokenizer is loaded with AutoTokenizer when tokenizer files are present; its absence is not
an error.

Prints one JSON line {"max_abs_diff", "ok", "model_type", "num_params", "tokenizer_loaded", ...}.
Exit status: 0 when ok (max_abs_diff <= atol), 1 when not, 2 when the directory or the expected
file is missing or cannot be loaded.
"""
import argparse
import json
import math
import os
import sys

import torch
from safetensors.torch import load_file

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json",
                   "spiece.model")


def fail(msg, code=2):
    print(f"check_export: {msg}", file=sys.stderr)
    sys.exit(code)


def load_model(model_dir, attn):
    from transformers import AutoModelForCausalLM
    kw = dict(attn_implementation=attn, output_loading_info=True)
    try:
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **kw)
    except TypeError:  # transformers 4.x spells it torch_dtype
        return AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, **kw)


def load_tokenizer(model_dir):
    """(loaded, error message or None); not attempted when no tokenizer file is there."""
    if not any(os.path.isfile(os.path.join(model_dir, f)) for f in TOKENIZER_FILES):
        return False, None
    from transformers import AutoTokenizer
    try:
        AutoTokenizer.from_pretrained(model_dir)
        return True, None
    except Exception as e:
        return False, f"{type(e).__name__}: {str(e).strip()[:300]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("expected", help="safetensors file with input_ids and logits")
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--attn", choices=["eager", "sdpa"], default="eager")
    a = ap.parse_args()

    if not os.path.isdir(a.model_dir):
        fail(f"{a.model_dir}: no such directory")
    if not os.path.isfile(os.path.join(a.model_dir, "config.json")):
        fail(f"{a.model_dir}: no config.json")
    try:
        expected = load_file(a.expected)
    except Exception as e:
        fail(f"{a.expected}: cannot load: {type(e).__name__}: {e}")
    for k in ("input_ids", "logits"):
        if k not in expected:
            fail(f"{a.expected}: no tensor {k!r} (has {', '.join(sorted(expected))})")
    input_ids = expected["input_ids"].to(torch.int64)
    exp_logits = expected["logits"].to(torch.float32)
    if input_ids.dim() == 1:
        input_ids = input_ids.unsqueeze(0)
        exp_logits = exp_logits.unsqueeze(0) if exp_logits.dim() == 2 else exp_logits

    try:
        model, info = load_model(a.model_dir, a.attn)
    except Exception as e:
        fail(f"{a.model_dir}: cannot load the model: {type(e).__name__}: {str(e).strip()[:1000]}")
    model.eval()
    num_params = sum(p.numel() for p in model.parameters())  # tied weights counted once
    tok_loaded, tok_err = load_tokenizer(a.model_dir)

    with torch.no_grad():
        logits = model(input_ids=input_ids, use_cache=False).logits.float()

    res = {"model_type": getattr(model.config, "model_type", None), "num_params": num_params,
           "tokenizer_loaded": tok_loaded}
    if tok_err:
        res["tokenizer_error"] = tok_err
    # weights the checkpoint lacks are randomly initialised by transformers (with only a warning)
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        v = (info or {}).get(k)
        if v:
            res[k] = sorted(str(x) for x in v)[:50]
    if logits.shape != exp_logits.shape:
        res.update(max_abs_diff=None, ok=False,
                   error=f"logits shape {list(logits.shape)} != expected {list(exp_logits.shape)}")
    else:
        diff = (logits - exp_logits).abs().max().item()
        finite = bool(torch.isfinite(logits).all()) and not math.isnan(diff)
        res.update(max_abs_diff=diff,
                   ok=finite and diff <= a.atol and not res.get("missing_keys"))
        if "token_nll" in expected:
            lp = torch.log_softmax(logits[:, :-1], dim=-1)
            nll = -lp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
            exp_nll = expected["token_nll"].to(torch.float32)
            if nll.shape == exp_nll.shape:
                res["token_nll_max_abs_diff"] = (nll - exp_nll).abs().max().item()
    res["atol"] = a.atol
    res = {k: res[k] for k in ("max_abs_diff", "ok", "model_type", "num_params") if k in res} | res
    print(json.dumps(res), flush=True)
    sys.exit(0 if res["ok"] else 1)


if __name__ == "__main__":
    main()
