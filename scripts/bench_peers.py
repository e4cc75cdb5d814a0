#!/usr/bin/env python3
"""Peer side of the training speed benchmark: HF transformers training steps on the same named
LLaMA shapes that `maintune bench` uses, one JSON line per (shape, mode) configuration.

The model is a LlamaForCausalLM with random weights (seeded). Each step is what our trainer does
by default:

  * mixed precision (--precision mixed, the default): fp32 master weights, forward and backward
    under torch.autocast(device_type, dtype=torch.bfloat16); --precision pure_bf16 instead casts
    the model to bfloat16 and runs without autocast; --dtype fp32 runs everything in fp32 (no
    autocast; "precision" is then reported as "fp32");
  * loss: causal LM cross-entropy over all tokens (labels = input_ids, the model shifts them);
  * AdamW(lr 1e-5, betas (0.9, 0.95), weight_decay 0.0, fused=True on CUDA);
  * clip_grad_norm_(1.0), optimizer.step(), zero_grad(set_to_none=True).

Token ids are random, drawn from a seeded generator, a fresh batch per step (all made before the
clock starts). --warmup steps run untimed (they include torch.compile's compilation in compile
mode), then --steps steps are timed between two torch.cuda.synchronize() calls (time.perf_counter
on the CPU).

Reported per configuration: tokens_per_s = batch*seq*steps / time, step_ms, peak_mem_bytes
(torch.cuda.max_memory_allocated() after reset_peak_memory_stats() before the warmup; on the CPU
the process's max RSS, which never goes down, with "peak_mem_kind": "rss"), mfu, flops_per_token,
loss_first / loss_last (first warmup-or-timed step and last timed step), versions and device.
A configuration that runs out of memory reports {"error": "oom"} and the run goes on; any other
failure (e.g. torch.compile unsupported here) reports {"error": "..."} and goes on too.

Side by side with our trainer on the GPU machine (same shape, batch, seq, steps, warmup):

    build/maintune bench --shape llama3-1b --batch 8 --seq 2048 --steps 20 --warmup 3
    python scripts/bench_peers.py --shape llama3-1b --batch 8 --seq 2048 --steps 20 --warmup 3 \\
        --mode both --output bench_peers.jsonl

CPU smoke run:

    python scripts/bench_peers.py --shape tiny --device cpu --dtype fp32 --batch 2 --seq 64 \\
        --steps 3 --warmup 1 --mode eager
"""
import argparse
import gc
import json
import platform
import resource
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, LlamaConfig

# Named shapes, as in `maintune bench`. RoPE is plain (rope_type "default") with theta 500000: the
# llama3 frequency scaling of the released checkpoints changes only the inverse frequencies, not the
# cost of a step.
SHAPES = {
    # LLaMA-3.2-1B (ties lm_head to the embedding)
    "llama3-1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
                      num_key_value_heads=8, intermediate_size=8192, vocab_size=128256,
                      head_dim=64, tie_word_embeddings=True),
    # LLaMA-3.2-3B (tied)
    "llama3-3b": dict(hidden_size=3072, num_hidden_layers=28, num_attention_heads=24,
                      num_key_value_heads=8, intermediate_size=8192, vocab_size=128256,
                      head_dim=128, tie_word_embeddings=True),
    # LLaMA-3.1-8B (untied)
    "llama3-8b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8, intermediate_size=14336, vocab_size=128256,
                      head_dim=128, tie_word_embeddings=False),
    # for CPU smoke runs
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, intermediate_size=128, vocab_size=1000,
                 head_dim=16, tie_word_embeddings=False),
}

ROPE_THETA = 500000.0

# Peak dense bf16 FLOP/s of an H100/H200 SXM by the datasheet: 989 TFLOP/s. (A plain bf16 matmul
# measured on our H200 reaches about 799 TFLOP/s, so an MFU of ~0.8 here is the practical ceiling.)
DEFAULT_PEAK_TFLOPS = 989.0


def make_config(shape, attn):
    kw = dict(SHAPES[shape])
    return LlamaConfig(
        **kw,
        hidden_act="silu",
        rms_norm_eps=1e-5,
        max_position_embeddings=131072,
        rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA},
        attention_bias=False,
        mlp_bias=False,
        use_cache=False,
        attn_implementation=attn,
    )


def matmul_params(cfg):
    """Parameters that take part in matmuls: per layer q, k, v, o and the three MLP projections,
    plus lm_head (counted even when tied to the embedding: the matmul happens either way). The
    embedding lookup and the RMSNorm weights are left out."""
    h, hd = cfg.hidden_size, cfg.head_dim
    q = h * cfg.num_attention_heads * hd
    kv = 2 * h * cfg.num_key_value_heads * hd
    o = cfg.num_attention_heads * hd * h
    mlp = 3 * h * cfg.intermediate_size
    return cfg.num_hidden_layers * (q + kv + o + mlp) + cfg.vocab_size * h


def flops_per_token(cfg, seq):
    """Model FLOPs per token of a training step (forward + backward), PaLM convention (Chowdhery et
    al. 2022, appendix B): 6*N + 12*L*H*S, with N = matmul_params(cfg) and the attention term
    12 * n_layers * (n_heads*head_dim) * seq for QK^T and AV, *not* halved for the causal mask.
    No recomputation is counted (activation checkpointing lowers MFU, as it should)."""
    attn_width = cfg.num_attention_heads * cfg.head_dim
    return 6 * matmul_params(cfg) + 12 * cfg.num_hidden_layers * attn_width * seq


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def is_oom(e):
    if isinstance(e, torch.OutOfMemoryError):
        return True
    return isinstance(e, RuntimeError) and "out of memory" in str(e).lower()


