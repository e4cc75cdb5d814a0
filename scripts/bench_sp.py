#!/usr/bin/env python3
"""Python sentencepiece encode throughput on the same pieces tests/bench_sp_main.cpp (bench_sp)
encodes: default the files concatenated, repeated to ~20 MB and cut into 1 MB chunks at newlines
(as bench_bpe / scripts/bench_tokenizers.py); --lines: every non-empty line on its own, repeated to
~20 MB. Single-threaded, best of 3, MB per second of this thread's CPU time.

    python scripts/bench_sp.py MODEL [--lines] TEXT_FILE...
"""
import argparse

import sentencepiece as spm

from bench_tokenizers import best_of, chunks_of  # same chunks and timing as the other benches


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--lines", action="store_true")
    a = ap.parse_args()
    text = b"".join(open(f, "rb").read() for f in a.files)
    target = 20 << 20
    if a.lines:
        base = [l for l in text.split(b"\n") if l]
        pieces, nbytes = [], 0
        while nbytes < target:
            for l in base:
                pieces.append(l)
                nbytes += len(l)
        pieces = [p.decode("utf-8") for p in pieces]
    else:
        data, pieces = chunks_of(text, target)
        nbytes = len(data)
    sp = spm.SentencePieceProcessor(model_file=a.model)
    tokens = sum(len(x) for x in sp.encode(pieces, num_threads=1))
    secs = best_of(lambda: [sp.encode(p) for p in pieces])
    print(f"bench_sp.py: python sentencepiece {spm.__version__}, {a.model}: {nbytes / 1e6:.1f} MB in {len(pieces)} "
          f"{'lines' if a.lines else 'chunks'}, {tokens} tokens: {nbytes / 1e6 / secs:.2f} MB/s per CPU second, "
          f"single-threaded")


if __name__ == "__main__":
    main()
