"""MNIST and Fashion-MNIST, read from the original gzip IDX files.

Where the files are looked for, first match wins (a folder counts only when it holds both files
of the requested split):

1. ``root`` given: ``<root>/<name>/``, then ``<root>/`` itself;
2. ``$NNX_DATA_DIR/<name>/`` (the layout of nnx's shared data folder);
3. ``~/.cache/nnx/<name>/``.

``<name>`` is ``mnist`` or ``fashion-mnist``. With ``download=True`` missing files are fetched
into ``<root>/<name>/`` when ``root`` is given, else into ``~/.cache/nnx/<name>/``.
"""

from __future__ import annotations

import hashlib
import os
import weakref

import numpy as np

from nnx.data import _download
from nnx.data.dataset import Dataset
from nnx.data.idx import decompress_idx, parse_idx

DATA_DIR_ENV = "NNX_DATA_DIR"
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

# Parsed files shared by every dataset object alive in this process, so that building the same
# split twice does not parse it twice; weak, so the memory goes with the last dataset using it.
_parsed: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
# Files whose SHA-256 has been checked in this process, keyed by path, size and mtime.
_verified: set = set()


def cache_dir(name: str) -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "nnx", name)


def _load_file(path: str, size: int, sha256: str, magic: int, verify: bool) -> np.ndarray:
    """Reads one IDX file, after checking its size (always) and SHA-256 (once per process)."""
    st = os.stat(path)
    if verify and st.st_size != size:
        raise ValueError(f"{path}: {st.st_size} bytes, expected {size}: the file is truncated or "
                         f"not the original; delete it (download=True fetches it again) or pass "
                         f"verify=False to read a modified copy")
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    cached = _parsed.get((key, magic))
    must_hash = verify and (key, sha256) not in _verified
    if cached is not None and not must_hash:
        return cached
    with open(path, "rb") as f:
        raw = f.read()
    if must_hash:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != sha256:
            raise ValueError(f"{path}: SHA-256 is {digest}, expected {sha256}: the file is "
                             f"corrupt or not the original; delete it (download=True fetches it "
                             f"again) or pass verify=False to read a modified copy")
        _verified.add((key, sha256))
    if cached is not None:
        return cached
    array = parse_idx(decompress_idx(raw, path), path, magic)
    _parsed[(key, magic)] = array
    return array


