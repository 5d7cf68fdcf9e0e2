"""Products of a chunk's rows with a few components' coefficients or responsibilities.

The E-step kernels of 'diag', 'spherical' and 'tied' multiply the rows X (n, D)
by a (K, D) matrix, ``matrix @ X.T``, and sum them weighted by the
responsibilities, ``resp @ X``. With one or two components BLAS's products ran
far below the memory's speed here, numpy's ``einsum`` at it; from four
components BLAS is as fast or faster. Each function picks by K
(:data:`EINSUM_COMPONENTS`) unless told ``einsum=False`` (kernels that run by
row blocks already: einsum's per-call cost and its ``'kn,nj->kj'`` made them
slower); both give the product to rounding.
"""

from __future__ import annotations

import numpy as np

#: Most components for which the products with the rows are numpy's ``einsum``
#: rather than BLAS (:func:`rows_product`, :func:`weighted_sum`), from
#: :data:`EINSUM_FEATURES` features. Measured (one BLAS thread, process CPU, per
#: chunk of 8 MiB of rows, six chunks so the rows come from memory, ms, BLAS
#: whole / einsum / BLAS by blocks): ``(K, D) @ X.T`` at D = 100: K = 1 1.01 /
#: 0.50 / 1.10, K = 2 1.75 / 0.91 / 1.44, K = 4 1.73 / 1.74 / 1.52, K = 8 1.97 /
#: 3.35 / 1.45; at D = 20: K = 1 0.43 / 0.65 / 0.75, K = 2 1.48 / 1.31 / 0.66,
#: K = 8 1.96 / 5.09 / 1.55. ``resp @ X`` at D = 100: K = 2 1.48 / 0.81 / 1.11,
#: K = 8 1.85 / 2.58 / 1.41; at D = 50, K = 4: 1.43 / 1.71 / 0.77; at D = 20,
#: K = 1: 0.33 / 0.66 / 0.52 (one component, fewer features: the whole product).
EINSUM_COMPONENTS = 2
#: Fewest features for which :data:`EINSUM_COMPONENTS` components use einsum.
EINSUM_FEATURES = 32
#: Bytes of rows one product of :func:`rows_product` and :func:`weighted_sum`
#: reads (the block stays in the core's cache; whole-chunk products with a few
#: components ran at a fraction of the memory's speed, see above). Fits (one BLAS
#: thread, process CPU, ms an iteration, load ~4, blocks of 2**18 / 2**19 / 2**20
#: bytes): diag D = 20, K = 2 11.8 / 10.0 / 9.3; K = 4 11.4 / 10.5 / 11.0; D = 50,
#: K = 2 36.3 / 29.1 / 29.9; D = 100, K = 4 65.6 / 62.5 / 51.8; spherical D = 200,
#: K = 2 88.9 / 86.5 / 88.2; tied D = 50, K = 4 44.3 / 41.9 / 42.7 (2**16 and
#: 2**17 were no better than 2**18). Half the core's 1 MiB L2 here.
BLOCK_BYTES = 2**19


def einsum_pays(n_components: int, n_features: int) -> bool:
    """Whether the products of (K, D) matrices with rows are einsum's (else BLAS's)."""
    return n_components <= EINSUM_COMPONENTS and n_features >= EINSUM_FEATURES


def _whole_pays(n_components: int, n_features: int) -> bool:
    """One component, few features: BLAS's matrix-vector product over the whole rows."""
    return n_components == 1 and n_features < EINSUM_FEATURES


def _row_blocks(X: np.ndarray) -> tuple[range, int]:
    """Starts of the row blocks of :data:`BLOCK_BYTES` (at least 256 rows each), and their rows."""
    rows = max(256, BLOCK_BYTES // max(1, X.shape[1] * X.itemsize))
    return range(0, X.shape[0], rows), rows


def rows_product(
    matrix: np.ndarray, X: np.ndarray, out: np.ndarray | None = None, einsum: bool = True
) -> np.ndarray:
    """``matrix @ X.T``: (K, D) by rows (n, D) gives (K, n).

    einsum for few components and many features, BLAS's matrix-vector product
    for one component and few features, else BLAS by row blocks (see
    :data:`EINSUM_COMPONENTS`). ``out``: a (K, n) array (a view of a wider one
    too) the product is written into, and returned; else a new one. ``einsum``
    False: never einsum (for kernels that already run by cache-sized row blocks,
    :meth:`gmm.covariance.diag.Diag.plain_product`). O(n · K · D) time, the
    result and one block's (rows, K) product of memory.
    """
    n_components, n_features = matrix.shape
    dtype = np.result_type(matrix, X)
    if einsum and einsum_pays(n_components, n_features):
        return np.einsum("ij,kj->ki", X, matrix, out=out)
    if _whole_pays(n_components, n_features):
        if out is None:
            return matrix @ X.T
        out[...] = matrix @ X.T
        return out
    if out is None:
        out = np.empty((n_components, X.shape[0]), dtype=dtype)
    starts, rows = _row_blocks(X)
    right = np.ascontiguousarray(matrix.T, dtype=dtype)
    block = np.empty((min(rows, X.shape[0]), n_components), dtype=dtype)
    for start in starts:
        part = X[start : start + rows]
        product = block[: part.shape[0]]
        np.matmul(part, right, out=product)
        out[:, start : start + part.shape[0]] = product.T
    return out


def weighted_sum(resp: np.ndarray, X: np.ndarray, einsum: bool = True) -> np.ndarray:
    """``resp @ X``: (K, n) by rows (n, D) gives (K, D), in ``resp``'s and X's dtype.

    By row blocks, each an einsum (few components, many features: see
    :data:`EINSUM_COMPONENTS`; not with ``einsum`` False, as for
    :func:`rows_product`) or a BLAS product, summed in float64 in row order;
    one component and few features: one matrix-vector product. O(n · K · D)
    time, O(K · D) memory.
    """
    if _whole_pays(resp.shape[0], X.shape[1]):
        return resp @ X
    einsum = einsum and einsum_pays(resp.shape[0], X.shape[1])
    product = _block_einsum if einsum else _block_product
    starts, rows = _row_blocks(X)
    total = np.zeros((resp.shape[0], X.shape[1]))
    for start in starts:
        total += product(resp[:, start : start + rows], X[start : start + rows])
    return total.astype(np.result_type(resp, X), copy=False)


def _block_product(resp: np.ndarray, X: np.ndarray) -> np.ndarray:
    return resp @ X


def _block_einsum(resp: np.ndarray, X: np.ndarray) -> np.ndarray:
    return np.einsum("kn,nj->kj", resp, X)
