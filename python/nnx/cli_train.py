"""``python -m nnx train mlp|lenet5|resnet --dataset mnist|fashion-mnist ...``: train a classifier;
``python -m nnx train char-lstm ...``: train a character-level LSTM language model.

``add_train_parser(subparsers)`` registers the subcommand on the ``nnx`` argument parser and
``run(args)`` executes it: a 784-hidden-10 ReLU MLP, ``nnx.models.LeNet5`` or
``nnx.models.ResNet`` trained with Adam (or SGD with Nesterov momentum, ``--optimizer sgd``) and
a cosine learning-rate decay on the training split (standardized with its own mean and std),
validated on the test split after every epoch, with optional checkpoints (``--checkpoint-dir``,
``--resume``) and a final save of the weights.

``char-lstm`` trains ``nnx.char_lm.CharLSTM`` on a text file (tinyshakespeare by default) for
``--steps`` steps with truncated backpropagation through time, reports the validation loss on the
last 10% of the text in bits per character and prints a sample drawn with ``--temperature``.
Its defaults are ``nnx.char_lm.DEFAULTS`` (batch 32, Adam 2e-3, gradients clipped to norm 5).
"""

from __future__ import annotations

import argparse
import os
import sys

import nnx
import nnx.io
from nnx import models, nn, optim, train
from nnx.data import MNIST, DataLoader, FashionMNIST, Standardize, Subset

__all__ = ["add_train_parser", "build_mlp", "build_model", "run"]

DATASETS = {"mnist": MNIST, "fashion-mnist": FashionMNIST}
MODELS = ("mlp", "lenet5", "resnet")
TEXT_MODELS = ("char-lstm",)
# Learning rates that suit each optimizer when --lr is not given.
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1}


