"""nnx.data: IDX parsing, dataset files (search, verification, download), DataLoader, transforms.

Synthetic IDX files are written by hand here (not by nnx) so that reader and writer cannot share
a mistake. Downloads are served by a fake URL opener: these tests never use the network. Tests
on the real MNIST/Fashion-MNIST files read them from $NNX_DATA_DIR and skip without it.
"""

import collections
import gzip
import hashlib
import io
import os
import struct
import urllib.error

import numpy as np
import pytest

from nnx import data
from nnx.data import _download
from nnx.random import manual_seed
from nnx.tensor import Tensor

TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def idx_bytes(array, type_code=0x08):
    """IDX encoding of ``array``: magic 00 00 TT DD, big-endian uint32 dims, big-endian data."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.asarray(array, dtype=dtype[type_code]).tobytes()


def write(path, payload, compress=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def synthetic_split(n, seed, image_size=28):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, image_size, image_size), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


def split_blobs(n=5, seed=0, image_size=28):
    """gz bytes of the two files of a split, and the arrays they hold."""
    images, labels = synthetic_split(n, seed, image_size)
    blobs = (gzip.compress(idx_bytes(images)), gzip.compress(idx_bytes(labels)))
    return blobs, images, labels


def dataset_class(blobs, split="train", name="mnist"):
    """An MNIST subclass whose expected sizes and checksums are those of ``blobs``."""
    files = TRAIN_FILES if split == "train" else TEST_FILES
    entry = tuple((f, len(b), hashlib.sha256(b).hexdigest()) for f, b in zip(files, blobs))
    return type("TinyMNIST", (data.MNIST,), {
        "name": name,
        "mirrors": ("https://mirror-a.invalid/mnist/", "https://mirror-b.invalid/mnist/"),
        "resources": {split: entry},
    })


def install(folder, blobs, files=TRAIN_FILES):
    folder.mkdir(parents=True, exist_ok=True)
    for f, b in zip(files, blobs):
        (folder / f).write_bytes(b)
    return folder


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No $NNX_DATA_DIR and an empty home, so only what a test creates can be found."""
    monkeypatch.delenv("NNX_DATA_DIR", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def batch_arrays(batch):
    return tuple(t.numpy() for t in batch)


# ---------------------------------------------------------------------------------------------
# IDX format


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("type_code, dtype", [(0x08, np.uint8), (0x09, np.int8),
                                              (0x0B, np.int16), (0x0C, np.int32),
                                              (0x0D, np.float32), (0x0E, np.float64)])
def test_idx_round_trip(tmp_path, compress, type_code, dtype):
    rng = np.random.default_rng(1)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    name = "x.idx.gz" if compress else "x.idx"
    path = write(tmp_path / name, idx_bytes(array, type_code), compress)
    back = data.read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_idx_labels_and_empty(tmp_path):
    labels = np.array([5, 0, 4, 1, 9], dtype=np.uint8)
    path = write(tmp_path / "l.gz", idx_bytes(labels))
    np.testing.assert_array_equal(data.read_idx(path, expected_magic=0x801), labels)
    empty = write(tmp_path / "e.gz", idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    assert data.read_idx(empty, expected_magic=0x803).shape == (0, 28, 28)


def test_idx_bad_magic(tmp_path):
    payload = bytearray(idx_bytes(np.zeros((2, 3), np.uint8)))
    payload[0] = 0x01
    path = write(tmp_path / "bad-magic.gz", bytes(payload))
    with pytest.raises(ValueError, match=r"bad-magic\.gz: bad IDX magic number 0x01000802"):
        data.read_idx(path)
    payload[0], payload[2] = 0, 0x07
    write(path, bytes(payload))
    with pytest.raises(ValueError, match="bad IDX magic number 0x00000702"):
        data.read_idx(path)


def test_idx_wrong_kind(tmp_path):
    path = write(tmp_path / "labels.gz", idx_bytes(np.zeros(4, np.uint8)))
    with pytest.raises(ValueError, match=r"labels\.gz: IDX magic number is 0x00000801, "
                                         r"expected 0x00000803"):
        data.read_idx(path, expected_magic=0x803)


def test_idx_truncated_payload_and_trailing_bytes(tmp_path):
    payload = idx_bytes(np.ones((4, 28, 28), np.uint8))
    path = write(tmp_path / "short.gz", payload[:-10])
    with pytest.raises(ValueError, match=r"short\.gz: IDX payload truncated: shape \(4, 28, 28\) "
                                         r"needs 3136 bytes of data, the file has 3126"):
        data.read_idx(path)
    write(path, payload + b"\0")
    with pytest.raises(ValueError, match="trailing bytes"):
        data.read_idx(path)


def test_idx_truncated_header(tmp_path):
    path = write(tmp_path / "header.gz", idx_bytes(np.ones((4, 28, 28), np.uint8))[:10])
    with pytest.raises(ValueError, match="announces 3 dimensions but the file has only 10 bytes"):
        data.read_idx(path)
    write(path, b"\0\0")
    with pytest.raises(ValueError, match="too short for a header"):
        data.read_idx(path)


def test_idx_truncated_or_corrupt_gzip(tmp_path):
    blob = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8).reshape(10, 100)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=r"cut\.gz: not a valid gzip file"):
        data.read_idx(path)
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(ValueError, match="not a valid gzip file"):
        data.read_idx(path)