class MNIST(Dataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28, labels 0-9.

    ``MNIST(root=None, train=True, download=False, transform=None, target_transform=None,
    verify=True)``. See this module's docstring for where the files are looked for. ``verify``
    checks each file's size every time and its SHA-256 once per process (a ~10 ms hash); pass
    ``verify=False`` to read modified files.

    Attributes, as in torchvision: ``data`` (uint8 (N, 28, 28), read-only because it is shared
    between datasets built from the same file), ``targets`` (int64 (N,)), ``classes``.
    ``ds[i]`` is ``(image, label)``: the image as float32 (1, 28, 28) in [0, 1] (unlike
    torchvision's PIL image), passed through ``transform`` if given; the label an int, passed
    through ``target_transform``.

    ``arrays()`` gives the whole split as ``(images, targets)`` for ``DataLoader``'s fast path:
    float32 (N, 1, 28, 28) in [0, 1] and int64 (N,), with the transforms applied to the whole
    batch, or None when a transform has no ``apply_batch`` (then the loader goes sample by
    sample). It is cached per pair of transform objects and their ``version`` attributes
    (``Standardize.fit`` bumps its own, ``Compose`` reports its members'), so refitting a
    transform in place is seen. A custom batch transform whose behaviour changes in place must
    change a ``version`` attribute too, or be replaced by a new object.
    """

    name = "mnist"
    mirrors = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    # split -> ((file, bytes, SHA-256) of the images, the same of the labels)
    resources = {
        "train": (
            ("train-images-idx3-ubyte.gz", 9912422,
             "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            ("train-labels-idx1-ubyte.gz", 28881,
             "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        ),
        "test": (
            ("t10k-images-idx3-ubyte.gz", 1648877,
             "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            ("t10k-labels-idx1-ubyte.gz", 4542,
             "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        ),
    }
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    image_shape = (28, 28)

    def __init__(self, root=None, train: bool = True, download: bool = False, transform=None,
                 target_transform=None, verify: bool = True):
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        self.folder = self._locate(root, download, verify)
        (images_file, images_size, images_sha), (labels_file, labels_size, labels_sha) = \
            self.resources[self.split]
        images_path = os.path.join(self.folder, images_file)
        labels_path = os.path.join(self.folder, labels_file)
        self.data = _load_file(images_path, images_size, images_sha, IMAGES_MAGIC, verify)
        labels = _load_file(labels_path, labels_size, labels_sha, LABELS_MAGIC, verify)
        if self.data.shape[1:] != self.image_shape:
            raise ValueError(f"{images_path}: images are {self.data.shape[1]}x"
                             f"{self.data.shape[2]}, expected {self.image_shape[0]}x"
                             f"{self.image_shape[1]}")
        if len(labels) != len(self.data):
            raise ValueError(f"{labels_path}: {len(labels)} labels for {len(self.data)} images "
                             f"in {images_path}")
        if labels.size and labels.max() >= len(self.classes):
            raise ValueError(f"{labels_path}: label {labels.max()} out of range 0.."
                             f"{len(self.classes) - 1}")
        self.targets = labels.astype(np.int64)
        self._arrays = None

    @property
    def split(self) -> str:
        return "train" if self.train else "test"

    def _search_dirs(self, root) -> list[str]:
        dirs = []
        if root is not None:
            root = os.path.expanduser(os.fspath(root))
            dirs += [os.path.join(root, self.name), root]
        env = os.environ.get(DATA_DIR_ENV)
        if env:
            dirs.append(os.path.join(os.path.expanduser(env), self.name))
        dirs.append(cache_dir(self.name))
        return dirs

    def _locate(self, root, download: bool, verify: bool) -> str:
        """The first folder holding both files of the split, downloading them if allowed."""
        files = [f for f, _, _ in self.resources[self.split]]
        dirs = self._search_dirs(root)
        for folder in dirs:
            if all(os.path.isfile(os.path.join(folder, f)) for f in files):
                return folder
        target = (os.path.join(os.path.expanduser(os.fspath(root)), self.name)
                  if root is not None else cache_dir(self.name))
        if download:
            for f, size, sha in self.resources[self.split]:
                if not os.path.isfile(os.path.join(target, f)):
                    _download.download(list(self.mirrors), target, f, sha)
            return target
        env = "" if os.environ.get(DATA_DIR_ENV) else f" (${DATA_DIR_ENV} is not set)"
        raise FileNotFoundError(
            f"{type(self).__name__}: {' and '.join(files)} not found; searched "
            f"{', '.join(dirs)}{env}. Set {DATA_DIR_ENV} to a folder containing {self.name}/, "
            f"pass root=..., or pass download=True to fetch them into {target}")

    def arrays(self):
        key = (self.transform, _version(self.transform), self.target_transform,
               _version(self.target_transform))
        cached = self._arrays
        if cached is not None and cached[0][0] is key[0] and cached[0][2] is key[2] \
                and cached[0][1] == key[1] and cached[0][3] == key[3]:
            return cached[1]
        image_batch = _batch_fn(self.transform)
        target_batch = _batch_fn(self.target_transform)
        if image_batch is None or target_batch is None:
            return None
        images = image_batch(self._scaled(self.data[:, None]))
        targets = target_batch(self.targets)
        self._arrays = (key, (images, targets))
        return images, targets

    @staticmethod
    def _scaled(images: np.ndarray) -> np.ndarray:
        # One definition for both paths, so whole-array and per-sample images are bitwise equal.
        scaled = images.astype(np.float32)
        scaled /= np.float32(255)
        return scaled

    def __getitem__(self, index):
        image = self._scaled(self.data[index][None])
        target = int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(split={self.split}, {len(self)} samples, "
                f"folder={self.folder!r})")


def _version(transform):
    # Changes when a transform is refitted in place (Standardize.fit); None when it has none.
    return getattr(transform, "version", None)


def _batch_fn(transform):
    if transform is None:
        return lambda x: x
    return getattr(transform, "apply_batch", None)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: the MNIST format and sizes, 10 kinds of clothing.

    Same interface as ``MNIST``; files are looked for under ``fashion-mnist/``.
    """

    name = "fashion-mnist"
    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    resources = {
        "train": (
            ("train-images-idx3-ubyte.gz", 26421880,
             "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
            ("train-labels-idx1-ubyte.gz", 29515,
             "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        ),
        "test": (
            ("t10k-images-idx3-ubyte.gz", 4422102,
             "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
            ("t10k-labels-idx1-ubyte.gz", 5148,
             "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
        ),
    }
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
