"""A character-level LSTM language model on tinyshakespeare, sampled with a temperature.

    NNX_DATA_DIR=../shared/data python examples/char_lstm_shakespeare.py
    NNX_DATA_DIR=../shared/data python examples/char_lstm_shakespeare.py --steps 50 --limit 200000

Embedding (64) -> LSTM (256) -> Linear over the 65 characters of the text, trained with
truncated backpropagation through time on windows of 64 characters (the LSTM state is carried
from one window to the next), batches of 32 streams, Adam with learning rate 2e-3 and gradients
clipped to a total norm of 5 (``nnx.char_lm.DEFAULTS``). The last 10% of the text is the
validation set; its loss is reported in bits per character (the cross-entropy in base 2: a
model that knew nothing would need log2(65) = 6.02 bits, a uniform guess over letters about
4.7). The same training runs as ``python -m nnx train char-lstm``.

Lower ``--temperature`` values make the sample more conservative (and repetitive), higher ones
more varied (and misspelt).
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import nnx
import nnx.io
from nnx.char_lm import DEFAULTS, CharLSTM, sample, train_char_lstm
from nnx.data import text

TARGET_BPC = 2.0  # the acceptance bar for the default configuration, in bits per character


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--seq-len", type=int, default=DEFAULTS["seq_len"])
    p.add_argument("--embedding-dim", type=int, default=DEFAULTS["embedding_dim"])
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden_size"])
    p.add_argument("--layers", type=int, default=DEFAULTS["num_layers"])
    p.add_argument("--dropout", type=float, default=DEFAULTS["dropout"],
                   help="dropout between LSTM layers (needs --layers >= 2)")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--clip", type=float, default=DEFAULTS["clip"],
                   help="maximum total gradient norm (0: no clipping)")
    p.add_argument("--eval-every", type=int, default=DEFAULTS["eval_every"])
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N characters of the text (quick runs)")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--sample-length", type=int, default=500)
    p.add_argument("--prime", default="ROMEO:")
    p.add_argument("--data-dir", default=os.environ.get("NNX_DATA_DIR"))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default=None, help="save the trained weights to this .npz file")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Trains and samples; returns the history (``step``, ``train_bpc``, ``val_bpc``) plus
    ``sample`` and ``vocab_size``."""
    if args.threads:
        nnx.set_num_threads(args.threads)
    nnx.manual_seed(args.seed)
    corpus = text.load_text(text.TINY_SHAKESPEARE, args.data_dir)
    if args.limit:
        corpus = corpus[:args.limit]
    vocab = text.char_vocab(corpus)
    train_ids, val_ids = text.split_stream(vocab.encode(corpus), 0.1)
    model = CharLSTM(len(vocab), args.embedding_dim, args.hidden, args.layers, args.dropout)
    print(model)
    print(f"{len(train_ids)} training and {len(val_ids)} validation characters, "
          f"{len(vocab)} distinct; {model.num_parameters()} parameters, "
          f"{nnx.get_num_threads()} threads")
    history = train_char_lstm(model, train_ids, val_ids, steps=args.steps,
                              batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr,
                              clip=args.clip or None, eval_every=args.eval_every)
    prime = args.prime if all(c in vocab for c in args.prime) else "\n"
    history["sample"] = sample(model, vocab, prime, args.sample_length, args.temperature)
    history["vocab_size"] = len(vocab)
    if args.save:
        nnx.io.save(model.state_dict(), args.save)
        print(f"weights saved to {args.save}")
    return history


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        history = run(args)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    val = history["val_bpc"][-1]
    verdict = "below" if val < TARGET_BPC else "not yet below"
    print(f"validation loss: {val:.3f} bits/char ({val * math.log(2):.3f} nats/char), "
          f"{verdict} the {TARGET_BPC} bits/char target")
    print(f"--- sample at temperature {args.temperature} ---")
    print(history["sample"])
    return 0 if math.isfinite(val) else 1


if __name__ == "__main__":
    sys.exit(main())