# ---------------------------------------------------------------------------------------------
# MNIST-format datasets from synthetic files


def test_dataset_from_synthetic_files(tmp_path, clean_env):
    blobs, images, labels = split_blobs(n=6)
    cls = dataset_class(blobs)
    ds = cls(root=install(tmp_path / "root" / "mnist", blobs).parent)
    assert len(ds) == 6
    assert ds.data.dtype == np.uint8 and ds.data.shape == (6, 28, 28)
    np.testing.assert_array_equal(ds.data, images)
    assert ds.targets.dtype == np.int64
    np.testing.assert_array_equal(ds.targets, labels)
    image, label = ds[2]
    assert image.dtype == np.float32 and image.shape == (1, 28, 28)
    np.testing.assert_allclose(image[0], images[2] / 255, rtol=1e-6)
    assert label == labels[2] and isinstance(label, int)
    assert ds.classes[0] == "0 - zero" and len(ds.classes) == 10


def test_dataset_wrong_counts_and_shapes(tmp_path, clean_env):
    images, labels = synthetic_split(5, 0)
    root = tmp_path / "r"
    write(root / TRAIN_FILES[0], idx_bytes(images))
    write(root / TRAIN_FILES[1], idx_bytes(labels[:4]))
    with pytest.raises(ValueError, match=r"4 labels for 5 images"):
        data.MNIST(root=root, verify=False)
    write(root / TRAIN_FILES[1], idx_bytes(np.array([1, 2, 3, 10, 0], np.uint8)))
    with pytest.raises(ValueError, match="label 10 out of range 0..9"):
        data.MNIST(root=root, verify=False)
    write(root / TRAIN_FILES[0], idx_bytes(synthetic_split(5, 0, image_size=10)[0]))
    with pytest.raises(ValueError, match="images are 10x10, expected 28x28"):
        data.MNIST(root=root, verify=False)
    write(root / TRAIN_FILES[0], idx_bytes(labels))  # a label file where images belong
    with pytest.raises(ValueError, match="expected 0x00000803"):
        data.MNIST(root=root, verify=False)


