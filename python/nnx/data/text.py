"""Text corpora for sequence models: finding and reading a text file, vocabularies of characters
or words, contiguous streams for truncated backpropagation through time, and the speeches of a
play script such as tinyshakespeare.

Where a text file is looked for (first match wins):

1. ``root`` given: ``<root>/text/<filename>``, then ``<root>/<filename>``;
2. ``$NNX_DATA_DIR/text/<filename>`` (the layout of nnx's shared data folder);
3. ``~/.cache/nnx/text/<filename>``.

There is no download: the text corpus ships with nnx's shared data folder.
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["TINY_SHAKESPEARE", "Vocab", "char_vocab", "find_text", "load_text", "speeches",
           "split_stream", "streams", "words"]

TINY_SHAKESPEARE = "tinyshakespeare.txt"
DATA_DIR_ENV = "NNX_DATA_DIR"


def _candidates(filename: str, root) -> list[str]:
    paths = []
    if root is not None:
        root = os.fspath(root)
        paths += [os.path.join(root, "text", filename), os.path.join(root, filename)]
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        paths.append(os.path.join(env, "text", filename))
    paths.append(os.path.join(os.path.expanduser("~"), ".cache", "nnx", "text", filename))
    return paths


def find_text(filename: str = TINY_SHAKESPEARE, root=None) -> str:
    """The path of the text file ``filename`` (see the module docstring for where it is looked
    for); ``FileNotFoundError`` lists every place tried."""
    paths = _candidates(filename, root)
    for path in paths:
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"text file {filename!r} not found; looked in: {', '.join(paths)} "
                            f"(set ${DATA_DIR_ENV} or pass the folder holding text/{filename})")


def load_text(filename: str = TINY_SHAKESPEARE, root=None) -> str:
    """The contents of ``find_text(filename, root)`` as a string (UTF-8)."""
    with open(find_text(filename, root), encoding="utf-8") as f:
        return f.read()


class Vocab:
    """A numbering of distinct tokens (characters or words): ``itos`` (id -> token), ``stoi``
    (token -> id), ``len(vocab)``, ``encode`` and ``decode``.

    ``Vocab(tokens, unk=None)`` numbers ``tokens`` (distinct) in the given order. With ``unk``
    (a token, which is appended if missing), unknown tokens encode to its id; without it they
    raise ``KeyError``. ``counts`` holds each token's frequency when the vocabulary was built
    with ``Vocab.build`` (else None).
    """

    def __init__(self, tokens: Sequence, unk=None):
        itos = list(tokens)
        if unk is not None and unk not in itos:
            itos.append(unk)
        stoi = {t: i for i, t in enumerate(itos)}
        if len(stoi) != len(itos):
            dup = next(t for t, n in collections.Counter(itos).items() if n > 1)
            raise ValueError(f"Vocab: token {dup!r} appears more than once")
        self.itos = itos
        self.stoi = stoi
        self.unk = unk
        self.counts: np.ndarray | None = None

    @classmethod
    def build(cls, tokens: Iterable, min_freq: int = 1, max_size: int | None = None,
              specials: Sequence = (), unk=None) -> Vocab:
        """``specials`` (e.g. a padding token, given ids 0, 1, ...), then the tokens seen at
        least ``min_freq`` times, most frequent first (ties in order of first appearance), then
        ``unk`` when given: at most ``max_size`` tokens in all. ``counts`` holds each token's
        frequency (0 for the specials; for ``unk``, the number of tokens left out)."""
        counter = collections.Counter(tokens)
        reserved = set(specials) | {unk}
        kept = [t for t, n in counter.most_common() if n >= min_freq and t not in reserved]
        if max_size is not None:
            kept = kept[:max(max_size - len(specials) - (unk is not None), 0)]
        vocab = cls([*specials, *kept], unk)
        counts = [0] * len(specials) + [counter[t] for t in kept]
        if unk is not None:
            counts.append(sum(counter.values()) - sum(counts))
        vocab.counts = np.asarray(counts, dtype=np.int64)
        return vocab

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token) -> bool:
        return token in self.stoi

    def encode(self, tokens: Iterable) -> np.ndarray:
        """int64 ids of ``tokens`` (a string is a sequence of characters)."""
        stoi = self.stoi
        if self.unk is not None:
            default = stoi[self.unk]
            return np.fromiter((stoi.get(t, default) for t in tokens), np.int64)
        try:
            return np.fromiter((stoi[t] for t in tokens), np.int64)
        except KeyError as e:
            raise KeyError(f"Vocab.encode: token {e.args[0]!r} is not in the vocabulary of "
                           f"{len(self)} tokens (build it with unk=... to map unknown tokens)"
                           ) from None

    def decode(self, ids) -> list:
        """The tokens of ``ids`` (``''.join(vocab.decode(ids))`` for characters)."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise IndexError(f"Vocab.decode: ids must lie in [0, {len(self)}), got range "
                             f"[{ids.min()}, {ids.max()}]")
        return [self.itos[i] for i in ids.tolist()]

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.itos[:8])
        return f"Vocab({len(self)} tokens: {head}{', ...' if len(self) > 8 else ''})"


def char_vocab(text: str) -> Vocab:
    """The distinct characters of ``text``, in code-point order."""
    return Vocab(sorted(set(text)))


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def words(text: str) -> list[str]:
    """Lower-case words of ``text``: runs of letters, with inner apostrophes kept (``o'er``,
    ``know't``); punctuation and digits separate words."""
    return _WORD.findall(text.lower())


def speeches(text: str) -> list[tuple[str, list[str]]]:
    """The speeches of a play script laid out as tinyshakespeare is: blocks separated by blank
    lines, each starting with the speaker's name and a colon on a line of its own. Returns
    ``(speaker, lines)`` pairs in order; blocks of another form are skipped."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.strip("\n").split("\n") if line.strip()]
        if len(lines) >= 2 and lines[0].endswith(":") and ":" not in lines[0][:-1]:
            out.append((lines[0][:-1].strip(), lines[1:]))
    return out


def split_stream(ids: np.ndarray, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation): the last ``val_fraction`` of ``ids`` (contiguous, so no window of
    validation text was seen in training) and the rest before it."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"split_stream: val_fraction must be in (0, 1), got {val_fraction}")
    cut = len(ids) - max(int(round(len(ids) * val_fraction)), 1)
    if cut < 1:
        raise ValueError(f"split_stream: {len(ids)} tokens are too few to split")
    return ids[:cut], ids[cut:]


def streams(ids: np.ndarray, batch_size: int) -> np.ndarray:
    """``ids`` cut into ``batch_size`` contiguous streams of equal length, as the rows of a
    (batch_size, len(ids) // batch_size) array (the tail that does not fill a row is dropped).
    Step k of truncated backpropagation through time reads columns [k T, (k + 1) T] of every
    row, so the hidden state carried from one step to the next continues the same text."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"streams: batch_size must be a positive int, got {batch_size!r}")
    n = len(ids) // batch_size
    if n < 2:
        raise ValueError(f"streams: {len(ids)} tokens are too few for {batch_size} streams")
    return np.ascontiguousarray(np.asarray(ids, dtype=np.int64)[:n * batch_size]
                                .reshape(batch_size, n))
