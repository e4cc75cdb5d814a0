#!/usr/bin/env python3
"""Reference tokenizer throughput, single-threaded, on the same bytes the C++ bench_bpe encodes.

Builds the corpus (../shared/data/unlabeled/*.txt + every string in the instruction JSON/JSONL
files), writes it to --corpus (bench_bpe reads that file), repeats it to ~20 MB, cuts 1 MB chunks at
newlines and reports MB/s per CPU second (best of 3) for:
  tiktoken encode_ordinary with LLaMA-3's ranks and pattern;
  sentencepiece encode for the llama2 / mistral / mistral-v3 models (for the SentencePiece side);
  optionally HF tokenizers on a LLaMA-3 tokenizer.json (--hf-json) and our bench_bpe (--bench-bpe).

  python scripts/bench_tokenizers.py --bench-bpe build/tests/bench_bpe
"""
import argparse
import base64
import glob
import json
import os
import subprocess
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DATA = os.path.join(os.environ.get("MT_SHARED_DIR") or os.path.join(ROOT, "..", "shared"), "data")
LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def strings(x):
    if isinstance(x, str):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from strings(v)
    elif isinstance(x, list):
        for v in x:
            yield from strings(v)


def corpus():
    parts = []
    for p in sorted(glob.glob(os.path.join(DATA, "unlabeled", "*.txt"))):
        with open(p, encoding="utf-8") as f:
            parts.append(f.read())
    for p in sorted(glob.glob(os.path.join(DATA, "instructions", "**", "*.json*"), recursive=True)):
        with open(p, encoding="utf-8") as f:
            recs = [json.loads(l) for l in f if l.strip()] if p.endswith(".jsonl") else json.load(f)
        parts.append("\n".join(s for s in strings(recs) if len(s) > 1))
    return "\n".join(parts).encode("utf-8")


def chunks_of(data, target=20 << 20, chunk=1 << 20):
    rep = data * -(-target // len(data))  # whole copies up to >= target, as bench_bpe does
    out, pos = [], 0
    while pos < len(rep):
        end = min(len(rep), pos + chunk)
        nl = rep.rfind(b"\n", pos, end + 1)  # position `end` too, as C++ rfind('\n', end) does
        if end < len(rep) and nl > pos:
            end = nl + 1
        out.append(rep[pos:end].decode("utf-8", errors="strict"))
        pos = end
    return rep, out


def best_of(fn, n=3):
    """Best of n, in this thread's CPU seconds (the encoders run in the calling thread), so other
    work on a shared machine does not skew it; bench_bpe measures the same way."""
    best = 1e30
    for _ in range(n):
        t = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="/tmp/maintune_bench_corpus.txt")
    ap.add_argument("--bench-bpe", help="path of the C++ bench_bpe executable, run on the same corpus")
    ap.add_argument("--hf-json", help="a LLaMA-3 tokenizer.json to time with HF tokenizers too")
    ap.add_argument("--no-sp", action="store_true", help="skip sentencepiece")
    ap.add_argument("--parity-texts", action="store_true",
                    help="use tests/fixtures/tokenizer/texts.json (many scripts, emoji, code) as the corpus")
    args = ap.parse_args()
    os.environ.setdefault("RAYON_NUM_THREADS", "1")

    if args.parity_texts:
        with open(os.path.join(ROOT, "tests", "fixtures", "tokenizer", "texts.json"), encoding="utf-8") as f:
            data = "\n".join(json.load(f)["texts"]).encode("utf-8")
    else:
        data = corpus()
    with open(args.corpus, "wb") as f:
        f.write(data)
    rep, chunks = chunks_of(data)
    mb = len(rep) / 1e6
    print(f"corpus: {len(data) / 1e6:.2f} MB -> {mb:.1f} MB in {len(chunks)} chunks ({args.corpus})")

    import tiktoken
    with open(os.path.join(DATA, "tokenizers", "llama3", "tokenizer.model"), "rb") as f:
        ranks = {base64.b64decode(t): int(r) for t, r in (l.split() for l in f.read().splitlines() if l)}
    enc = tiktoken.Encoding(name="llama3", pat_str=LLAMA3_PAT, mergeable_ranks=ranks, special_tokens={})
    import numpy as np
    ids = np.concatenate([np.asarray(enc.encode_ordinary(c), dtype=np.uint64) for c in chunks])
    checksum = int(np.sum(np.arange(1, len(ids) + 1, dtype=np.uint64) * ids, dtype=np.uint64))
    secs = best_of(lambda: [enc.encode_ordinary(c) for c in chunks])
    print(f"tiktoken {tiktoken.__version__} llama3 encode_ordinary: {mb / secs:.1f} MB/s per CPU second, single-threaded "
          f"({len(ids)} tokens, checksum {checksum})")

    if args.hf_json:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(args.hf_json)
        secs = best_of(lambda: [tok.encode(c, add_special_tokens=False) for c in chunks])
        print(f"HF tokenizers llama3 tokenizer.json encode: {mb / secs:.1f} MB/s per CPU second, single-threaded")

    if not args.no_sp:
        import sentencepiece as spm
        for name in ("llama2", "mistral", "mistral-v3"):
            sp = spm.SentencePieceProcessor(model_file=os.path.join(DATA, "tokenizers", name, "tokenizer.model"))
            secs = best_of(lambda: [sp.encode(c) for c in chunks], n=1)
            print(f"sentencepiece {spm.__version__} {name} encode: {mb / secs:.1f} MB/s per CPU second, single-threaded")

    if args.bench_bpe:
        tok_file = os.path.join(DATA, "tokenizers", "llama3", "tokenizer.model")
        out = subprocess.run([args.bench_bpe, tok_file, args.corpus], check=True, capture_output=True, text=True)
        print(out.stdout.strip())


if __name__ == "__main__":
    main()
