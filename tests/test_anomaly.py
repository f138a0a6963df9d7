"""Anomaly mode: the first op that produces NaN or Inf, in forward or backward, is named."""

import numpy as np
import pytest

import nnx
import nnx.nn.functional as F
from nnx import autograd
from nnx.autograd import AnomalyError, detect_anomaly, is_anomaly_enabled, set_detect_anomaly

# The non-finite values these tests make on purpose also make numpy warn.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.fixture(autouse=True)
def _anomaly_off():
    yield
    assert not is_anomaly_enabled(), "a test left anomaly mode on"


def test_off_by_default_and_nan_passes_silently():
    assert not is_anomaly_enabled()
    x = nnx.tensor([1.0, 0.0], requires_grad=True)
    y = (x.log() * 2.0).sum()  # -inf, no error
    assert np.isneginf(y.item())
    assert "_anomaly_where" not in y.grad_fn.__dict__  # nothing recorded when off


def test_forward_names_the_first_op_not_the_ones_after_it():
    x = nnx.tensor([1.0, 2.0, 4.0], requires_grad=True)
    with detect_anomaly():
        a = x * 3.0                  # finite
        with pytest.raises(AnomalyError) as info:
            b = (a - 3.0).log()      # log(0) = -inf: the first non-finite value
            (b * 2.0).sum()          # never reached
    err = info.value
    assert (err.op, err.phase, err.index) == ("Log", "forward", 0)
    assert "Log produced Inf in output 0 (shape (3,)) from finite inputs" in str(err)
    assert err.where is not None and "test_anomaly.py" in err.where
    assert isinstance(err, RuntimeError)


def test_forward_nan_and_ops_without_grad_are_checked_too():
    x = nnx.tensor([-1.0, 4.0])  # no grad: the op is not recorded, still checked
    with detect_anomaly(), pytest.raises(AnomalyError, match="Sqrt produced NaN") as info:
        x.sqrt()
    assert info.value.op == "Sqrt"


def test_non_finite_data_is_named_as_coming_from_outside():
    data = nnx.tensor(np.array([[1.0, np.nan], [0.5, 2.0]], np.float32))
    layer = nnx.nn.Linear(2, 3)
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        layer(data)
    err = info.value
    assert err.phase == "forward" and err.index == 0
    assert "received NaN in argument 0 (shape (2, 2))" in str(err)
    assert "input data" in str(err)


def test_backward_names_the_op_whose_gradient_is_not_finite():
    x = nnx.tensor([0.0, 4.0], requires_grad=True)
    with detect_anomaly():
        y = x.sqrt()             # finite: [0, 2]
        loss = (y * 3.0).sum()   # finite
        with pytest.raises(AnomalyError) as info:
            loss.backward()      # d sqrt(x)/dx at 0 = inf
    err = info.value
    assert (err.op, err.phase, err.index) == ("Sqrt", "backward", 0)
    assert "SqrtBackward produced Inf in the gradient of argument 0 (shape (2,))" in str(err)
    # The line that created the op, which the backward traceback does not show.
    assert "test_anomaly.py" in err.where
    assert "test_backward_names_the_op_whose_gradient_is_not_finite" in err.where


def test_a_non_finite_gradient_given_to_backward_is_named():
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    with detect_anomaly():
        loss = (x * 3.0).sum()
        with pytest.raises(AnomalyError) as info:
            loss.backward(gradient=nnx.tensor(np.float32(np.nan)))
    assert info.value.phase == "backward" and info.value.op == "Sum"
    assert "gradient passed to backward()" in str(info.value)


def test_kernel_ops_are_checked():
    # Batch norm over a constant channel with eps = 0: the kernel divides 0 by 0.
    x = nnx.tensor(np.ones((4, 2), np.float32), requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        F.batch_norm(x, None, None, training=True, eps=0.0)
    assert info.value.op == "BatchNormTrain" and info.value.phase == "forward"
    assert "from finite inputs" in str(info.value)


def test_backward_without_anomaly_mode_gives_nan_gradients_silently():
    x = nnx.tensor([0.0, 4.0], requires_grad=True)
    x.sqrt().sum().backward()
    assert np.isinf(x.grad.numpy()[0])


def test_anomaly_mode_found_when_the_graph_was_built_outside_it():
    # Backward in anomaly mode checks every node, even one created before it was switched on;
    # only the creation line is then unknown.
    x = nnx.tensor([0.0, 1.0], requires_grad=True)
    y = x.sqrt().sum()
    with detect_anomaly(), pytest.raises(AnomalyError) as info:
        y.backward()
    assert info.value.op == "Sqrt" and info.value.where is None


def test_switches_nest_and_restore():
    assert not is_anomaly_enabled()
    with detect_anomaly():
        assert is_anomaly_enabled()
        with set_detect_anomaly(False):
            assert not is_anomaly_enabled()
            with detect_anomaly():
                assert is_anomaly_enabled()
            assert not is_anomaly_enabled()
        assert is_anomaly_enabled()
    assert not is_anomaly_enabled()
    set_detect_anomaly(True)
    try:
        assert is_anomaly_enabled()
    finally:
        set_detect_anomaly(False)
    with pytest.raises(ValueError), detect_anomaly():
        raise ValueError("restored on the way out")
    assert not is_anomaly_enabled()


def test_decorator():
    @detect_anomaly()
    def step(x):
        assert is_anomaly_enabled()
        return x.log()

    with pytest.raises(AnomalyError, match="Log produced Inf"):
        step(nnx.tensor([0.0]))
    assert not is_anomaly_enabled()


def test_finite_training_step_passes_and_matches_the_mode_off():
    def run():
        nnx.manual_seed(0)
        model = nnx.nn.Sequential(nnx.nn.Linear(4, 8), nnx.nn.ReLU(), nnx.nn.Linear(8, 3))
        x = nnx.randn(5, 4)
        loss = F.cross_entropy(model(x), nnx.tensor(np.array([0, 1, 2, 0, 1])))
        loss.backward()
        return loss.item(), [p.grad.numpy().copy() for p in model.parameters()]

    off = run()
    with detect_anomaly():
        on = run()
    assert off[0] == on[0]
    for a, b in zip(off[1], on[1]):
        np.testing.assert_array_equal(a, b)


def test_exported_names():
    for name in ("AnomalyError", "detect_anomaly", "is_anomaly_enabled", "set_detect_anomaly"):
        assert name in autograd.__all__
