"""Generate the golden-parity fixtures for maintune's tests.

Writes three tiny, randomly initialised HF models (fp32, CPU, eager attention)
built with transformers' own classes, plus reference outputs computed by
transformers itself:

  llama3/   LlamaForCausalLM, GQA, llama3 rope scaling, sharded safetensors
  mistral/  MistralForCausalLM, sliding_window=8 (< test sequence length 24)
  qwen2/    Qwen2ForCausalLM, q/k/v bias, tied embeddings

Each model dir gets config.json, generation_config.json, the safetensors
weights, expected.safetensors (input_ids [2,24] int64, logits [2,24,256] f32,
token_nll [2,23] f32) and expected_generate.json (greedy continuations of three
prompts, new tokens only).  VERSIONS.txt records the torch/transformers used.

Run (with the venv holding torch 2.11.0 + transformers 5.17.0):
    python scripts/make_fixtures.py --out tests/fixtures
"""

import argparse
import copy
import json
import os
import shutil

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

VOCAB = 256
SEQ = 24
BATCH = 2
PROMPT_LENS = (5, 11, 3)
MAX_NEW = 10

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    attn_implementation="eager",
)


def llama3_config():
    return LlamaConfig(
        **COMMON,
        rope_parameters=dict(
            rope_type="llama3",
            rope_theta=500000.0,
            factor=8.0,
            low_freq_factor=1.0,
            high_freq_factor=4.0,
            original_max_position_embeddings=64,
        ),
        tie_word_embeddings=False,
    )


def mistral_config():
    return MistralConfig(
        **COMMON,
        rope_parameters=dict(rope_type="default", rope_theta=10000.0),
        sliding_window=8,
        tie_word_embeddings=False,
    )


def qwen2_config():
    return Qwen2Config(
        **COMMON,
        rope_parameters=dict(rope_type="default", rope_theta=1000000.0),
        use_sliding_window=False,
        tie_word_embeddings=True,
    )


# name, config factory, model class, param-init seed, data seed, save kwargs
MODELS = [
    ("llama3", llama3_config, LlamaForCausalLM, 1001, 2001, dict(max_shard_size="200KB")),
    ("mistral", mistral_config, MistralForCausalLM, 1002, 2002, {}),
    ("qwen2", qwen2_config, Qwen2ForCausalLM, 1003, 2003, {}),
]


def build(cfg, cls, seed):
    torch.manual_seed(seed)
    model = cls(cfg).to(torch.float32)
    with torch.no_grad():
        # named_parameters() de-duplicates tied weights (qwen2 lm_head == embed_tokens).
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(1.0, 0.1)
            else:
                p.normal_(0.0, 0.2)
    model.eval()
    return model


def greedy_config():
    return GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=MAX_NEW,
        min_new_tokens=MAX_NEW,
        eos_token_id=None,  # never stop early, never suppress any token
        pad_token_id=0,
        bos_token_id=None,
        repetition_penalty=1.0,
        temperature=None,
        top_k=None,
        top_p=None,
    )


@torch.no_grad()
def manual_greedy(model, prompt):
    """Reference argmax loop without KV cache; also returns the smallest top1-top2 margin."""
    ids = torch.tensor([prompt], dtype=torch.int64)
    out, margin = [], float("inf")
    for _ in range(MAX_NEW):
        logits = model(ids, use_cache=False).logits[0, -1]
        top2 = torch.topk(logits, 2).values
        margin = min(margin, (top2[0] - top2[1]).item())
        nxt = int(torch.argmax(logits))
        out.append(nxt)
        ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return out, margin


