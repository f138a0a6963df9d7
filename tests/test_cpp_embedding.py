"""nnx embedded in a C++ program: installs the C++ library with CMake into a temporary prefix,
builds examples/cpp against it (find_package(nnx CONFIG REQUIRED), nnx::nnx), then checks that
the model runtime (nnx::Model) predicts what Python predicts on the same MNIST test images, and
that the kernel example passes its own checks.

Skips without cmake or a C++ compiler; the MNIST tests skip without $NNX_DATA_DIR. The build
(once per run, without the Python module) takes about a minute on two cores; it uses
$CMAKE_BUILD_PARALLEL_LEVEL jobs, 2 by default.
"""

import gzip
import os
import re
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

import nnx
from nnx import data, nn, optim
from nnx.model_file import LSTMOutput

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_IMAGES = 500
BATCH = 128  # the C++ program and Python evaluate the same batches
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _compiler():
    return os.environ.get("CXX") or next(
        (c for c in ("c++", "g++", "clang++") if shutil.which(c)), None)


pytestmark = [
    pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed"),
    pytest.mark.skipif(_compiler() is None, reason="no C++ compiler (c++, g++, clang++ or $CXX)"),
]


def _run(*cmd, cwd=None):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited with {proc.returncode}:\n"
                    f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


@pytest.fixture(scope="module")
def install(tmp_path_factory):
    """(prefix, folder of the built examples)."""
    tmp = tmp_path_factory.mktemp("cpp")
    build, prefix, examples = tmp / "build", tmp / "prefix", tmp / "examples"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    _run("cmake", "-S", ROOT, "-B", build, *generator, "-DNNX_BUILD_PYTHON=OFF",
         "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_INSTALL_PREFIX={prefix}")
    _run("cmake", "--build", build, "-j", jobs)
    _run("cmake", "--install", build)
    _run("cmake", "-S", os.path.join(ROOT, "examples", "cpp"), "-B", examples, *generator,
         f"-DCMAKE_PREFIX_PATH={prefix}")
    _run("cmake", "--build", examples, "-j", jobs)
    return prefix, examples


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    """(data root, gunzipped test images, gunzipped test labels). The example reads plain IDX
    files (nnx does without zlib), so the test decompresses them here."""
    root = os.environ.get("NNX_DATA_DIR")
    if not root:
        pytest.skip("NNX_DATA_DIR is not set: the C++ MNIST classification is skipped")
    if not all(os.path.isfile(os.path.join(root, "mnist", f)) for f in MNIST_FILES):
        pytest.skip(f"MNIST files not found under {root}/mnist")
    tmp = tmp_path_factory.mktemp("mnist")
    paths = []
    for name in MNIST_FILES[2:]:
        with gzip.open(os.path.join(root, "mnist", name)) as f:
            path = tmp / name[:-3]
            path.write_bytes(f.read())
            paths.append(path)
    return root, *paths


def _classify(install, mnist, model_path):
    """Runs the C++ example on the first N_IMAGES test images: (labels, predictions, logits,
    the accuracy it printed)."""
    _, examples = install
    out = _run(examples / "mnist_classify", model_path, mnist[1], mnist[2], "--limit", N_IMAGES,
               "--batch", BATCH, "--print")
    rows = [line.split() for line in out.splitlines() if re.match(r"\d", line)]
    assert len(rows) == N_IMAGES
    accuracy = float(re.search(r"^accuracy (\S+)", out, re.M).group(1))
    return (np.array([int(r[1]) for r in rows]), np.array([int(r[2]) for r in rows]),
            np.array([[float(v) for v in r[3:]] for r in rows]), accuracy)


def _python_logits(model, images):
    model.eval()
    with nnx.no_grad():
        return np.concatenate([model(nnx.tensor(images[i:i + BATCH])).numpy()
                               for i in range(0, len(images), BATCH)])


def _test_images(root, standardize=None):
    images, labels = data.MNIST(root, train=False).arrays()
    images, labels = images[:N_IMAGES], labels[:N_IMAGES]
    return (standardize(images) if standardize else images), labels


