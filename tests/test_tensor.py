"""Tensor construction, dtypes, zero-copy interop, operators, factories and the shared RNG."""

import json

import numpy as np
import pytest

import nnx


def test_dtype_policy():
    assert nnx.tensor(1.5).dtype == np.float32
    assert nnx.tensor([1.0, 2.0]).dtype == np.float32
    assert nnx.tensor([1, 2]).dtype == np.int64
    assert nnx.tensor([True, False]).dtype == np.bool_
    assert nnx.tensor(np.ones(3)).dtype == np.float64           # float64 arrays are kept
    assert nnx.tensor(np.ones(3, np.float16)).dtype == np.float32
    assert nnx.tensor(np.ones(3, np.uint8)).dtype == np.uint8   # integer arrays are kept
    assert nnx.tensor([1, 2], dtype=np.float64).dtype == np.float64
    with pytest.raises(TypeError, match="complex"):
        nnx.tensor(np.ones(2, np.complex64))


def test_tensor_is_zero_copy_when_layout_fits():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = nnx.tensor(a)
    assert t.data is a
    assert np.shares_memory(t.numpy(), a)
    a[0, 0] = 42
    assert t[0, 0].item() == 42
    # Copies: non-contiguous input, or a different dtype asked for.
    assert not np.shares_memory(nnx.tensor(a.T).data, a)
    assert nnx.tensor(a.T).data.flags.c_contiguous
    assert not np.shares_memory(nnx.tensor(a, dtype=np.float64).data, a)


def test_from_numpy_never_copies():
    a = np.zeros((2, 3))
    t = nnx.from_numpy(a)
    assert t.data is a and t.dtype == np.float64
    with pytest.raises(ValueError, match="not C-contiguous"):
        nnx.from_numpy(a.T)
    with pytest.raises(TypeError, match="float16"):
        nnx.from_numpy(np.zeros(2, np.float16))
    with pytest.raises(TypeError, match="ndarray"):
        nnx.from_numpy([1.0])


