"""Model files (nnx.save_model / nnx.load_model): the architecture and weights of a Sequential in
one checkpoint, rebuilt without the model's code; the C++ side is tests/test_cpp_embedding.py."""

import json
import os
import zipfile

import numpy as np
import pytest

import nnx
from nnx import nn
from nnx.model_file import LSTMOutput


def _outputs(model, x):
    model.eval()
    with nnx.no_grad():
        return model(nnx.tensor(x)).numpy()


def test_lenet5_round_trip_gives_the_same_outputs(tmp_path):
    nnx.manual_seed(0)
    model = nnx.models.LeNet5()
    path = tmp_path / "lenet5.npz"
    nnx.save_model(model, path, metadata={"input_mean": np.float64(0.1307), "input_std": 0.3081})
    loaded = nnx.load_model(path)
    assert isinstance(loaded, nn.Sequential) and not loaded.training
    assert list(loaded.state_dict()) == list(model.state_dict())  # LeNet5's own keys
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(_outputs(loaded, x), _outputs(model, x))
    # Still an ordinary checkpoint: nnx.load reads it, metadata included.
    root = nnx.load(path)
    assert root["format"] == "nnx-model"
    assert root["metadata"] == {"input_mean": 0.1307, "input_std": 0.3081}


def test_every_supported_layer_round_trips(tmp_path):
    nnx.manual_seed(1)
    model = nn.Sequential(
        nn.Conv2d(1, 4, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2)), nn.BatchNorm2d(4),
        nn.ReLU(), nn.MaxPool2d(2, padding=1), nn.AvgPool2d(2, count_include_pad=False),
        nn.AdaptiveAvgPool2d((2, None)), nn.ELU(0.3), nn.Dropout2d(), nn.Flatten(),
        nn.BatchNorm1d(8, affine=False), nn.Linear(8, 6, bias=False), nn.LeakyReLU(0.2),
        nn.Sigmoid(), nn.Tanh(), nn.Softplus(), nn.Hardsigmoid(), nn.Identity(), nn.Dropout(),
        nn.Softmax(dim=-1), nn.LogSoftmax())
    model[1].running_mean.data[...] = 0.3
    path = tmp_path / "zoo.npz"
    nnx.save_model(model, path)
    x = np.random.default_rng(1).random((2, 1, 9, 4), dtype=np.float32)
    np.testing.assert_array_equal(_outputs(nnx.load_model(path), x), _outputs(model, x))
    layers = json.loads(zipfile.ZipFile(path).read("nnx.json"))["root"]["layers"]
    assert layers[0] == {"type": "Conv2d", "name": "0", "in_channels": 1, "out_channels": 4,
                         "kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 1],
                         "dilation": [1, 2], "bias": True,
                         "params": {"weight": "0.weight", "bias": "0.bias"}}
    assert layers[5]["output_size"] == [2, None]


def test_lstm_in_a_sequential_round_trips(tmp_path):
    nnx.manual_seed(2)
    model = nn.Sequential(nn.Flatten(1, 2), LSTMOutput(nn.LSTM(6, 5, 2, batch_first=True)),
                          nn.Linear(5, 3))
    path = tmp_path / "lstm.npz"
    nnx.save_model(model, path)
    x = np.random.default_rng(2).random((4, 1, 7, 6), dtype=np.float32)
    np.testing.assert_array_equal(_outputs(nnx.load_model(path), x), _outputs(model, x))
    spec = nnx.load(path)["layers"][1]
    assert spec["type"] == "LSTM" and spec["params"]["weight_hh_l1"] == "1.lstm.weight_hh_l1"


def test_a_plain_checkpoint_is_not_a_model_file(tmp_path):
    path = tmp_path / "weights.npz"
    nnx.save(nn.Sequential(nn.Linear(2, 2)).state_dict(), path)
    with pytest.raises(ValueError, match="not a model file"):
        nnx.load_model(path)


@pytest.mark.parametrize("model, error, message", [
    (nn.Sequential(nn.Conv1d(1, 2, 3)), TypeError, "Conv1d, which model files cannot describe"),
    (nn.Linear(2, 2), TypeError, "expected a Sequential"),
    (nn.Sequential(LSTMOutput(nn.LSTM(2, 3, bidirectional=True))), ValueError, "bidirectional"),
    (nn.Sequential(nn.BatchNorm1d(2, track_running_stats=False)), ValueError,
     "running statistics"),
])
def test_save_model_refuses_what_the_format_cannot_hold(tmp_path, model, error, message):
    with pytest.raises(error, match=message):
        nnx.save_model(model, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_save_model_refuses_shared_layers_and_bad_metadata(tmp_path):
    shared = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="shares its parameters"):
        nnx.save_model(nn.Sequential(shared, nn.ReLU(), shared), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="metadata"):
        nnx.save_model(nn.Sequential(nn.ReLU()), tmp_path / "m.npz", metadata={"a": [1, 2]})
    with pytest.raises(TypeError, match="LSTMOutput: expected an nn.LSTM"):
        LSTMOutput(nn.Linear(2, 2))


def test_cpp_library_folders_exist_or_are_explained():
    # A wheel carries the C++ library; a source tree or editable install does not, and says so.
    for get, marker in ((nnx.get_include, "nnx/nnx.h"), (nnx.get_cmake_dir, "nnxConfig.cmake")):
        try:
            folder = get()
        except FileNotFoundError as e:
            assert "cmake --install" in str(e)
        else:
            assert os.path.isfile(os.path.join(folder, marker))