def build_mlp(hidden: int = 256, classes: int = 10) -> nn.Module:
    """Flatten -> Linear(784, hidden) -> ReLU -> Linear(hidden, classes)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes))


def build_model(name: str, hidden: int = 256, classes: int = 10) -> nn.Module:
    """One of MODELS for 1x28x28 images: ``build_mlp(hidden)``, ``LeNet5()`` or ``ResNet()``."""
    if name == "mlp":
        return build_mlp(hidden, classes)
    if name == "lenet5":
        return models.LeNet5(num_classes=classes)
    if name == "resnet":
        return models.ResNet(num_classes=classes)
    raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train a model on a built-in dataset",
                              description="Train a model; the test split serves as validation.")
    p.add_argument("model", choices=MODELS + TEXT_MODELS,
                   help="mlp (784-hidden-10 ReLU MLP), lenet5 (LeNet-5), resnet (ResNet-14) or "
                        "char-lstm (character-level LSTM language model on a text file)")
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=None,
                   help="default: 64 (32 for char-lstm)")
    p.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adam",
                   help="adam, or sgd with Nesterov momentum 0.9")
    p.add_argument("--lr", type=float, default=None,
                   help="initial learning rate (default: 1e-3 for adam, 0.1 for sgd; 2e-3 "
                        "for char-lstm with adam)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay")
    p.add_argument("--hidden", type=int, default=256, help="hidden units (mlp, char-lstm)")
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training and N test images (quick runs); for "
                        "char-lstm the first N characters of the text")
    p.add_argument("--threads", type=int, default=None, help="nnx threads (default: OpenMP's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None,
                   help="folder with mnist/, fashion-mnist/ and text/ (default: $NNX_DATA_DIR)")
    p.add_argument("--download", action="store_true",
                   help="fetch missing dataset files (checksummed) into ~/.cache/nnx")
    p.add_argument("--checkpoint-dir", default=None,
                   help="write last.npz there after every epoch")
    p.add_argument("--resume", action="store_true",
                   help="continue from CHECKPOINT_DIR/last.npz")
    p.add_argument("--save", default=None, help="save the trained weights to this .npz file")
    p.add_argument("--plot", default=None, help="save loss/accuracy curves to this PNG")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
    _add_char_lstm_arguments(p)
    p.set_defaults(func=run)
    return p


def _add_char_lstm_arguments(p: argparse.ArgumentParser) -> None:
    from nnx.char_lm import DEFAULTS

    g = p.add_argument_group("char-lstm", "options of the char-lstm model (--epochs, --dataset, "
                             "--checkpoint-dir, --resume and --plot do not apply)")
    g.add_argument("--text-file", default="tinyshakespeare.txt",
                   help="text file, looked for in --data-dir, $NNX_DATA_DIR/text and "
                        "~/.cache/nnx/text")
    g.add_argument("--steps", type=int, default=DEFAULTS["steps"], help="training steps")
    g.add_argument("--seq-len", type=int, default=DEFAULTS["seq_len"],
                   help="characters per truncated-BPTT window")
    g.add_argument("--embedding-dim", type=int, default=DEFAULTS["embedding_dim"])
    g.add_argument("--layers", type=int, default=DEFAULTS["num_layers"], help="LSTM layers")
    g.add_argument("--dropout", type=float, default=DEFAULTS["dropout"],
                   help="dropout between LSTM layers")
    g.add_argument("--clip", type=float, default=DEFAULTS["clip"],
                   help="clip the gradients' total norm to this (0: no clipping)")
    g.add_argument("--eval-every", type=int, default=DEFAULTS["eval_every"],
                   help="steps between validations")
    g.add_argument("--sample-length", type=int, default=500, help="characters to sample")
    g.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    g.add_argument("--prime", default="ROMEO:", help="text the sample starts from")


def run_char_lstm(args: argparse.Namespace) -> int:
    """``nnx train char-lstm``: train, validate in bits per character, sample, save."""
    import math

    from nnx import char_lm
    from nnx.data import text

    who = "nnx train char-lstm"
    for flag, given in (("--checkpoint-dir", args.checkpoint_dir), ("--resume", args.resume),
                        ("--plot", args.plot), ("--download", args.download)):
        if given:
            raise SystemExit(f"{who}: {flag} is not supported for char-lstm")
    batch_size = char_lm.DEFAULTS["batch_size"] if args.batch_size is None else args.batch_size
    for name, value in (("steps", args.steps), ("batch-size", batch_size),
                        ("seq-len", args.seq_len), ("embedding-dim", args.embedding_dim),
                        ("hidden", args.hidden), ("layers", args.layers),
                        ("eval-every", args.eval_every),
                        ("limit", 1 if args.limit is None else args.limit)):
        if value < 1:
            raise SystemExit(f"{who}: --{name} must be positive, got {value}")
    if not args.temperature > 0:
        raise SystemExit(f"{who}: --temperature must be positive, got {args.temperature}")
    if args.threads is not None:
        nnx.set_num_threads(args.threads)
    nnx.manual_seed(args.seed)
    try:
        corpus = text.load_text(args.text_file, args.data_dir)
    except FileNotFoundError as e:
        raise SystemExit(f"{who}: {e}") from None
    if args.limit:
        corpus = corpus[:args.limit]
    vocab = text.char_vocab(corpus)
    train_ids, val_ids = text.split_stream(vocab.encode(corpus), 0.1)
    model = char_lm.CharLSTM(len(vocab), args.embedding_dim, args.hidden, args.layers,
                             args.dropout)
    if args.optimizer == "sgd":
        lr = DEFAULT_LR["sgd"] if args.lr is None else args.lr
        optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                              weight_decay=args.weight_decay)
    else:
        lr = char_lm.DEFAULTS["lr"] if args.lr is None else args.lr
        optimizer = optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    print(f"{args.text_file}: {len(train_ids)} training, {len(val_ids)} validation characters, "
          f"{len(vocab)} distinct; {nnx.get_num_threads()} threads", file=sys.stderr)
    print(model, file=sys.stderr)
    history = char_lm.train_char_lstm(
        model, train_ids, val_ids, steps=args.steps, batch_size=batch_size,
        seq_len=args.seq_len, clip=args.clip or None, eval_every=args.eval_every,
        optimizer=optimizer,
        log=None if args.no_progress else lambda line: print(line, file=sys.stderr))
    val = history["val_bpc"][-1]
    print(f"validation loss {val:.4f} bits/char ({val * math.log(2):.4f} nats/char)")
    if args.sample_length:
        prime = args.prime
        if not prime or not all(c in vocab for c in prime):
            prime = vocab.itos[0]
            print(f"--prime {args.prime!r} holds characters the text lacks; starting the sample "
                  f"from {prime!r}", file=sys.stderr)
        print(char_lm.sample(model, vocab, prime, args.sample_length, args.temperature))
    if args.save:
        nnx.io.save(model.state_dict(), args.save)
        print(f"weights saved to {os.fspath(args.save)}", file=sys.stderr)
    return 0 if math.isfinite(val) else 1


def run(args: argparse.Namespace) -> int:
    if args.model in TEXT_MODELS:
        return run_char_lstm(args)
    if args.batch_size is None:
        args.batch_size = 64
    if args.limit is not None and args.limit < 1:
        raise SystemExit(f"nnx train: --limit must be positive, got {args.limit}")
    for name in ("epochs", "batch_size", "hidden"):
        if getattr(args, name) < (0 if name == "epochs" else 1):
            raise SystemExit(f"nnx train: --{name.replace('_', '-')} must be positive, got "
                             f"{getattr(args, name)}")
    if args.resume and not args.checkpoint_dir:
        raise SystemExit("nnx train: --resume needs --checkpoint-dir")
    if args.threads is not None:
        nnx.set_num_threads(args.threads)
    nnx.manual_seed(args.seed)

    dataset = DATASETS[args.dataset]
    try:
        train_set = dataset(root=args.data_dir, train=True, download=args.download)
        test_set = dataset(root=args.data_dir, train=False, download=args.download)
    except FileNotFoundError as e:
        raise SystemExit(f"nnx train: {e}\n"
                         "(on the command line: --data-dir DIR or --download)") from None
    standardize = Standardize().fit(train_set)
    train_set.transform = test_set.transform = standardize
    if args.limit:
        train_set = Subset(train_set, range(min(args.limit, len(train_set))))
        test_set = Subset(test_set, range(min(args.limit, len(test_set))))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = build_model(args.model, args.hidden)
    lr = DEFAULT_LR[args.optimizer] if args.lr is None else args.lr
    if args.optimizer == "sgd":
        optimizer = optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True,
                              weight_decay=args.weight_decay)
    else:
        optimizer = optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)
    # Cosine decay to 0 over the run (see examples/mlp_mnist.py); saved in checkpoints, so
    # --resume continues the same schedule.
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(args.epochs, 1))
    loss_fn = nn.CrossEntropyLoss()
    print(f"{args.dataset}: {len(train_set)} training, {len(test_set)} test images, "
          f"{standardize}; {nnx.get_num_threads()} threads", file=sys.stderr)
    print(model, file=sys.stderr)
    history = train.fit(model, loss_fn, optimizer, train_loader, epochs=args.epochs,
                        val_loader=test_loader, scheduler=scheduler,
                        checkpoint_dir=args.checkpoint_dir,
                        resume=args.resume, progress=False if args.no_progress else None)
    scores = train.evaluate(model, test_loader, loss_fn)
    print(f"test accuracy {scores['accuracy']:.4f}  test loss {scores['loss']:.4f}")
    if history.stop_reason:
        print(f"stopped early: {history.stop_reason}", file=sys.stderr)
    if args.save:
        nnx.io.save(model.state_dict(), args.save)
        print(f"weights saved to {os.fspath(args.save)}", file=sys.stderr)
    if args.plot:
        train.plot_history(history, args.plot)
    return 0 if history.stop_reason is None or "early" in history.stop_reason else 1
