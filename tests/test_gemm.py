"""SGEMM/DGEMM against a float64 reference, on every ISA level, transposition and edge shape."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnx

EPS32 = np.finfo(np.float32).eps

# Register tiles of the micro-kernels (AVX-512 14x32, AVX2 6x16): sizes around them hit full,
# partial and single-row/column tiles; 97 and 131 are primes that divide nothing.
M_SIZES = [1, 5, 6, 7, 13, 14, 15, 97]
N_SIZES = [1, 15, 16, 17, 31, 32, 33, 131]
K_SIZES = [1, 2, 97]


def stored(rng, rows, cols, trans, dtype=np.float32, pad=0):
    """A matrix whose op() is rows x cols, stored transposed if `trans`, with `pad` extra columns
    of storage per row (a leading dimension larger than the width)."""
    shape = (cols, rows) if trans else (rows, cols)
    big = rng.standard_normal((shape[0], shape[1] + pad)).astype(dtype)
    return big[:, : shape[1]]


def op(x, trans):
    return x.T if trans else x


def check_gemm(c, a, b, c0, ta, tb, alpha, beta, bias=None, bias_axis=None, relu=False):
    """Elementwise forward-error bound of a k-term float32 dot product (FMA or not):
    |c - exact| <= (k + 2) * eps * (|alpha| |A| |B| + |beta| |C0| + |bias|)."""
    A, B = op(a, ta).astype(np.float64), op(b, tb).astype(np.float64)
    k = A.shape[1]
    exact = alpha * (A @ B)
    scale = abs(alpha) * (np.abs(A) @ np.abs(B))
    if beta != 0:
        exact += beta * c0.astype(np.float64)
        scale += abs(beta) * np.abs(c0.astype(np.float64))
    if bias is not None:
        bb = (bias.astype(np.float64)[:, None] if bias_axis == 0
              else bias.astype(np.float64)[None, :])
        exact = exact + bb
        scale = scale + np.abs(bb)
    if relu:
        exact = np.maximum(exact, 0)
    eps = EPS32 if c.dtype == np.float32 else np.finfo(np.float64).eps
    tol = (k + 2) * eps * scale + 1e-30
    err = np.abs(c.astype(np.float64) - exact)
    assert np.all(np.isfinite(c)), "non-finite values in the result"
    worst = np.unravel_index(np.argmax(err / tol), err.shape)
    assert np.all(err <= tol), f"error {err[worst]:.3g} > bound {tol[worst]:.3g} at {worst}"


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_all_transposes_and_edge_shapes(isa, ta, tb):
    rng = np.random.default_rng(1)
    for m in M_SIZES:
        for n in N_SIZES:
            for k in K_SIZES:
                a = stored(rng, m, k, ta, pad=3)
                b = stored(rng, k, n, tb, pad=5)
                c = nnx.gemm(a, b, trans_a=ta, trans_b=tb)
                check_gemm(c, a, b, None, ta, tb, 1.0, 0.0)


@pytest.mark.parametrize("shape", [(300, 200, 300), (64, 512, 200), (6, 25, 3000), (200, 70, 5)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, True), (False, True)])
def test_blocked_path_larger_shapes(isa, shape, ta, tb):
    """Shapes that go through packing, several kc blocks and the column-split thread plan."""
    m, k, n = shape
    rng = np.random.default_rng(2)
    a, b = stored(rng, m, k, ta), stored(rng, k, n, tb)
    check_gemm(nnx.gemm(a, b, trans_a=ta, trans_b=tb), a, b, None, ta, tb, 1.0, 0.0)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_rows_split_evenly_between_tiles(isa, threads, n_threads):
    """Up to one cache block of rows runs as equal register tiles (16 rows as 8 + 8) read from
    packed A panels holding fewer rows than the micro-kernel's: every row count around the tile
    multiples, with A packed (several column tiles) and read in place (one)."""
    rng = np.random.default_rng(3)
    nnx.set_num_threads(n_threads)
    for m in list(range(1, 33)) + [41, 42, 43, 56, 57, 83, 84, 85, 99]:
        for n in (70, 20):
            a, b = stored(rng, m, 37, False, pad=3), stored(rng, 37, n, False, pad=5)
            check_gemm(nnx.gemm(a, b), a, b, None, False, False, 1.0, 0.0)


def test_deep_k_crosses_cache_blocks(isa):
    # k larger than any kc block, so C is updated once per block with beta = 1 after the first.
    rng = np.random.default_rng(3)
    a, b = stored(rng, 33, 2500, False), stored(rng, 2500, 40, False)
    c0 = rng.standard_normal((33, 40)).astype(np.float32)
    c = c0.copy()
    nnx.gemm(a, b, c, alpha=0.5, beta=-1.5)
    check_gemm(c, a, b, c0, False, False, 0.5, -1.5)


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (2.5, 0.0), (-0.5, 0.75), (1.0, -2.0)])
def test_alpha_beta(isa, alpha, beta):
    rng = np.random.default_rng(4)
    for m, k, n in [(14, 9, 32), (15, 97, 33), (97, 131, 131)]:
        a, b = stored(rng, m, k, False), stored(rng, k, n, True)
        c0 = rng.standard_normal((m, n)).astype(np.float32)
        c = c0.copy()
        nnx.gemm(a, b, c, alpha=alpha, beta=beta, trans_b=True)
        check_gemm(c, a, b, c0, False, True, alpha, beta)


def test_beta_zero_never_reads_c(isa):
    rng = np.random.default_rng(5)
    for m, k, n in [(1, 1, 1), (13, 7, 31), (97, 131, 33), (200, 300, 150)]:
        a, b = stored(rng, m, k, False), stored(rng, k, n, False)
        c = np.full((m, n), np.nan, np.float32)
        nnx.gemm(a, b, c, beta=0.0)
        check_gemm(c, a, b, None, False, False, 1.0, 0.0)


def test_leading_dimensions_larger_than_width(isa):
    rng = np.random.default_rng(6)
    a, b = stored(rng, 29, 41, False, pad=7), stored(rng, 41, 35, True, pad=11)
    storage = np.full((29, 50), 7.0, np.float32)
    c = storage[:, :35]
    nnx.gemm(a, b, c, trans_b=True)
    check_gemm(c, a, b, None, False, True, 1.0, 0.0)
    assert np.all(storage[:, 35:] == 7.0), "wrote past the end of C's rows"


@pytest.mark.parametrize("bias_axis", [0, 1])
@pytest.mark.parametrize("relu", [False, True])
def test_fused_bias_and_relu(isa, bias_axis, relu):
    rng = np.random.default_rng(7)
    for m, k, n in [(1, 3, 1), (15, 1100, 33), (97, 64, 131)]:
        a, b = stored(rng, m, k, False), stored(rng, k, n, True)
        bias = rng.standard_normal(m if bias_axis == 0 else n).astype(np.float32)
        c0 = rng.standard_normal((m, n)).astype(np.float32)
        c = c0.copy()
        nnx.gemm(a, b, c, beta=0.5, trans_b=True, bias=bias, bias_axis=bias_axis, relu=relu)
        check_gemm(c, a, b, c0, False, True, 1.0, 0.5, bias, bias_axis, relu)
        if relu:
            assert np.all(c >= 0)


def test_transposed_views_are_read_in_place(isa):
    rng = np.random.default_rng(8)
    a = rng.standard_normal((40, 30)).astype(np.float32)
    b = rng.standard_normal((50, 40)).astype(np.float32)
    c = nnx.gemm(a.T, b.T)  # both Fortran-ordered views: no copies, flags flipped
    check_gemm(c, a, b, None, True, True, 1.0, 0.0)


def test_empty_and_degenerate_sizes(isa):
    a = np.zeros((0, 5), np.float32)
    b = np.ones((5, 3), np.float32)
    assert nnx.gemm(a, b).shape == (0, 3)
    c0 = np.arange(6, dtype=np.float32).reshape(2, 3)
    c = c0.copy()
    nnx.gemm(np.zeros((2, 0), np.float32), np.zeros((0, 3), np.float32), c, beta=2.0)
    np.testing.assert_array_equal(c, 2 * c0)  # k == 0: C = beta * C


def test_alpha_zero_reads_neither_a_nor_b(isa):
    a = np.full((4, 5), np.nan, np.float32)
    b = np.full((5, 3), np.inf, np.float32)
    c = np.ones((4, 3), np.float32)
    nnx.gemm(a, b, c, alpha=0.0, beta=3.0)
    np.testing.assert_array_equal(c, 3.0)


def test_float64_path(threads):
    rng = np.random.default_rng(9)
    for ta in (False, True):
        for tb in (False, True):
            a = stored(rng, 17, 23, ta, np.float64)
            b = stored(rng, 23, 19, tb, np.float64)
            c0 = rng.standard_normal((17, 19))
            c = c0.copy()
            nnx.gemm(a, b, c, alpha=1.5, beta=0.5, trans_a=ta, trans_b=tb)
            np.testing.assert_allclose(c, 1.5 * op(a, ta) @ op(b, tb) + 0.5 * c0,
                                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(200, 300, 150), (6, 25, 20000), (16, 150, 3000), (1000, 64, 10),
                                   (150, 1500, 70), (29, 40, 700), (64, 30, 500)])
def test_thread_count_does_not_change_bits(isa, threads, shape):
    m, k, n = shape
    rng = np.random.default_rng(10)
    a, b = stored(rng, m, k, False), stored(rng, k, n, True)
    bias = rng.standard_normal(n).astype(np.float32)
    results = []
    for t in (1, 2, 3):
        nnx.set_num_threads(t)
        results.append(nnx.gemm(a, b, trans_b=True, bias=bias, bias_axis=1, relu=True))
    for r in results[1:]:
        assert np.array_equal(results[0], r), "result depends on the thread count"


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 70), n=st.integers(1, 70), k=st.integers(1, 70), ta=st.booleans(),
       tb=st.booleans(), beta=st.sampled_from([0.0, 1.0, -0.5]), seed=st.integers(0, 2**31))
def test_random_shapes_match_reference(m, n, k, ta, tb, beta, seed):
    rng = np.random.default_rng(seed)
    a, b = stored(rng, m, k, ta), stored(rng, k, n, tb)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    c = c0.copy()
    nnx.gemm(a, b, c, beta=beta, trans_a=ta, trans_b=tb)
    check_gemm(c, a, b, c0, ta, tb, 1.0, beta)


def test_matmul_matches_numpy_and_converts_explicitly():
    rng = np.random.default_rng(11)
    a = rng.standard_normal((20, 30)).astype(np.float32)
    b = rng.standard_normal((30, 10)).astype(np.float32)
    np.testing.assert_allclose(nnx.matmul(a, b), a @ b, rtol=1e-5, atol=1e-5)
    ai = np.arange(6).reshape(2, 3)
    bi = np.arange(3).reshape(3, 1)
    out = nnx.matmul(ai, bi)
    assert out.dtype == np.float32 and np.array_equal(out, (ai @ bi).astype(np.float32))
    strided = rng.standard_normal((20, 60)).astype(np.float32)[:, ::2]  # not contiguous
    np.testing.assert_allclose(nnx.matmul(strided, b), strided @ b, rtol=1e-5, atol=1e-5)
    assert nnx.matmul(a.astype(np.float64), b).dtype == np.float64


def test_checker_detects_a_wrong_result():
    # The bound in check_gemm must be tight enough to catch an error of one unit in the product.
    rng = np.random.default_rng(12)
    a, b = stored(rng, 8, 8, False), stored(rng, 8, 8, False)
    c = nnx.gemm(a, b)
    c[3, 4] += 1e-3
    with pytest.raises(AssertionError):
        check_gemm(c, a, b, None, False, False, 1.0, 0.0)
