"""Word vectors with CBOW (continuous bag of words) on tinyshakespeare: nearest neighbours by
cosine similarity and analogy queries.

    NNX_DATA_DIR=../shared/data python examples/word2vec_cbow.py
    NNX_DATA_DIR=../shared/data python examples/word2vec_cbow.py --loss softmax --epochs 2

CBOW predicts each word from the mean of the embeddings of the ``--window`` words on either
side. Two objectives: ``negative`` sampling (the default: the true word's output vector against
``--negatives`` words drawn from the unigram distribution raised to the power 3/4, each scored
with a logistic loss) or a full ``softmax`` over the vocabulary (a Linear layer and
cross-entropy). The vocabulary is the ``--vocab-size`` most frequent lower-cased words seen at
least ``--min-count`` times; rarer words are dropped from the text, and frequent words are
subsampled (each occurrence of a word of frequency f kept with probability
min(1, sqrt(t / f) + t / f), t = ``--subsample``) as in the original word2vec.

After training, the input embeddings (unit-normalised) answer two kinds of query: the nearest
neighbours of a word, and analogies a : b :: c : ?, answered by the word closest to
b - a + c (a, b and c excluded). A corpus of 200k words is small for word vectors: expect
neighbours that share a role in the text (names with names, verbs with verbs) more than
textbook analogies.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import nnx
from nnx import nn, optim
from nnx.data import text
from nnx.nn import functional as F
from nnx.nn import init

QUERIES = ("king", "love", "night", "father", "good", "sword")
ANALOGIES = (("king", "queen", "man"), ("he", "she", "his"), ("father", "mother", "son"),
             ("lord", "lady", "sir"))


class CBOW(nn.Module):
    """Mean of the context words' input embeddings, scored against output vectors (negative
    sampling) or a Linear layer over the vocabulary (full softmax)."""

    def __init__(self, vocab_size: int, dim: int, loss: str = "negative"):
        super().__init__()
        self.loss_kind = loss
        self.in_embed = nn.Embedding(vocab_size, dim)
        init.uniform_(self.in_embed.weight, -0.5 / dim, 0.5 / dim)  # word2vec's initialisation
        if loss == "negative":
            self.out_embed = nn.Embedding(vocab_size, dim)
            init.zeros_(self.out_embed.weight)
        else:
            self.out = nn.Linear(dim, vocab_size)

    def loss(self, context: np.ndarray, target: np.ndarray, negatives=None):
        """Mean loss of a batch: context (B, 2 window) and target (B,) word ids; negatives
        (B, K) noise word ids for negative sampling."""
        v = self.in_embed(nnx.tensor(context)).mean(dim=1)  # (B, D)
        if self.loss_kind != "negative":
            return F.cross_entropy(self.out(v), nnx.tensor(target))
        candidates = np.concatenate([target[:, None], negatives], axis=1)  # true word first
        u = self.out_embed(nnx.tensor(candidates))  # (B, 1 + K, D)
        scores = (u * v.unsqueeze(1)).sum(dim=2)
        labels = np.zeros(scores.shape, np.float32)
        labels[:, 0] = 1
        return F.binary_cross_entropy_with_logits(scores, nnx.tensor(labels),
                                                  reduction="sum") / len(target)


def cbow_examples(ids: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(contexts (N, 2 window), targets (N,)) for every position with a full window."""
    n = len(ids) - 2 * window
    if n < 1:
        raise ValueError(f"{len(ids)} words are too few for a window of {window}")
    offsets = [o for o in range(-window, window + 1) if o != 0]
    contexts = np.stack([ids[window + o:window + o + n] for o in offsets], axis=1)
    return np.ascontiguousarray(contexts), ids[window:window + n].copy()


def subsample(ids: np.ndarray, counts: np.ndarray, t: float, rng) -> np.ndarray:
    """word2vec's subsampling of frequent words (see the module docstring)."""
    if not t:
        return ids
    f = counts[ids] / counts.sum()
    keep = np.minimum(1.0, np.sqrt(t / f) + t / f)
    return ids[rng.random(len(ids)) < keep]


