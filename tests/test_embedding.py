"""Embedding: lookup and the scatter-add weight gradient (repeated indices, padding_idx)
against the loop references of ``nnx._reference`` and PyTorch; determinism; gradient checks;
errors for bad indices and arguments."""

import numpy as np
import pytest

import nnx
from nnx import _kernels as K
from nnx import _reference as R
from nnx import optim
from nnx.nn import Embedding
from nnx.nn import functional as F
from nnx.testing import GradcheckError, gradcheck

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (2, 3, 4), (0,), (4, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_seam_matches_reference(shape, dtype, padding_idx):
    weight = RNG.standard_normal((6, 5)).astype(dtype)
    idx = RNG.integers(0, 6, shape)  # small table: indices repeat
    y = K.embedding_forward(weight, idx)
    assert y.shape == shape + (5,) and y.dtype == dtype
    np.testing.assert_array_equal(y, R.embedding_forward(weight, idx))
    g = RNG.standard_normal(shape + (5,)).astype(dtype)
    gw = K.embedding_backward(g, idx, 6, padding_idx)
    assert gw.shape == (6, 5) and gw.dtype == dtype
    np.testing.assert_allclose(gw, R.embedding_backward(g, idx, 6, padding_idx),
                               rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-6)


def test_repeated_indices_add_up_and_padding_gets_nothing():
    nnx.manual_seed(0)
    emb = Embedding(5, 3, padding_idx=4, dtype=np.float64)
    idx = nnx.tensor(np.array([[1, 3, 1], [1, 4, 0]]))
    out = emb(idx)
    np.testing.assert_array_equal(out.data, emb.weight.data[idx.data])
    np.testing.assert_array_equal(out.data[1, 1], np.zeros(3))  # the padding row starts at 0
    g = np.arange(18, dtype=np.float64).reshape(2, 3, 3)
    out.backward(g)
    expected = np.zeros((5, 3))
    expected[1] = g[0, 0] + g[0, 2] + g[1, 0]  # index 1 three times
    expected[3] = g[0, 1]
    expected[0] = g[1, 2]
    np.testing.assert_array_equal(emb.weight.grad.data, expected)
    # The padding vector stays zero through training.
    opt = optim.Adam(emb.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (emb(idx) ** 2).sum().backward()
        opt.step()
    np.testing.assert_array_equal(emb.weight.data[4], np.zeros(3))
    assert np.abs(emb.weight.data[1]).sum() > 0


def test_backward_is_deterministic_with_many_repeats():
    weight = nnx.tensor(np.zeros((3, 64), np.float32), requires_grad=True)
    idx = RNG.integers(0, 3, 20000)
    g = RNG.standard_normal((20000, 64)).astype(np.float32)
    grads = []
    for _ in range(2):
        weight.grad = None
        F.embedding(idx, weight).backward(g)
        grads.append(weight.grad.data.copy())
    np.testing.assert_array_equal(grads[0], grads[1])
    np.testing.assert_allclose(grads[0], R.embedding_backward(g.astype(np.float64), idx, 3),
                               rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_matches_torch(padding_idx):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Embedding(7, 4, padding_idx=padding_idx)
    ours = Embedding(7, 4, padding_idx=padding_idx)
    assert repr(ours) == repr(theirs)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    idx = RNG.integers(0, 7, (4, 9))
    idx[0, :3] = 6  # repeats, and the padding row either way
    g = RNG.standard_normal((4, 9, 4)).astype(np.float32)
    t_out = theirs(torch.tensor(idx))
    n_out = ours(nnx.tensor(idx))
    np.testing.assert_array_equal(n_out.data, t_out.detach().numpy())
    t_out.backward(torch.tensor(g))
    n_out.backward(g)
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), atol=1e-5)


def test_default_init_and_from_pretrained():
    nnx.manual_seed(0)
    emb = Embedding(400, 50, padding_idx=-2)
    assert emb.padding_idx == 398 and emb.weight.dtype == np.float32
    w = emb.weight.data
    assert abs(w.mean()) < 0.02 and abs(w.std() - 1) < 0.02  # N(0, 1)
    assert not w[398].any()
    table = np.arange(6, dtype=np.float64).reshape(3, 2)
    frozen = Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad and frozen.weight.dtype == np.float64
    table[0, 0] = 99  # a copy, not a view
    np.testing.assert_array_equal(frozen(nnx.tensor([2, 0])).data, [[4, 5], [0, 1]])
    assert Embedding.from_pretrained(nnx.tensor(table), freeze=False).weight.requires_grad


def test_int32_indices_and_index_tensors():
    w = nnx.tensor(RNG.standard_normal((5, 2)))
    idx = np.array([4, 0, 4], np.int32)
    np.testing.assert_array_equal(F.embedding(idx, w).data, w.data[[4, 0, 4]])
    np.testing.assert_array_equal(F.embedding(nnx.tensor(idx), w).data, w.data[[4, 0, 4]])


# ---------------------------------------------------------------------------------------------
# Gradient checks


def test_gradcheck_weight_with_repeats():
    w = nnx.tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    idx = np.array([[0, 2, 2], [3, 2, 0]])
    assert gradcheck(lambda w: F.embedding(idx, w) * F.embedding(idx[::-1], w), w)
    # padding_idx (not among the indices here) changes nothing for the other rows; its own row
    # gets no gradient by design (tested above), so finite differences would disagree there.
    assert gradcheck(lambda w: F.embedding(idx, w, padding_idx=1), w)


def test_gradcheck_rejects_a_gradient_that_drops_repeats(monkeypatch):
    w = nnx.tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    idx = np.array([1, 1, 3])

    def overwriting(grad_y, indices, num_embeddings, padding_idx=None):
        out = np.zeros((num_embeddings, grad_y.shape[-1]))
        out[indices.reshape(-1)] = grad_y.reshape(-1, grad_y.shape[-1])  # last write wins
        return out

    monkeypatch.setattr(K, "embedding_backward", overwriting)
    with pytest.raises(GradcheckError):
        gradcheck(lambda w: F.embedding(idx, w), w)


# ---------------------------------------------------------------------------------------------
# Errors


def test_bad_indices_raise_clear_errors():
    emb = Embedding(10, 3)
    with pytest.raises(IndexError, match=r"index 10 at position \(1, 2\) is out of range for 10 "
                                         r"embeddings \(valid indices: 0 to 9\)"):
        emb(nnx.tensor(np.array([[0, 1, 2], [3, 4, 10]])))
    with pytest.raises(IndexError, match="index -1 at position"):
        emb(nnx.tensor([2, -1]))
    with pytest.raises(TypeError, match="integer"):
        emb(nnx.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="must be a Tensor of integer indices"):
        emb("cat")


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="padding_idx 5 is out of range for 5 embeddings"):
        Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="embedding_dim must be a positive int"):
        Embedding(5, 0)
    with pytest.raises(NotImplementedError, match="max_norm"):
        Embedding(5, 2, max_norm=1.0)
    with pytest.raises(NotImplementedError, match="sparse"):
        Embedding(5, 2, sparse=True)
    with pytest.raises(ValueError, match="weight must be 2-D"):
        F.embedding([0], nnx.tensor(np.zeros(3)))
    with pytest.raises(ValueError, match="embeddings must be 2-D"):
        Embedding.from_pretrained(np.zeros(3))