def test_numpy_and_dlpack_share_memory():
    t = nnx.randn(3, 4)
    assert np.shares_memory(t.numpy(), t.data)
    assert np.shares_memory(np.asarray(t), t.data)
    d = np.from_dlpack(t)
    assert np.shares_memory(d, t.data)
    assert t.__dlpack_device__() == t.data.__dlpack_device__()
    w = nnx.randn(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        w.numpy()
    with pytest.raises(RuntimeError, match="detach"):
        np.from_dlpack(w)
    assert np.shares_memory(w.detach().numpy(), w.data)


def test_torch_reads_nnx_tensors_through_dlpack():
    torch = pytest.importorskip("torch")
    t = nnx.arange(6).reshape(2, 3).float()
    tt = torch.from_dlpack(t)
    assert tt.shape == (2, 3) and tt.dtype == torch.float32
    tt[0, 0] = 9
    assert t[0, 0].item() == 9


def test_metadata_and_python_conversions():
    t = nnx.zeros(2, 3)
    assert t.shape == (2, 3) and t.size() == (2, 3) and t.size(1) == 3 and t.ndim == 2
    assert len(t) == 2 and t.numel() == 6 and t.dim() == 2
    assert nnx.tensor(3.5).item() == 3.5 and float(nnx.tensor([2.0])) == 2.0
    with pytest.raises(ValueError, match="one-element"):
        t.item()
    with pytest.raises(TypeError, match="0-d"):
        len(nnx.tensor(1.0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t)
    assert [row.shape for row in t] == [(3,), (3,)]
    assert t.tolist() == [[0.0] * 3] * 2


def test_conversions():
    t = nnx.tensor([1.7, -2.2])
    assert t.double().dtype == np.float64 and t.float() is t
    assert t.long().tolist() == [1, -2]
    assert t.to(np.float64).dtype == np.float64
    x = nnx.tensor([1.0, 2.0], requires_grad=True)
    x.double().sum().backward()
    assert x.grad.dtype == np.float32


def test_repr():
    assert repr(nnx.tensor([1.0, 2.5])) == "tensor([1. , 2.5])"
    assert repr(nnx.tensor([1, 2])) == "tensor([1, 2])"
    assert "dtype=float64" in repr(nnx.tensor(np.zeros(2)))
    x = nnx.tensor([1.0], requires_grad=True)
    assert repr(x).endswith("requires_grad=True)")
    assert repr(x * 2).endswith("grad_fn=<MulBackward>)")
    assert repr(nnx.zeros(2, 2)) == "tensor([[0., 0.],\n        [0., 0.]])"


def test_operators_match_numpy():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.uniform(0.5, 2, (4,)).astype(np.float32)
    ta, tb = nnx.tensor(a), nnx.tensor(b)
    cases = [(ta + tb, a + b), (ta - tb, a - b), (ta * tb, a * b), (ta / tb, a / b),
             (2 - ta, 2 - a), (2 / tb, 2 / b), (tb ** 2, b ** 2), (2 ** tb, 2 ** b), (-ta, -a),
             (abs(ta), np.abs(a)), (ta @ a.T, a @ a.T), (tb.sqrt(), np.sqrt(b)),
             (tb.log(), np.log(b)), (ta.exp(), np.exp(a)), (ta.clamp(-0.5, 0.5), a.clip(-.5, .5))]
    for got, want in cases:
        assert isinstance(got, nnx.Tensor)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)


def test_numpy_operands_keep_tensor_semantics():
    t = nnx.ones(3)
    assert isinstance(np.ones(3, np.float32) + t, nnx.Tensor)
    assert (np.float64(2.0) * t).dtype == np.float32   # a numpy scalar does not promote
    assert (t * np.ones(3)).dtype == np.float64         # a float64 array does, as in numpy
    assert (nnx.tensor([1, 2]) / 2).dtype == np.float32  # like torch: int / int -> float32
    assert (nnx.tensor([1, 2]) * 2).dtype == np.int64


def test_zero_dim_operands_do_not_promote_dimensioned_tensors_of_their_category():
    # PyTorch's rule; numpy 2 would make all of these float64 (or int64).
    x = nnx.tensor([1.0, 2.0, 3.0])
    f64 = np.array(2.0)
    for got in (x * f64, f64 * x, x + f64, x - f64, f64 - x, x / f64, f64 / x, x ** f64,
                x * nnx.tensor(np.float64(2)), nnx.tensor(np.float64(2)) * x,
                nnx.where(x > 1, x, f64)):
        assert got.dtype == np.float32
    np.testing.assert_array_equal((x * f64).numpy(), [2, 4, 6])
    np.testing.assert_array_equal((x / np.array(3.0)).numpy(), x.numpy() / np.float32(3))
    assert (nnx.tensor(np.array([1, 2], np.int32)) * np.array(3)).dtype == np.int32
    # A 0-d operand of a higher category, or two 0-d operands, promote as usual.
    assert (nnx.tensor([1, 2]) * np.array(2.5)).dtype == np.float64
    assert (nnx.tensor(np.float32(1)) * f64).dtype == np.float64
    assert (x * np.ones(1)).dtype == np.float64
    # The gradient of the 0-d operand keeps its own dtype.
    s = nnx.tensor(np.float64(2), requires_grad=True)
    w = nnx.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (w * s).sum().backward()
    assert s.grad.dtype == np.float64 and s.grad.item() == 6.0
    assert w.grad.dtype == np.float32 and w.grad.tolist() == [2.0, 2.0, 2.0]


def test_comparisons_return_bool_tensors():
    t = nnx.tensor([1.0, 2.0, 3.0])
    for got, want in [(t == 2, [False, True, False]), (t != 2, [True, False, True]),
                      (t < 2, [True, False, False]), (t <= 2, [True, True, False]),
                      (t > 2, [False, False, True]), (t >= nnx.tensor([3.0, 2.0, 1.0]),
                                                      [False, True, True])]:
        assert got.dtype == np.bool_ and got.tolist() == want
    assert {t: 1}[t] == 1  # hashable by identity
    assert (t == None) is False and (t != "a") is True  # noqa: E711


def test_reductions_and_shapes_match_numpy():
    x = np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32)
    t = nnx.tensor(x)
    np.testing.assert_allclose(t.sum().item(), x.sum(), rtol=1e-5)
    np.testing.assert_allclose(t.mean(dim=(0, 2), keepdim=True).numpy(),
                               x.mean(axis=(0, 2), keepdims=True), rtol=1e-5)
    values, indices = t.max(dim=1)
    np.testing.assert_array_equal(values.numpy(), x.max(1))
    np.testing.assert_array_equal(indices.numpy(), x.argmax(1))
    assert t.min(dim=-1, keepdim=True).values.shape == (2, 3, 1)
    assert t.max().item() == x.max() and t.argmax().item() == x.argmax()
    np.testing.assert_array_equal(t.argmax(2).numpy(), x.argmax(2))
    assert t.permute(2, 0, 1).shape == (4, 2, 3) and t.transpose(0, 2).shape == (4, 3, 2)
    assert t.permute(2, 0, 1).data.flags.c_contiguous
    assert t.flatten().shape == (24,) and t.flatten(1).shape == (2, 12)
    assert t.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert t.unsqueeze(0).squeeze(0).shape == (2, 3, 4)
    assert t.reshape(6, -1).shape == (6, 4) and t.view((4, 6)).shape == (4, 6)
    assert np.shares_memory(t.reshape(6, 4).data, x)
    assert nnx.cat([t, t], dim=1).shape == (2, 6, 4)
    assert nnx.stack([t, t], -1).shape == (2, 3, 4, 2)
    assert t[0, 1:, [0, 0, 3]].shape == (3, 2)  # numpy's rule: advanced axes first
    assert t[nnx.tensor([1, 1])].shape == (2, 3, 4)
    assert t[t > 0].shape == ((x > 0).sum(),)


