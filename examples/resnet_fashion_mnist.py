"""A small ResNet on Fashion-MNIST: SGD with Nesterov momentum, cosine schedule, batch 128.

    NNX_DATA_DIR=../shared/data python examples/resnet_fashion_mnist.py --epochs 10

The model is ``nnx.models.ResNet()``: a 3x3 stem and three stages of two ``BasicBlock``s (16, 32
and 64 channels at 28x28, 14x14 and 7x7), global average pooling and a linear classifier, about
175k parameters. The recipe is the usual one for CIFAR-style ResNets: SGD, lr 0.1, momentum 0.9
(Nesterov), weight decay 5e-4, cosine decay to 0 over the run. Each training batch is randomly
flipped left-right and shifted by up to 2 pixels (``--no-augment`` turns that off); both are
vectorized numpy on the batch, negligible next to the convolutions. The trained weights
(batch-norm running statistics included) are saved, reloaded into a fresh model, and the
reloaded model must reproduce the test accuracy. ``--limit N`` uses the first N images of each
split (a quick smoke run).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

import nnx
import nnx.io
from nnx import models, nn, optim, train
from nnx.data import MNIST, DataLoader, FashionMNIST, Standardize, Subset


def flip_and_shift(x: np.ndarray, rng: np.random.Generator, pad: int) -> np.ndarray:
    """Flips each image (N, C, H, W) left-right with probability 1/2, then crops an H x W
    window at a random offset from the image padded by ``pad`` (edge pixels repeated, so the
    border keeps the background value)."""
    n, c, h, w = x.shape
    x = np.where((rng.random(n) < 0.5)[:, None, None, None], x[..., ::-1], x)
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="edge")
    rows = rng.integers(0, 2 * pad + 1, n)[:, None] + np.arange(h)
    cols = rng.integers(0, 2 * pad + 1, n)[:, None] + np.arange(w)
    return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


class Augmented:
    """A training loader whose image batches pass through ``flip_and_shift``, drawing from
    nnx's generator (so ``nnx.manual_seed`` and checkpoint resumes repeat the same draws)."""

    def __init__(self, loader: DataLoader, pad: int = 2):
        self.loader = loader
        self.pad = pad

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        rng = nnx.random.default_generator()
        for x, y in self.loader:
            yield nnx.tensor(flip_and_shift(x.numpy(), rng, self.pad)), y


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--no-augment", action="store_true", help="no random flips and shifts")
    p.add_argument("--dataset", choices=["fashion-mnist", "mnist"], default="fashion-mnist")
    p.add_argument("--data-dir", default=os.environ.get("NNX_DATA_DIR"))
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training and N test images")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", default=None, help="write last.npz there every epoch")
    p.add_argument("--resume", action="store_true", help="continue from CHECKPOINT_DIR")
    p.add_argument("--save", default=None, help="where to save the weights (default: a temp dir)")
    p.add_argument("--plot", default=None, help="write loss/accuracy curves to this PNG")
    args = p.parse_args(argv)

    if args.threads:
        nnx.set_num_threads(args.threads)
    nnx.manual_seed(args.seed)
    dataset = FashionMNIST if args.dataset == "fashion-mnist" else MNIST
    try:
        train_set = dataset(root=args.data_dir, train=True)
        test_set = dataset(root=args.data_dir, train=False)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    standardize = Standardize().fit(train_set)
    train_set.transform = test_set.transform = standardize
    if args.limit:
        train_set = Subset(train_set, range(min(args.limit, len(train_set))))
        test_set = Subset(test_set, range(min(args.limit, len(test_set))))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    if not args.no_augment:
        train_loader = Augmented(train_loader)
    test_loader = DataLoader(test_set, batch_size=500)

    model = models.ResNet()
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=args.weight_decay)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(args.epochs, 1))
    loss_fn = nn.CrossEntropyLoss()
    print(f"{args.dataset}: {len(train_set)} training, {len(test_set)} test images; "
          f"{model.num_parameters()} parameters, {nnx.get_num_threads()} threads, "
          f"augmentation {'off' if args.no_augment else 'on'}, {standardize}")
    history = train.fit(model, loss_fn, optimizer, train_loader, epochs=args.epochs,
                        val_loader=test_loader, scheduler=scheduler,
                        checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    accuracy = train.evaluate(model, test_loader, loss_fn)["accuracy"]
    print(f"test accuracy: {accuracy:.4f}")
    if args.plot:
        train.plot_history(history, args.plot)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.save or os.path.join(tmp, "resnet.npz")
        nnx.io.save(model.state_dict(), path)
        reloaded = models.ResNet()
        reloaded.load_state_dict(nnx.io.load(path))
        again = train.evaluate(reloaded, test_loader, loss_fn)["accuracy"]
    print(f"reloaded from {path}: test accuracy {again:.4f}")
    if again != accuracy:
        print("ERROR: the reloaded model does not reproduce the accuracy", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
