"""LeNet-5 on MNIST (or Fashion-MNIST) with Adam, batch 64.

    NNX_DATA_DIR=../shared/data python examples/lenet5_mnist.py --epochs 10
    NNX_DATA_DIR=../shared/data python examples/lenet5_mnist.py --dataset fashion-mnist

The model is ``nnx.models.LeNet5``: two 5x5 convolutions (6 and 16 channels, ReLU, 2x2 max
pooling) and three fully connected layers (400-120-84-10), 61,706 parameters. Images are
standardized with the training set's mean and std; the learning rate decays from 1e-3 to 0 on a
cosine over the run. After training, the weights are saved with ``nnx.io.save``, loaded into a
fresh model, and the test accuracy of the reloaded model is checked to be identical.
``--limit N`` trains and tests on the first N images of each split (a quick smoke run).
``--save-model lenet5.npz`` also writes a model file (``nnx.save_model``: layers, weights and the
input standardization) for ``nnx.load_model`` and the C++ program ``examples/cpp/mnist_classify``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import nnx
import nnx.io
from nnx import models, nn, optim, train
from nnx.data import MNIST, DataLoader, FashionMNIST, Standardize, Subset


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    p.add_argument("--data-dir", default=os.environ.get("NNX_DATA_DIR"))
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training and N test images")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default=None, help="where to save the weights (default: a temp dir)")
    p.add_argument("--save-model", default=None,
                   help="also write a model file (layers, weights, input standardization) that "
                        "nnx.load_model and the C++ runtime read (examples/cpp/mnist_classify)")
    p.add_argument("--plot", default=None, help="write loss/accuracy curves to this PNG")
    args = p.parse_args(argv)

    if args.threads:
        nnx.set_num_threads(args.threads)
    nnx.manual_seed(args.seed)
    dataset = MNIST if args.dataset == "mnist" else FashionMNIST
    try:
        train_set = dataset(root=args.data_dir, train=True)
        test_set = dataset(root=args.data_dir, train=False)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    # Statistics of the training images only; the test images get the same transform.
    standardize = Standardize().fit(train_set)
    train_set.transform = test_set.transform = standardize
    if args.limit:
        train_set = Subset(train_set, range(min(args.limit, len(train_set))))
        test_set = Subset(test_set, range(min(args.limit, len(test_set))))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = models.LeNet5()
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(args.epochs, 1))
    loss_fn = nn.CrossEntropyLoss()
    print(model)
    print(f"{args.dataset}: {len(train_set)} training, {len(test_set)} test images; "
          f"{model.num_parameters()} parameters, {nnx.get_num_threads()} threads, {standardize}")
    history = train.fit(model, loss_fn, optimizer, train_loader, epochs=args.epochs,
                        val_loader=test_loader, scheduler=scheduler)
    accuracy = train.evaluate(model, test_loader, loss_fn)["accuracy"]
    print(f"test accuracy: {accuracy:.4f}")
    if args.plot:
        train.plot_history(history, args.plot)

    if args.save_model:
        # The standardization travels with the model, so that a C++ program feeds it the same
        # inputs (one scalar mean and std: Standardize().fit without per_channel).
        nnx.save_model(model, args.save_model, metadata={"input_mean": float(standardize.mean),
                                                         "input_std": float(standardize.std)})
        print(f"model written to {args.save_model} (nnx.load_model, or from C++: "
              "examples/cpp/mnist_classify)")

    with tempfile.TemporaryDirectory() as tmp:
        path = args.save or os.path.join(tmp, "lenet5.npz")
        nnx.io.save(model.state_dict(), path)
        reloaded = models.LeNet5()
        reloaded.load_state_dict(nnx.io.load(path))
        again = train.evaluate(reloaded, test_loader, loss_fn)["accuracy"]
    print(f"reloaded from {path}: test accuracy {again:.4f}")
    if again != accuracy:
        print("ERROR: the reloaded model does not reproduce the accuracy", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