def test_shape_errors_name_the_shapes():
    t = nnx.zeros(2, 3)
    with pytest.raises(ValueError, match=r"shape \(2, 3\) as \(4,\)"):
        t.reshape(4)
    with pytest.raises(ValueError, match=r"inner dimensions differ: \(2, 3\) @ \(2, 3\)"):
        t @ t
    with pytest.raises(ValueError, match=r"tensor 1 has shape \(2, 4\)"):
        nnx.cat([t, nnx.zeros(2, 4)])
    with pytest.raises(ValueError, match=r"tensor 1 has shape \(3, 2\)"):
        nnx.stack([t, nnx.zeros(3, 2)])
    with pytest.raises(IndexError, match="dim 2 is out of range"):
        t.sum(dim=2)
    with pytest.raises(ValueError, match="not a permutation"):
        t.permute(0, 0)
    with pytest.raises(ValueError, match=".T needs a 2-D"):
        nnx.zeros(2, 2, 2).T


def test_matmul_shapes_and_gemm_path():
    a, b = nnx.randn(5, 3), nnx.randn(3, 2)
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy(), rtol=1e-5, atol=1e-6)
    assert (a @ b).grad_fn is None
    aw = a.detach().requires_grad_()
    assert repr((aw @ b).grad_fn) == "<MatMul2dBackward>"   # nnx's GEMM, not numpy
    np.testing.assert_allclose(nnx.matmul(a, b).numpy(), (a @ b).numpy())
    assert isinstance(nnx.matmul(a.numpy(), b.numpy()), np.ndarray)  # arrays stay arrays
    batched = nnx.randn(4, 5, 3) @ b
    assert batched.shape == (4, 5, 2)
    assert (nnx.tensor([[1, 2]]) @ nnx.tensor([[3], [4]])).tolist() == [[11]]


def test_factories():
    assert nnx.zeros(2, 3).tolist() == [[0.0] * 3] * 2
    assert nnx.ones((2,)).dtype == np.float32
    assert nnx.full((2, 2), 7).dtype == np.int64 and nnx.full(3, 0.5).tolist() == [0.5] * 3
    like = nnx.zeros_like(nnx.tensor(np.ones(3)))
    assert like.dtype == np.float64 and nnx.ones_like(like).tolist() == [1.0] * 3
    assert nnx.arange(5).dtype == np.int64
    assert nnx.arange(0, 1, 0.25).tolist() == [0, 0.25, 0.5, 0.75]
    assert nnx.eye(2).tolist() == [[1, 0], [0, 1]]
    r = nnx.rand(1000)
    assert r.dtype == np.float32 and 0 <= r.data.min() and r.data.max() < 1
    assert nnx.randn(2, 3, dtype=np.float64, requires_grad=True).requires_grad
    assert sorted(nnx.randperm(10).tolist()) == list(range(10))
    i = nnx.randint(3, 7, (50,))
    assert i.dtype == np.int64 and i.data.min() >= 3 and i.data.max() < 7


def test_manual_seed_reproduces_every_draw():
    def draws():
        return (nnx.randn(5).tolist(), nnx.rand(3).tolist(), nnx.randperm(6).tolist(),
                nnx.zeros(4).normal_().tolist())

    gen = nnx.random.default_generator()
    nnx.manual_seed(123)
    first = draws()
    nnx.manual_seed(123)
    assert draws() == first
    assert nnx.random.default_generator() is gen  # reseeded in place, never replaced
    assert nnx.initial_seed() == 123
    nnx.manual_seed(124)
    assert draws() != first


def test_rng_state_round_trips_through_json():
    nnx.manual_seed(7)
    nnx.randn(3)
    state = json.loads(json.dumps(nnx.get_rng_state()))
    expected = nnx.randn(4).tolist()
    nnx.randn(10)
    nnx.set_rng_state(state)
    assert nnx.randn(4).tolist() == expected
    with pytest.raises(ValueError, match="bit generator"):
        nnx.set_rng_state({"bit_generator": "MT19937"})
    with pytest.raises(TypeError, match="seed must be an int"):
        nnx.manual_seed(1.5)


def test_in_place_helpers():
    t = nnx.zeros(3)
    t.fill_(2.0).add_(nnx.ones(3), alpha=3).mul_(2)
    assert t.tolist() == [10.0] * 3
    t.copy_(np.array([1.0, 2.0, 3.0]))
    assert t.tolist() == [1, 2, 3]
    t[1] = 0
    assert t.tolist() == [1, 0, 3]
    u = nnx.zeros(1000).uniform_(-2, 2)
    assert -2 <= u.data.min() and u.data.max() < 2 and u.dtype == np.float32
