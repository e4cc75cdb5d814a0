"""PyTorch's own AdamW and clip_grad_norm_ on a scenario written by tests/test_optimizer.cpp.

usage: adamw_reference.py INPUT.safetensors CONFIG.json OUTPUT.safetensors OUTPUT.json

For each scenario S named in CONFIG (one process for all: importing torch is the slow part),
INPUT holds "S.param.<name>" (initial values) and "S.grad.<step>.<name>"; CONFIG names the
parameters in order, the per-step lr, betas, eps, weight decay and max_norm. Each step sets the
grads, clips them with torch.nn.utils.clip_grad_norm_ and steps torch.optim.AdamW with two groups
(weight decay for tensors with >= 2 dims, none for the rest), once with fused=False (the
single-tensor path) and once with fused=True. OUTPUT gets "S.<mode>.param|exp_avg|exp_avg_sq.<name>"
for mode reference and fused; OUTPUT.json the norms clip_grad_norm_ returned, as {S: {mode: [...]}}.
"""
import json
import sys

import torch
from safetensors.torch import load_file, save_file


def run(inputs, cfg, scenario, fused):
    names = cfg["names"]
    params = {n: inputs[f"{scenario}.param.{n}"].clone().requires_grad_(True) for n in names}
    decay = [params[n] for n in names if params[n].dim() >= 2]
    no_decay = [params[n] for n in names if params[n].dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg["lr"][0], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
        fused=fused, foreach=None if fused else False)
    norms = []
    for step, lr in enumerate(cfg["lr"]):
        for n in names:
            params[n].grad = inputs[f"{scenario}.grad.{step}.{n}"].clone()
        norms.append(torch.nn.utils.clip_grad_norm_([params[n] for n in names], cfg["max_norm"]).item())
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
    prefix = f"{scenario}.{'fused' if fused else 'reference'}"
    out = {}
    for n in names:
        state = opt.state[params[n]]
        out[f"{prefix}.param.{n}"] = params[n].detach().clone()
        out[f"{prefix}.exp_avg.{n}"] = state["exp_avg"].clone()
        out[f"{prefix}.exp_avg_sq.{n}"] = state["exp_avg_sq"].clone()
    return out, norms


def main():
    in_path, cfg_path, out_path, out_json = sys.argv[1:5]
    inputs = load_file(in_path)
    with open(cfg_path) as f:
        cfg = json.load(f)
    tensors, norms = {}, {}
    for scenario in cfg["scenarios"]:
        norms[scenario] = {}
        for fused in (False, True):
            out, n = run(inputs, cfg, scenario, fused)
            tensors.update(out)
            norms[scenario]["fused" if fused else "reference"] = n
    save_file(tensors, out_path)
    with open(out_json, "w") as f:
        json.dump(norms, f)


if __name__ == "__main__":
    main()