def run_config(a, shape, mode, device):
    """One configuration; returns the result dict (raises on failure)."""
    cfg = make_config(shape, a.attn)
    bf16 = a.dtype == "bf16"
    precision = a.precision if bf16 else "fp32"
    torch.manual_seed(a.seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(a.seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32,
                                                 attn_implementation=a.attn)
    if precision == "pure_bf16":
        model = model.to(torch.bfloat16)
    model.train()
    if a.activation_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    n_params = sum(p.numel() for p in model.parameters())  # tied weights counted once

    opt_kw = dict(lr=1e-5, betas=(0.9, 0.95), weight_decay=0.0)
    if device.type == "cuda":
        opt_kw["fused"] = True
    optimizer = torch.optim.AdamW(model.parameters(), **opt_kw)

    fwd = torch.compile(model) if mode == "compile" else model
    use_autocast = precision == "mixed"

    gen = torch.Generator().manual_seed(a.seed)
    total = a.warmup + a.steps
    batches = [torch.randint(0, cfg.vocab_size, (a.batch, a.seq), generator=gen).to(device)
               for _ in range(total)]

    def step(ids):
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_autocast):
            loss = fwd(input_ids=ids, labels=ids, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    losses = []
    for i in range(a.warmup):
        losses.append(step(batches[i]))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for i in range(a.warmup, total):
        losses.append(step(batches[i]))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dt = time.perf_counter() - t0

    if device.type == "cuda":
        peak_mem, peak_kind = torch.cuda.max_memory_allocated(device), "cuda_max_allocated"
    else:
        peak_mem, peak_kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "rss"

    tokens = a.batch * a.seq * a.steps
    tps = tokens / dt
    fpt = flops_per_token(cfg, a.seq)
    return {
        "peer": "hf_" + mode,
        "shape": shape,
        "batch": a.batch,
        "seq": a.seq,
        "steps": a.steps,
        "warmup": a.warmup,
        "dtype": a.dtype,
        "precision": precision,
        "attn": a.attn,
        "activation_checkpointing": bool(a.activation_checkpointing),
        "tokens_per_s": tps,
        "step_ms": dt * 1000.0 / a.steps,
        "peak_mem_bytes": int(peak_mem),
        "peak_mem_kind": peak_kind,
        # A CPU has no meaningful dense-bf16 peak: MFU only where a GPU peak applies (as maintune bench).
        "mfu": tps * fpt / (a.peak_tflops * 1e12) if a.peak_tflops else None,
        "flops_per_token": fpt,
        "flops_convention": "6N+12LHS (PaLM, attention not halved for causal)",
        "peak_tflops": a.peak_tflops,
        "num_params": n_params,
        "matmul_params": matmul_params(cfg),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "device_name": device_name(device),
        "loss_first": losses[0].float().item(),
        "loss_last": losses[-1].float().item(),
    }


def parse_shapes(values):
    out = []
    for v in values or ["llama3-1b"]:
        for s in v.split(","):
            s = s.strip()
            if not s:
                continue
            if s not in SHAPES:
                sys.exit(f"unknown shape {s!r}; known: {', '.join(SHAPES)}")
            out.append(s)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", action="append",
                    help=f"repeatable or comma list; one of {', '.join(SHAPES)} (default llama3-1b)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before the timed ones")
    ap.add_argument("--mode", choices=["eager", "compile", "both"], default="eager")
    ap.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--precision", choices=["mixed", "pure_bf16"], default="mixed",
                    help="with --dtype bf16: mixed = fp32 weights + bf16 autocast (our default), "
                         "pure_bf16 = bf16 weights, no autocast")
    ap.add_argument("--device", choices=["cuda", "cpu"],
                    default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--attn", choices=["sdpa", "eager"], default="sdpa")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--activation-checkpointing", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="peak FLOP/s for MFU, in TFLOP/s (default on CUDA 989: H100/H200 dense bf16; "
                         "on CPU none, and mfu is null)")
    ap.add_argument("--output", help="also append the JSON lines to this file")
    a = ap.parse_args()
    if a.peak_tflops is None and a.device == "cuda":
        a.peak_tflops = DEFAULT_PEAK_TFLOPS
    if a.steps < 1 or a.warmup < 0 or a.batch < 1 or a.seq < 2:
        ap.error("need --steps >= 1, --warmup >= 0, --batch >= 1, --seq >= 2")

    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda but CUDA is not available (use --device cpu)")
    shapes = parse_shapes(a.shape)
    modes = ["eager", "compile"] if a.mode == "both" else [a.mode]
    out = open(a.output, "a") if a.output else None

    for shape in shapes:
        for mode in modes:
            err = None
            try:
                res = run_config(a, shape, mode, device)
            except Exception as e:  # keep going with the next configuration
                err = "oom" if is_oom(e) else f"{type(e).__name__}: {str(e).strip()[:500]}"
            if err is not None:
                res = {"peer": "hf_" + mode, "shape": shape, "batch": a.batch, "seq": a.seq,
                       "steps": a.steps, "dtype": a.dtype,
                       "precision": a.precision if a.dtype == "bf16" else "fp32",
                       "error": err, "torch_version": torch.__version__,
                       "transformers_version": transformers.__version__,
                       "device_name": device_name(device)}
            # free the model, optimizer state and compiled graphs before the next configuration
            gc.collect()
            if mode == "compile":
                torch._dynamo.reset()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            line = json.dumps(res)
            print(line, flush=True)
            if out:
                out.write(line + "\n")
                out.flush()
    if out:
        out.close()


if __name__ == "__main__":
    main()