@torch.no_grad()
def make_one(out_dir, name, cfg_fn, cls, seed, data_seed, save_kwargs):
    d = os.path.join(out_dir, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)

    model = build(cfg_fn(), cls, seed)
    model.generation_config = greedy_config()
    model.save_pretrained(d, safe_serialization=True, **save_kwargs)
    model.generation_config.save_pretrained(d)

    g = torch.Generator().manual_seed(data_seed)
    input_ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=g, dtype=torch.int64)
    prompts = [torch.randint(0, VOCAB, (n,), generator=g, dtype=torch.int64).tolist() for n in PROMPT_LENS]

    logits = model(input_ids).logits.float()
    token_nll = F.cross_entropy(
        logits[:, :-1].reshape(-1, VOCAB), input_ids[:, 1:].reshape(-1), reduction="none"
    ).view(BATCH, SEQ - 1)
    save_file(
        {"input_ids": input_ids.contiguous(), "logits": logits.contiguous(), "token_nll": token_nll.contiguous()},
        os.path.join(d, "expected.safetensors"),
    )

    greedy = []
    for p in prompts:
        ids = torch.tensor([p], dtype=torch.int64)
        gen = model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=greedy_config())
        new = gen[0, len(p):].tolist()
        assert len(new) == MAX_NEW, (name, new)
        greedy.append(new)
    with open(os.path.join(d, "expected_generate.json"), "w") as f:
        json.dump({"prompts": prompts, "max_new_tokens": MAX_NEW, "greedy": greedy}, f)
        f.write("\n")

    # --- self-checks -------------------------------------------------------
    report = {}
    reloaded = cls.from_pretrained(d, attn_implementation="eager", dtype=torch.float32).eval()
    report["reload_max_abs_diff"] = (reloaded(input_ids).logits - logits).abs().max().item()
    margins = []
    for p, gnew in zip(prompts, greedy):
        ref, m = manual_greedy(reloaded, p)
        assert ref == gnew, (name, ref, gnew)
        margins.append(m)
    report["greedy_min_top1_top2_margin"] = min(margins)
    report["token_nll_mean"] = token_nll.mean().item()

    if name == "mistral":
        cfg = copy.deepcopy(model.config)
        cfg.sliding_window = None
        full = cls(cfg).eval()
        full.load_state_dict(model.state_dict())
        lf = full(input_ids).logits
        w = model.config.sliding_window
        report["no_window_diff_pos_lt_window"] = (lf[:, :w] - logits[:, :w]).abs().max().item()
        report["no_window_diff_pos_ge_window"] = (lf[:, w:] - logits[:, w:]).abs().max().item()
    if name == "llama3":
        cfg = copy.deepcopy(model.config)
        cfg.rope_parameters = {"rope_type": "default", "rope_theta": cfg.rope_parameters["rope_theta"]}
        plain = cls(cfg).eval()
        plain.load_state_dict(model.state_dict())
        report["inv_freq_scaled"] = model.model.rotary_emb.inv_freq.tolist()
        report["inv_freq_unscaled"] = plain.model.rotary_emb.inv_freq.tolist()
        report["no_scaling_logits_max_abs_diff"] = (plain(input_ids).logits - logits).abs().max().item()
        shards = sorted(f for f in os.listdir(d) if f.startswith("model-") and f.endswith(".safetensors"))
        assert os.path.exists(os.path.join(d, "model.safetensors.index.json")) and 2 <= len(shards) <= 4, shards
        report["shards"] = shards
    if name == "qwen2":
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        report["q_bias_abs_mean"] = model.model.layers[0].self_attn.q_proj.bias.abs().mean().item()
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="tests/fixtures")
    args = ap.parse_args()
    torch.set_num_threads(1)  # reproducible CPU reductions
    os.makedirs(args.out, exist_ok=True)
    for name, cfg_fn, cls, seed, data_seed, save_kwargs in MODELS:
        rep = make_one(args.out, name, cfg_fn, cls, seed, data_seed, save_kwargs)
        print(name, json.dumps(rep))
    with open(os.path.join(args.out, "VERSIONS.txt"), "w") as f:
        f.write(f"torch {torch.__version__}\ntransformers {transformers.__version__}\n")


if __name__ == "__main__":
    main()