def _assert_same_predictions(install, mnist, model, path, images, labels):
    want = _python_logits(model, images)
    got_labels, got_pred, got_logits, accuracy = _classify(install, mnist, path)
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_allclose(got_logits, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got_pred, want.argmax(axis=1))
    assert accuracy == pytest.approx(np.mean(want.argmax(axis=1) == labels), abs=1e-4)
    return accuracy


def test_install_provides_headers_library_and_cmake_package(install):
    prefix, _ = install
    lib = next(d for d in ("lib", "lib64") if (prefix / d / "libnnx.a").is_file())
    for name in ("nnxConfig.cmake", "nnxConfigVersion.cmake", "nnxTargets.cmake"):
        assert (prefix / lib / "cmake" / "nnx" / name).is_file()
    headers = sorted((prefix / "include" / "nnx").glob("*.h"))
    assert {"nnx.h", "model.h", "gemm.h", "conv.h"} <= {h.name for h in headers}
    # The public API stands alone: the standard library and its own headers, nothing else.
    for header in headers:
        for included in re.findall(r'#include\s+([<"][^>"]+[>"])', header.read_text()):
            assert included.startswith('"nnx/') or re.fullmatch(r"<[a-z_]+>", included), \
                f"{header.name} includes {included}"


@pytest.mark.skipif(os.path.dirname(os.path.abspath(nnx.__file__)).startswith(ROOT),
                    reason="nnx is imported from the source tree: only a wheel carries the C++ "
                    "library in the package")
def test_wheel_carries_the_cpp_library():
    include, cmake_dir = nnx.get_include(), nnx.get_cmake_dir()
    assert os.path.isfile(os.path.join(include, "nnx", "nnx.h"))
    for name in ("nnxConfig.cmake", "nnxConfigVersion.cmake", "nnxTargets.cmake"):
        assert os.path.isfile(os.path.join(cmake_dir, name))
    lib = os.path.dirname(os.path.dirname(cmake_dir))
    assert os.path.isfile(os.path.join(lib, "libnnx.a"))


def test_kernel_example_matches_naive_loops(install):
    _, examples = install
    out = _run(examples / "kernel_check")
    assert "all kernel checks passed" in out
    assert out.count(" ok") == 8


def test_trained_lenet5_predicts_in_cpp_as_in_python(install, mnist, tmp_path):
    root = mnist[0]
    train_set = data.MNIST(root, train=True)
    standardize = data.Standardize().fit(train_set)
    train_set.transform = standardize
    nnx.manual_seed(0)
    model = nnx.models.LeNet5()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = data.DataLoader(data.Subset(train_set, range(200 * 64)), batch_size=64, shuffle=True)
    for x, y in loader:  # 200 steps: a model with something to say, in a few seconds
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    path = tmp_path / "lenet5.npz"
    nnx.save_model(model, path, metadata={"input_mean": float(standardize.mean),
                                          "input_std": float(standardize.std)})
    images, labels = _test_images(root, standardize)
    accuracy = _assert_same_predictions(install, mnist, model, path, images, labels)
    assert accuracy > 0.85


def _randomize_batch_norms(model):
    rng = np.random.default_rng(1)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.data[...] = rng.normal(0, 0.5, c)
            m.running_var.data[...] = rng.uniform(0.5, 2, c)
            if m.weight is not None:
                m.weight.data[...] = rng.uniform(0.5, 1.5, c)
            if m.bias is not None:
                m.bias.data[...] = rng.normal(0, 0.1, c)


def test_every_layer_type_runs_in_cpp_as_in_python(install, mnist, tmp_path):
    nnx.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.LeakyReLU(0.1),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, bias=False), nn.ELU(0.5), nn.Dropout2d(0.3),
        nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), nn.Tanh(),
        nn.Conv2d(8, 12, 3), nn.Softplus(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d((1, None)),
        nn.Flatten(), nn.BatchNorm1d(24, affine=False), nn.Sigmoid(), nn.Linear(24, 32),
        nn.Hardsigmoid(), nn.Dropout(0.5), nn.Identity(), nn.Linear(32, 10, bias=False),
        nn.LogSoftmax(dim=1))
    _randomize_batch_norms(model)
    path = tmp_path / "zoo.npz"
    nnx.save_model(model, path)  # no metadata: pixels in [0, 1]
    images, labels = _test_images(mnist[0])
    _assert_same_predictions(install, mnist, model, path, images, labels)