def test_existing_files_are_verified(tmp_path, clean_env):
    blobs, _, _ = split_blobs()
    cls = dataset_class(blobs)
    root = install(tmp_path / "r", blobs)
    (root / TRAIN_FILES[0]).write_bytes(blobs[0][:-1])
    with pytest.raises(ValueError, match=rf"{TRAIN_FILES[0]}: {len(blobs[0]) - 1} bytes, "
                                         rf"expected {len(blobs[0])}.*verify=False"):
        cls(root=root)
    # Same size, different bytes: only the hash can tell.
    corrupt = bytearray(blobs[0])
    corrupt[len(corrupt) // 2] ^= 0xFF
    (root / TRAIN_FILES[0]).write_bytes(bytes(corrupt))
    with pytest.raises(ValueError, match="SHA-256 is .* expected"):
        cls(root=root)


def test_search_order(tmp_path, clean_env, monkeypatch):
    found = {}
    places = {"root": tmp_path / "root" / "mnist", "env": tmp_path / "env" / "mnist",
              "cache": clean_env / ".cache" / "nnx" / "mnist"}
    for seed, (place, folder) in enumerate(places.items()):
        blobs, _, labels = split_blobs(seed=seed)
        found[place] = labels
        install(folder, blobs)
    # Each place holds different bytes: verify=False lets one class read all of them.
    monkeypatch.setenv("NNX_DATA_DIR", str(tmp_path / "env"))

    def loaded(**kwargs):
        ds = data.MNIST(verify=False, **kwargs)
        return next(p for p, labels in found.items() if np.array_equal(ds.targets, labels)), ds

    place, ds = loaded(root=tmp_path / "root")
    assert place == "root" and ds.folder == str(places["root"])
    assert loaded()[0] == "env"
    assert loaded(root=tmp_path / "nowhere")[0] == "env"
    monkeypatch.delenv("NNX_DATA_DIR")
    assert loaded()[0] == "cache"
    # The files may also sit directly in root.
    flat = install(tmp_path / "flat", split_blobs(seed=9)[0])
    assert data.MNIST(root=flat, verify=False).folder == str(flat)


def test_missing_files_message(tmp_path, clean_env):
    with pytest.raises(FileNotFoundError) as info:
        data.FashionMNIST(root=tmp_path / "mine", train=False)
    message = str(info.value)
    for expected in ("t10k-images-idx3-ubyte.gz", str(tmp_path / "mine" / "fashion-mnist"),
                     str(clean_env / ".cache" / "nnx" / "fashion-mnist"),
                     "$NNX_DATA_DIR is not set", "Set NNX_DATA_DIR", "download=True"):
        assert expected in message


class FakeResponse(io.BytesIO):
    def __init__(self, payload, fail_after=None):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}
        self.fail_after = fail_after

    def read(self, n=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(n if self.fail_after is None else min(n, self.fail_after))


@pytest.fixture
def served(monkeypatch):
    """A fake URL opener serving ``served[url] = bytes``; the first mirror is always down."""
    table, requested = {}, []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        if "mirror-a" in url:
            raise urllib.error.URLError("mirror a is down")
        if url not in table:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        payload = table[url]
        return payload if isinstance(payload, FakeResponse) else FakeResponse(payload)

    monkeypatch.setattr(_download, "urlopen", fake_urlopen)
    table["requested"] = requested
    return table


def test_download_installs_verified_files(clean_env, served, capsys):
    blobs, images, labels = split_blobs(n=7, seed=3)
    cls = dataset_class(blobs)
    for f, b in zip(TRAIN_FILES, blobs):
        served[f"https://mirror-b.invalid/mnist/{f}"] = b
    ds = cls(download=True)
    folder = clean_env / ".cache" / "nnx" / "mnist"
    assert ds.folder == str(folder)
    assert sorted(os.listdir(folder)) == sorted(TRAIN_FILES)  # no temporary file left
    np.testing.assert_array_equal(ds.data, images)
    np.testing.assert_array_equal(ds.targets, labels)
    assert "downloading https://mirror-b.invalid/mnist/train-images" in capsys.readouterr().err
    # Present now: a second dataset reads the files without asking the network.
    served["requested"].clear()
    cls(download=True)
    assert served["requested"] == []


def test_download_into_root(tmp_path, clean_env, served):
    blobs, _, _ = split_blobs(seed=4)
    for f, b in zip(TRAIN_FILES, blobs):
        served[f"https://mirror-b.invalid/mnist/{f}"] = b
    ds = dataset_class(blobs)(root=tmp_path / "mine", download=True)
    assert ds.folder == str(tmp_path / "mine" / "mnist")
    assert not (clean_env / ".cache").exists()


def test_download_bad_checksum_leaves_nothing(clean_env, served):
    blobs, _, _ = split_blobs(seed=5)
    cls = dataset_class(blobs)
    for f, b in zip(TRAIN_FILES, blobs):
        served[f"https://mirror-b.invalid/mnist/{f}"] = b[:-1] + bytes([b[-1] ^ 1])
    with pytest.raises(OSError) as info:
        cls(download=True)
    message = str(info.value)
    assert "SHA-256 mismatch" in message and "mirror a is down" in message
    folder = clean_env / ".cache" / "nnx" / "mnist"
    assert os.listdir(folder) == []


def test_download_interrupted_leaves_nothing(clean_env, served):
    blobs, _, _ = split_blobs(seed=6)
    cls = dataset_class(blobs)
    served[f"https://mirror-b.invalid/mnist/{TRAIN_FILES[0]}"] = FakeResponse(blobs[0],
                                                                              fail_after=100)
    with pytest.raises(OSError, match="connection reset"):
        cls(download=True)
    assert os.listdir(clean_env / ".cache" / "nnx" / "mnist") == []


# ---------------------------------------------------------------------------------------------
# Datasets and DataLoader


class ListDataset(data.Dataset):
    """Per-sample only (no arrays()): exercises the loader's general path."""

    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.full(3, i, dtype=np.float64), i

    def __len__(self):
        return self.n


def epoch_labels(loader):
    batches = [batch_arrays(b)[1] for b in loader]
    assert len(batches) == len(loader)
    return batches


@pytest.mark.parametrize("n", [1, 7, 64, 65])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("kind", ["tensor", "samples"])
def test_every_sample_once_per_epoch(n, batch_size, shuffle, drop_last, kind):
    if kind == "tensor":
        ds = data.TensorDataset(np.arange(n * 3, dtype=np.float64).reshape(n, 3) // 3,
                                np.arange(n))
    else:
        ds = ListDataset(n)
    loader = data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                             generator=0)
    full, rest = divmod(n, batch_size)
    assert len(loader) == full + (1 if rest and not drop_last else 0)
    for _ in range(2):
        batches = epoch_labels(loader)
        sizes = [len(b) for b in batches]
        assert all(s == batch_size for s in sizes[:full])
        seen = np.concatenate(batches) if batches else np.array([], np.int64)
        kept = full * batch_size if drop_last else n
        assert len(seen) == len(np.unique(seen)) == kept
        if not shuffle:
            np.testing.assert_array_equal(seen, np.arange(kept))
        elif not drop_last:
            np.testing.assert_array_equal(np.sort(seen), np.arange(n))


