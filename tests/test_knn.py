"""The C++ k-nearest-neighbour search (nnx._kernels.knn_search -> nnx._core) against the float64
brute force of nnx._reference, on every ISA level."""

import numpy as np
import pytest

from nnx import _core
from nnx import _kernels as K
from nnx import _reference as R

METRICS = ["l2", "l1"]


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nq,nr,dim,k", [(1, 1, 1, 1), (7, 13, 3, 13), (37, 1100, 5, 7),
                                         (5, 2049, 17, 3), (1030, 30, 2, 4), (0, 4, 3, 2)])
def test_ties_and_order_match_brute_force(isa, metric, dtype, nq, nr, dim, k):
    # Small integers make every distance exact in float32, so there are many exact ties, and the
    # result must order them by reference index, as the stable brute-force sort does. The shapes
    # cross the L2 block sizes (1024 queries, 1024 references) and the vector width.
    rng = np.random.default_rng(nq * 1000 + nr)
    q = rng.integers(0, 3, (nq, dim)).astype(dtype)
    r = rng.integers(0, 3, (nr, dim)).astype(dtype)
    idx, dist = K.knn_search(q, r, k, metric)
    want_idx, want_dist = R.knn_search(q, r, k, metric)
    assert idx.dtype == np.int64 and dist.dtype == dtype and idx.shape == (nq, k)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(dist, want_dist)


@pytest.mark.parametrize("metric", METRICS)
def test_real_valued_data_matches_float64(isa, metric):
    rng = np.random.default_rng(1)
    q = rng.standard_normal((60, 784)).astype(np.float32)
    r = rng.standard_normal((3000, 784)).astype(np.float32)
    idx, dist = K.knn_search(q, r, 9, metric)
    want_idx, want_dist = R.knn_search(q, r, 9, metric)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-5)
    # Continuous random data has no near-ties at this scale: the neighbours themselves agree.
    np.testing.assert_array_equal(idx, want_idx)


def test_l2_distance_of_a_point_to_itself_is_zero(isa):
    # |q|^2 + |r|^2 - 2 q.r can round below zero; the kernel clamps at 0.
    r = np.random.default_rng(2).standard_normal((50, 33)).astype(np.float32) * 100
    idx, dist = K.knn_search(r, r, 1, "l2")
    np.testing.assert_array_equal(idx[:, 0], np.arange(50))
    assert (dist >= 0).all() and dist.max() < 1e-1


def test_thread_count_does_not_change_bits(isa, threads):
    rng = np.random.default_rng(3)
    q = rng.standard_normal((1100, 40)).astype(np.float32)
    r = rng.standard_normal((2100, 40)).astype(np.float32)
    results = []
    for t in (1, 2, 3):
        _core.set_num_threads(t)
        results.append([*K.knn_search(q, r, 6, "l2"), *K.knn_search(q, r, 6, "l1")])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_bad_input_is_a_clear_error():
    q = np.zeros((3, 4), np.float32)
    r = np.zeros((5, 4), np.float32)
    with pytest.raises(ValueError, match=r"k = 6 must be in \[1, 5\]"):
        K.knn_search(q, r, 6)
    with pytest.raises(ValueError, match="k = 0"):
        K.knn_search(q, r, 0)
    with pytest.raises(ValueError, match="same D"):
        K.knn_search(q, np.zeros((5, 3), np.float32), 1)
    with pytest.raises(ValueError, match="unknown metric 'cosine'"):
        K.knn_search(q, r, 1, "cosine")
    bad = r.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="references contain NaN or infinity"):
        K.knn_search(q, bad, 1)
    with pytest.raises(ValueError, match="references >= 1"):
        K.knn_search(q, np.zeros((0, 4), np.float32), 1)


def test_overflowing_distances_are_reported():
    q = np.full((2, 4), 3e38, np.float32)
    r = np.full((3, 4), -3e38, np.float32)
    with pytest.raises(OverflowError, match="overflow"):
        K.knn_search(q, r, 2, "l1")