def test_lstm_over_image_rows_runs_in_cpp_as_in_python(install, mnist, tmp_path):
    nnx.manual_seed(2)
    model = nn.Sequential(nn.Flatten(1, 2), LSTMOutput(nn.LSTM(28, 16, 2, batch_first=True)),
                          nn.Flatten(), nn.Linear(28 * 16, 10))
    path = tmp_path / "lstm.npz"
    nnx.save_model(model, path)
    images, labels = _test_images(mnist[0])
    _assert_same_predictions(install, mnist, model, path, images, labels)


def test_cpp_reads_zip64_records(install, mnist, tmp_path, monkeypatch):
    # Archives past 4 GiB or 65535 entries need zip64 records; tiny limits make zipfile write
    # them (in every central-directory entry and at the end) for a small model.
    nnx.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 64)
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)
    path = tmp_path / "zip64.npz"
    nnx.save_model(model, path)
    monkeypatch.undo()
    assert b"PK\x06\x06" in path.read_bytes()  # the zip64 end record
    images, labels = _test_images(mnist[0])
    _assert_same_predictions(install, mnist, model, path, images, labels)


def _bad_files(tmp_path):
    """(file, what the error must say) for each kind of broken input."""
    cases = []
    path = tmp_path / "state_dict.npz"
    nnx.save(nn.Sequential(nn.Linear(784, 10)).state_dict(), path)
    cases.append((path, "without a model architecture"))
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    path = tmp_path / "unknown.npz"
    nnx.io.save({"format": "nnx-model", "version": 1, "state_dict": {}, "metadata": {},
                 "layers": [{"type": "Bogus", "name": "0", "params": {}}]}, path)
    cases.append((path, "unknown layer type 'Bogus'"))
    path = tmp_path / "misshaped.npz"
    nnx.save_model(model, path)
    root = nnx.load(path)
    root["state_dict"]["1.weight"] = np.zeros((10, 783), np.float32)
    nnx.io.save(root, path)
    cases.append((path, "parameter '1.weight' has shape (10, 783), the layer needs (10, 784)"))
    path = tmp_path / "three_channels.npz"
    nnx.save_model(nn.Sequential(nn.Conv2d(3, 4, 3)), path)
    cases.append((path, "layer 0 ('0', Conv2d(3 -> 4"))
    path = tmp_path / "deflated.npz"
    with zipfile.ZipFile(tmp_path / "misshaped.npz") as src, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    cases.append((path, "is compressed (zip method 8); nnx reads stored entries only"))
    path = tmp_path / "corrupt.npz"
    nnx.save_model(model, path)
    damaged = bytearray(path.read_bytes())
    damaged[2000] ^= 0xFF  # inside the weight's entry
    path.write_bytes(bytes(damaged))
    cases.append((path, "CRC-32 mismatch in entry 'a0.npy'"))
    path = tmp_path / "truncated.npz"
    nnx.save_model(model, path)
    path.write_bytes(path.read_bytes()[:-100])
    cases.append((path, "not a zip archive"))
    cases.append((tmp_path / "missing.npz", "no such file"))
    return cases


def test_cpp_errors_name_the_problem(install, mnist, tmp_path):
    _, examples = install
    for path, message in _bad_files(tmp_path):
        proc = subprocess.run([str(examples / "mnist_classify"), str(path), str(mnist[1]),
                               str(mnist[2]), "--limit", "4"], capture_output=True, text=True)
        assert proc.returncode == 1, (path, proc.stdout, proc.stderr)
        assert message in proc.stderr, (message, proc.stderr)