def nearest(vectors: np.ndarray, query: np.ndarray, k: int, exclude=()) -> list[tuple[int, float]]:
    """The k rows of unit-norm ``vectors`` most cosine-similar to ``query``."""
    sims = vectors @ (query / np.linalg.norm(query))
    sims[list(exclude)] = -np.inf
    top = np.argsort(-sims, kind="stable")[:k]
    return [(int(i), float(sims[i])) for i in top]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--loss", choices=["negative", "softmax"], default="negative")
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--window", type=int, default=2, help="context words on each side")
    p.add_argument("--negatives", type=int, default=5, help="noise words per example")
    p.add_argument("--vocab-size", type=int, default=4000)
    p.add_argument("--min-count", type=int, default=3)
    p.add_argument("--subsample", type=float, default=1e-3, help="0 turns subsampling off")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N characters of the text (quick runs)")
    p.add_argument("--data-dir", default=os.environ.get("NNX_DATA_DIR"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def train(model: CBOW, ids, counts, args, rng) -> list[float]:
    """Adam over shuffled CBOW examples, the frequent words subsampled anew every epoch;
    returns the mean loss of every 50 steps (and of the last, partial stretch)."""
    noise = counts.astype(np.float64) ** 0.75
    noise /= noise.sum()
    opt = optim.Adam(model.parameters(), lr=args.lr)
    curve, running, step, t0 = [], [], 0, time.perf_counter()
    for epoch in range(args.epochs):
        contexts, targets = cbow_examples(subsample(ids, counts, args.subsample, rng),
                                          args.window)
        order = rng.permutation(len(targets))
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            negatives = rng.choice(len(noise), size=(len(batch), args.negatives), p=noise) \
                if args.loss == "negative" else None
            loss = model.loss(contexts[batch], targets[batch], negatives)
            opt.zero_grad()
            loss.backward()
            opt.step()
            running.append(loss.item())
            step += 1
            if step % 50 == 0:
                curve.append(float(np.mean(running)))
                running = []
            if args.steps and step >= args.steps:
                break
        recent = np.mean(curve[-5:] or running)
        print(f"epoch {epoch + 1}: {len(targets)} examples, recent loss {recent:.4f} "
              f"({time.perf_counter() - t0:.0f} s)")
        if args.steps and step >= args.steps:
            break
    if running:
        curve.append(float(np.mean(running)))
    return curve


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        nnx.set_num_threads(args.threads)
    nnx.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    corpus = text.load_text(text.TINY_SHAKESPEARE, args.data_dir)
    if args.limit:
        corpus = corpus[:args.limit]
    tokens = text.words(corpus)
    vocab = text.Vocab.build(tokens, min_freq=args.min_count, max_size=args.vocab_size)
    ids = np.fromiter((vocab.stoi[w] for w in tokens if w in vocab.stoi), np.int64)
    print(f"{len(tokens)} words, {len(ids)} of them in the vocabulary of {len(vocab)}")
    model = CBOW(len(vocab), args.dim, args.loss)
    curve = train(model, ids, vocab.counts, args, rng)

    vectors = model.in_embed.weight.detach().numpy().astype(np.float64)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    neighbours, analogies = {}, {}
    print("nearest neighbours (cosine similarity):")
    for word in QUERIES:
        if word in vocab:
            i = vocab.stoi[word]
            neighbours[word] = [(vocab.itos[j], s) for j, s in nearest(vectors, vectors[i], 5,
                                                                       exclude=[i])]
            print(f"  {word:>8}: " + ", ".join(f"{w} {s:.2f}" for w, s in neighbours[word]))
    print("analogies a : b :: c : ?")
    for a, b, c in ANALOGIES:
        if all(w in vocab for w in (a, b, c)):
            ia, ib, ic = (vocab.stoi[w] for w in (a, b, c))
            best = nearest(vectors, vectors[ib] - vectors[ia] + vectors[ic], 3,
                           exclude=[ia, ib, ic])
            analogies[(a, b, c)] = [(vocab.itos[j], s) for j, s in best]
            print(f"  {a} : {b} :: {c} : " + ", ".join(f"{w} {s:.2f}" for w, s in
                                                       analogies[(a, b, c)]))
    return {"curve": curve, "neighbours": neighbours, "analogies": analogies,
            "vocab": vocab, "vectors": vectors}


def main(argv=None) -> int:
    try:
        result = run(parse_args(argv))
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    return 0 if np.isfinite(result["curve"]).all() else 1


if __name__ == "__main__":
    sys.exit(main())