def test_empty_dataset():
    loader = data.DataLoader(data.TensorDataset(np.zeros((0, 2))), batch_size=4, shuffle=True)
    assert len(loader) == 0 and list(loader) == []


def shuffled_order(loader):
    return np.concatenate([batch_arrays(b)[-1] for b in loader])


def test_shuffle_reproducible_under_manual_seed():
    loader = data.DataLoader(data.TensorDataset(np.arange(50)), batch_size=8, shuffle=True)
    manual_seed(0)
    first, second = shuffled_order(loader), shuffled_order(loader)
    manual_seed(0)
    np.testing.assert_array_equal(shuffled_order(loader), first)
    np.testing.assert_array_equal(shuffled_order(loader), second)
    assert not np.array_equal(first, second)  # each epoch draws a new order
    manual_seed(1)
    assert not np.array_equal(shuffled_order(loader), first)


def test_shuffle_with_own_generator():
    ds = data.TensorDataset(np.arange(50))

    def two_epochs(generator):
        loader = data.DataLoader(ds, batch_size=8, shuffle=True, generator=generator)
        return shuffled_order(loader), shuffled_order(loader)

    a = two_epochs(7)
    b = two_epochs(7)
    c = two_epochs(np.random.default_rng(7))
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(a[0], two_epochs(8)[0])
    with pytest.raises(TypeError, match="generator must be"):
        data.DataLoader(ds, shuffle=True, generator="seed")


