"""A convolutional network over word embeddings that tells which character speaks a line of
tinyshakespeare.

    NNX_DATA_DIR=../shared/data python examples/text_cnn.py
    NNX_DATA_DIR=../shared/data python examples/text_cnn.py --classes 3 --epochs 3

The architecture of Kim (2014), "Convolutional neural networks for sentence classification":
word embeddings (64) with a zero padding vector, one-dimensional convolutions of widths 3, 4
and 5 (64 filters each) with ReLU, max-over-time pooling (``AdaptiveMaxPool1d(1)``: each
filter's strongest response anywhere in the line), dropout 0.5 and a linear classifier. The
data are the single lines spoken by the ``--classes`` characters with the most lines (Gloucester,
Duke Vincentio, King Richard II, ...), split at random into 80% training and 20% test lines.
One line is little evidence, and the characters come from different plays, so the network
mostly learns names and words typical of each play: compare the test accuracy with the
majority-class baseline printed beside it.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

import numpy as np

import nnx
from nnx import nn, optim
from nnx.data import text
from nnx.nn import functional as F

PAD, UNK = "<pad>", "<unk>"


class TextCNN(nn.Module):
    """Embedding -> Conv1d (several widths) -> ReLU -> max over time -> dropout -> Linear."""

    def __init__(self, vocab_size: int, num_classes: int, dim: int = 64, filters: int = 64,
                 widths=(3, 4, 5), dropout: float = 0.5, padding_idx: int = 0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=padding_idx)
        self.convs = nn.ModuleList([nn.Conv1d(dim, filters, w) for w in widths])
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(filters * len(widths), num_classes)
        self.min_length = max(widths)

    def forward(self, ids):
        x = self.embedding(ids).transpose(1, 2)  # (B, L, D) -> (B, D, L) for Conv1d
        features = [self.pool(F.relu(conv(x))).squeeze(2) for conv in self.convs]
        return self.fc(self.dropout(nnx.cat(features, dim=1)))


def speaker_lines(corpus: str, classes: int):
    """(lines as word lists, int64 labels, speaker names) for the ``classes`` speakers with the
    most lines; lines without words are dropped."""
    per_speaker = collections.defaultdict(list)
    for speaker, lines in text.speeches(corpus):
        per_speaker[speaker].extend(w for w in map(text.words, lines) if w)
    ranked = sorted(per_speaker, key=lambda s: (-len(per_speaker[s]), s))[:classes]
    lines, labels = [], []
    for label, speaker in enumerate(ranked):
        lines.extend(per_speaker[speaker])
        labels.extend([label] * len(per_speaker[speaker]))
    return lines, np.asarray(labels, np.int64), ranked


def pad_batch(encoded: list, min_length: int, pad: int = 0) -> np.ndarray:
    """(B, L) int64 ids, each line padded with ``pad`` to the longest (at least min_length)."""
    length = max(min_length, max(len(e) for e in encoded))
    out = np.full((len(encoded), length), pad, np.int64)
    for i, e in enumerate(encoded):
        out[i, :len(e)] = e
    return out


def accuracy(model: TextCNN, encoded: list, labels: np.ndarray, batch_size: int = 256) -> float:
    model.eval()
    correct = 0
    with nnx.no_grad():
        for start in range(0, len(encoded), batch_size):
            ids = pad_batch(encoded[start:start + batch_size], model.min_length)
            predicted = model(nnx.tensor(ids)).data.argmax(axis=1)
            correct += int((predicted == labels[start:start + batch_size]).sum())
    model.train()
    return correct / len(encoded)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--classes", type=int, default=5, help="how many speakers to tell apart")
    p.add_argument("--dim", type=int, default=64, help="embedding size")
    p.add_argument("--filters", type=int, default=64, help="filters per width")
    p.add_argument("--widths", type=int, nargs="+", default=[3, 4, 5])
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--min-count", type=int, default=2,
                   help="words seen fewer times in training become <unk>")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--data-dir", default=os.environ.get("NNX_DATA_DIR"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Trains and evaluates; returns the loss curve (mean of every 20 steps), accuracies and
    the majority baseline."""
    if args.threads:
        nnx.set_num_threads(args.threads)
    nnx.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    lines, labels, speakers = speaker_lines(text.load_text(text.TINY_SHAKESPEARE, args.data_dir),
                                            args.classes)
    order = rng.permutation(len(lines))
    cut = int(0.8 * len(lines))
    train_idx, test_idx = order[:cut], order[cut:]
    vocab = text.Vocab.build((w for i in train_idx for w in lines[i]), min_freq=args.min_count,
                             specials=(PAD,), unk=UNK)
    encoded = [vocab.encode(line) for line in lines]
    train_x, train_y = [encoded[i] for i in train_idx], labels[train_idx]
    test_x, test_y = [encoded[i] for i in test_idx], labels[test_idx]
    baseline = np.bincount(test_y, minlength=len(speakers)).max() / len(test_y)
    print(f"{len(lines)} lines of {', '.join(speakers)}; {len(train_x)} for training, "
          f"{len(test_x)} for testing; vocabulary of {len(vocab)} words")

    model = TextCNN(len(vocab), len(speakers), args.dim, args.filters, tuple(args.widths),
                    args.dropout, padding_idx=vocab.stoi[PAD])
    print(model)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    curve, running, step, t0 = [], [], 0, time.perf_counter()
    for epoch in range(args.epochs):
        perm = rng.permutation(len(train_x))
        for start in range(0, len(perm), args.batch_size):
            batch = perm[start:start + args.batch_size]
            ids = pad_batch([train_x[i] for i in batch], model.min_length)
            loss = F.cross_entropy(model(nnx.tensor(ids)), nnx.tensor(train_y[batch]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            running.append(loss.item())
            step += 1
            if step % 20 == 0:
                curve.append(float(np.mean(running)))
                running = []
            if args.steps and step >= args.steps:
                break
        test_acc = accuracy(model, test_x, test_y)
        print(f"epoch {epoch + 1}: recent loss {np.mean(curve[-5:] or running):.4f}, test "
              f"accuracy {test_acc:.3f} (majority baseline {baseline:.3f}) "
              f"({time.perf_counter() - t0:.0f} s)")
        if args.steps and step >= args.steps:
            break
    if running:
        curve.append(float(np.mean(running)))
    return {"curve": curve, "test_accuracy": accuracy(model, test_x, test_y),
            "train_accuracy": accuracy(model, train_x, train_y), "baseline": baseline,
            "speakers": speakers}


def main(argv=None) -> int:
    try:
        result = run(parse_args(argv))
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    print(f"train accuracy {result['train_accuracy']:.3f}, test accuracy "
          f"{result['test_accuracy']:.3f}, majority baseline {result['baseline']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
