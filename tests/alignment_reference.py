"""Straightforward PyTorch reference of the alignment scorer's losses (trainer/engine/alignment.h).

usage: alignment_reference.py IN.safetensors OUT.safetensors

IN holds hidden_instr [N, L, H], valid_instr [N, L] (uint8), hidden_resp, valid_resp, proj_instr
[D, H], proj_resp [D, H], logit_scale [] and signal [N] (NaN = no signal), all fp64 except the
masks. For each pooling (mean, last) and each loss (infonce, direction, rank) OUT gets the value
"<pooling>.<loss>" and the gradients "<pooling>.<loss>.grad.<input>" for the five float inputs,
plus the score matrix "<pooling>.logits". Computed in fp64 with loops where a loop is the plainest
statement of the formula in docs/method.md.
"""
import math
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file


def pool(hidden, valid, pooling):
    rows = []
    for i in range(hidden.shape[0]):
        n = int(valid[i].sum())
        if pooling == "mean":
            rows.append(hidden[i, :n].sum(0) / n)
        else:
            rows.append(hidden[i, n - 1])
    return torch.stack(rows)


def logits_of(inp, pooling):
    e_i = F.normalize(pool(inp["hidden_instr"], inp["valid_instr"], pooling) @ inp["proj_instr"].T, dim=-1)
    e_r = F.normalize(pool(inp["hidden_resp"], inp["valid_resp"], pooling) @ inp["proj_resp"].T, dim=-1)
    scale = inp["logit_scale"].clamp(max=math.log(100.0)).exp()
    return scale * e_i @ e_r.T


def infonce(logits):
    labels = torch.arange(logits.shape[0])
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def direction(logits):
    n = logits.shape[0]
    p = torch.softmax(logits, dim=1) / n  # instruction -> response, as a joint over pairs
    q = torch.softmax(logits, dim=0) / n  # response -> instruction
    kl_pq = (p * (p.log() - q.log())).sum()
    kl_qp = (q * (q.log() - p.log())).sum()
    return 0.5 * (kl_pq + kl_qp)


def rank(logits, signal):
    keep = torch.isfinite(signal)
    s = torch.diagonal(logits)[keep]
    m = signal[keep]

    def z(x, floor):
        return (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + floor)

    return ((z(s, 1.0) - z(m, 1e-8)) ** 2).mean()


def main():
    inp = load_file(sys.argv[1])
    floats = ["hidden_instr", "hidden_resp", "proj_instr", "proj_resp", "logit_scale"]
    out = {}
    for pooling in ["mean", "last"]:
        for loss_name in ["infonce", "direction", "rank"]:
            x = {k: (v.clone().requires_grad_(True) if k in floats else v) for k, v in inp.items()}
            logits = logits_of(x, pooling)
            if loss_name == "infonce":
                loss = infonce(logits)
            elif loss_name == "direction":
                loss = direction(logits)
            else:
                loss = rank(logits, x["signal"])
            grads = torch.autograd.grad(loss, [x[k] for k in floats])
            out[f"{pooling}.{loss_name}"] = loss.detach().reshape(())
            for k, g in zip(floats, grads):
                out[f"{pooling}.{loss_name}.grad.{k}"] = g.contiguous()
            out[f"{pooling}.logits"] = logits.detach().contiguous()
    save_file(out, sys.argv[2])


if __name__ == "__main__":
    main()