def test_default_collate_dtypes():
    Pair = collections.namedtuple("Pair", "x y")
    batch = [
        {"image": np.full((2, 2), i, np.float64), "label": i, "weight": 0.5 * i, "flag": i > 0,
         "id": f"s{i}", "pair": Pair(np.uint8(i), (np.int32(i), np.float16(i)))}
        for i in range(3)
    ]
    out = data.default_collate(batch)
    expected = {"image": (np.float32, (3, 2, 2)), "label": (np.int64, (3,)),
                "weight": (np.float32, (3,)), "flag": (np.bool_, (3,))}
    for key, (dtype, shape) in expected.items():
        array = out[key].numpy()
        assert array.dtype == dtype and array.shape == shape, key
    assert out["id"] == ["s0", "s1", "s2"]
    assert isinstance(out["pair"], Pair)
    assert out["pair"].x.numpy().dtype == np.int64
    assert out["pair"].y[0].numpy().dtype == np.int64
    assert out["pair"].y[1].numpy().dtype == np.float32
    np.testing.assert_array_equal(out["image"].numpy()[:, 0, 0], [0, 1, 2])
    tensors = data.default_collate([Tensor(np.ones(3, np.float32))] * 2)
    assert tensors.shape == (2, 3)


def test_default_collate_errors():
    with pytest.raises(ValueError, match="different shapes"):
        data.default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="cannot batch samples of type object"):
        data.default_collate([object()])
    with pytest.raises(TypeError, match="dtype complex128"):
        data.default_collate([np.zeros(2, complex)])
    with pytest.raises(ValueError, match="different numbers of fields"):
        data.default_collate([(1, 2), (1,)])


def test_fast_path_equals_per_sample_path():
    rng = np.random.default_rng(0)
    ds = data.TensorDataset(rng.standard_normal((37, 3, 2)), rng.integers(0, 10, 37, np.int32),
                            rng.random(37) > 0.5)
    for shuffle in (False, True):
        fast = data.DataLoader(ds, batch_size=8, shuffle=shuffle, generator=3)
        slow = data.DataLoader(ds, batch_size=8, shuffle=shuffle, generator=3,
                               collate_fn=data.default_collate)
        for a, b in zip(fast, slow, strict=True):
            for x, y in zip(batch_arrays(a), batch_arrays(b), strict=True):
                assert x.dtype == y.dtype and x.shape == y.shape
                np.testing.assert_array_equal(x, y)
        assert batch_arrays(next(iter(fast)))[0].dtype == np.float32


def test_fast_path_skips_getitem(monkeypatch):
    ds = data.TensorDataset(np.zeros((10, 2), np.float32), np.arange(10))
    monkeypatch.setattr(data.TensorDataset, "__getitem__", lambda self, i: pytest.fail("slow"))
    x, y = batch_arrays(next(iter(data.DataLoader(ds, batch_size=4, shuffle=True))))
    assert x.shape == (4, 2) and y.dtype == np.int64
    # A batch is a copy: changing it leaves the dataset alone.
    first = next(iter(data.DataLoader(ds, batch_size=4)))
    first[0].numpy()[:] = 1
    assert not ds.arrays()[0].any()


def test_tensor_dataset():
    x, y = np.arange(12.0).reshape(4, 3), np.arange(4)
    ds = data.TensorDataset(x, Tensor(y))
    assert len(ds) == 4
    xi, yi = ds[-1]
    np.testing.assert_array_equal(xi, x[3])
    assert yi == 3
    assert [t.shape for t in ds.tensors] == [(4, 3), (4,)]
    with pytest.raises(ValueError, match=r"same first dimension .* got shapes \(4, 3\), \(3,\)"):
        data.TensorDataset(x, y[:3])
    with pytest.raises(ValueError, match="at least one array"):
        data.TensorDataset()
    with pytest.raises(ValueError, match="0-d array"):
        data.TensorDataset(np.float32(1))
    with pytest.raises(TypeError):
        data.Dataset()


def test_loader_argument_errors():
    ds = data.TensorDataset(np.arange(4))
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        data.DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        data.DataLoader(ds, batch_size=2.0)


def test_random_split_and_subset():
    ds = data.TensorDataset(np.arange(20) * 10, np.arange(20))
    parts = data.random_split(ds, [15, 5], generator=1)
    indices = np.concatenate([p.indices for p in parts])
    np.testing.assert_array_equal(np.sort(indices), np.arange(20))
    val = parts[1]
    assert len(val) == 5 and val[0][1] == val.indices[0]
    fast = data.DataLoader(val, batch_size=2)
    slow = data.DataLoader(val, batch_size=2, collate_fn=data.default_collate)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(batch_arrays(a)[0], batch_arrays(b)[0])
    with pytest.raises(ValueError, match="sum to the dataset size 20"):
        data.random_split(ds, [10, 5])
    with pytest.raises(IndexError, match="indices must lie in"):
        data.Subset(ds, [0, 20])


# ---------------------------------------------------------------------------------------------
# Transforms


def test_standardize_scalar():
    x = np.random.default_rng(0).random((50, 1, 4, 4), dtype=np.float32) * 3 + 1
    s = data.Standardize().fit(x)
    assert s.mean.shape == () and np.isclose(s.mean, x.astype(np.float64).mean())
    assert np.isclose(s.std, x.astype(np.float64).std())
    y = s(x)
    assert y.dtype == np.float32
    assert abs(y.mean()) < 1e-5 and abs(y.std() - 1) < 1e-5
    np.testing.assert_array_equal(s(x[3]), y[3])
    z = s(Tensor(x))
    np.testing.assert_array_equal(z.numpy(), y)


def test_standardize_per_channel_and_constant():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 3, 5, 5)) * np.array([1, 2, 3])[:, None, None] + 7
    x[:, 2] = 4.0  # a constant channel: std 0 must not give NaN
    s = data.Standardize().fit(x, per_channel=True)
    assert s.mean.shape == (3, 1, 1)
    np.testing.assert_allclose(s.mean.ravel(), x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(s.std.ravel()[:2], x.std(axis=(0, 2, 3))[:2])
    y = s.apply_batch(x)
    assert np.isfinite(y).all() and not y[:, 2].any()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3))[:2], 0, atol=1e-12)
    np.testing.assert_array_equal(s(x[5]), y[5])
    features = data.Standardize().fit(x.reshape(40, -1), per_channel=True)
    assert features.mean.shape == (75,)


def test_standardize_errors():
    with pytest.raises(RuntimeError, match="call fit"):
        data.Standardize()(np.zeros(3))
    with pytest.raises(ValueError, match="both mean and std"):
        data.Standardize(mean=0.5)
    with pytest.raises(ValueError, match="per_channel needs data of shape"):
        data.Standardize().fit(np.zeros(4), per_channel=True)
    s = data.Standardize(0.5, 0.25)
    np.testing.assert_array_equal(s(np.array([0.5, 1.0], np.float32)), [0.0, 2.0])


def test_flatten_and_compose():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    t = data.Compose([data.Standardize(1.0, 2.0), data.Flatten()])
    batch = t.apply_batch(x)
    assert batch.shape == (2, 12)
    np.testing.assert_array_equal(t(x[1]), batch[1])
    assert not hasattr(data.Compose([lambda v: v]), "apply_batch")


def test_dataset_transforms_keep_fast_path(tmp_path, clean_env, monkeypatch):
    blobs, _, _ = split_blobs(n=9, seed=2)
    root = install(tmp_path / "r", blobs)
    cls = dataset_class(blobs)
    plain = cls(root=root)
    norm = data.Standardize().fit(plain)
    ds = cls(root=root, transform=data.Compose([norm, data.Flatten()]))
    images, targets = ds.arrays()
    assert images.shape == (9, 784) and images.dtype == np.float32
    fast = data.DataLoader(ds, batch_size=4, shuffle=True, generator=0)
    slow = data.DataLoader(ds, batch_size=4, shuffle=True, generator=0,
                           collate_fn=data.default_collate)
    for a, b in zip(fast, slow, strict=True):
        for x, y in zip(batch_arrays(a), batch_arrays(b), strict=True):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
    # A per-sample-only transform falls back to __getitem__.
    odd = cls(root=root, transform=lambda im: im * 2)
    assert odd.arrays() is None
    x, _ = batch_arrays(next(iter(data.DataLoader(odd, batch_size=9))))
    np.testing.assert_allclose(x, plain.arrays()[0] * 2)


def assert_same_batches(ds):
    fast = data.DataLoader(ds, batch_size=3, shuffle=True, generator=0)
    slow = data.DataLoader(ds, batch_size=3, shuffle=True, generator=0,
                           collate_fn=data.default_collate)
    for a, b in zip(fast, slow, strict=True):
        for x, y in zip(batch_arrays(a), batch_arrays(b), strict=True):
            np.testing.assert_array_equal(x, y)


def test_split_sees_transform_set_and_refitted_after_split(tmp_path, clean_env):
    blobs, _, _ = split_blobs(n=12, seed=3)
    cls, root = dataset_class(blobs), install(tmp_path / "r", blobs)
    mnist = cls(root=root)
    train, val = data.random_split(mnist, [8, 4], generator=0)
    standardize = data.Standardize().fit(train)  # reads (and caches) train's raw rows
    mnist.transform = standardize
    assert_same_batches(train)
    assert abs(float(train.arrays()[0].mean())) < 1e-6
    # Refitting the same object in place must not leave stale standardised arrays behind.
    standardize.fit(data.Subset(cls(root=root), val.indices))
    assert_same_batches(train)
    assert_same_batches(val)
    assert abs(float(val.arrays()[0].mean())) < 1e-6
    mnist.transform = data.Compose([standardize, data.Flatten()])
    assert_same_batches(train)
    standardize.fit(np.array([0.5, 1.5]))
    assert_same_batches(train)
    assert train.arrays()[0].shape == (8, 784)


# ---------------------------------------------------------------------------------------------
# The real files from $NNX_DATA_DIR


def real(cls, train):
    root = os.environ.get("NNX_DATA_DIR")
    if not root:
        pytest.skip("NNX_DATA_DIR is not set: real MNIST/Fashion-MNIST tests skipped")
    files = TRAIN_FILES if train else TEST_FILES
    if not all(os.path.isfile(os.path.join(root, cls.name, f)) for f in files):
        pytest.skip(f"{cls.name} files not found under {root}")
    return cls(root=root, train=train)


@pytest.fixture(scope="module")
def mnist_train():
    return real(data.MNIST, True)


def test_real_mnist(mnist_train):
    assert len(mnist_train) == 60000 and mnist_train.data.shape == (60000, 28, 28)
    assert mnist_train.targets[0] == 5
    np.testing.assert_array_equal(np.unique(mnist_train.targets), np.arange(10))
    images, _ = mnist_train.arrays()
    assert images.shape == (60000, 1, 28, 28) and images.dtype == np.float32
    s = data.Standardize().fit(images)
    assert abs(float(s.mean) - 0.1307) < 1e-4 and abs(float(s.std) - 0.3081) < 1e-4
    test = real(data.MNIST, False)
    assert len(test) == 10000 and test.targets.max() == 9 and test.targets.min() == 0


def test_real_mnist_loader(mnist_train):
    loader = data.DataLoader(mnist_train, batch_size=64, shuffle=True, generator=0)
    assert len(loader) == 938
    x, y = batch_arrays(next(iter(loader)))
    assert x.shape == (64, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (64,) and y.dtype == np.int64
    assert 0 <= x.min() and x.max() <= 1


def test_real_fashion_mnist():
    train, test = real(data.FashionMNIST, True), real(data.FashionMNIST, False)
    assert (len(train), len(test)) == (60000, 10000)
    np.testing.assert_array_equal(np.unique(train.targets), np.arange(10))
    assert train.classes[9] == "Ankle boot"
    image, label = test[0]
    assert image.shape == (1, 28, 28) and 0 <= label <= 9
