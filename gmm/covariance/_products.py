"""Products of a chunk's rows with a few components' coefficients or responsibilities.

The E-step kernels of 'diag', 'spherical' and 'tied' multiply the rows X (n, D)
by a (K, D) matrix, ``matrix @ X.T``, and sum them weighted by the
responsibilities, ``resp @ X``. With one or two components BLAS's products ran
far below the memory's speed here, numpy's ``einsum`` at it; from four
components BLAS is as fast or faster. Each function picks by K
(:data:`EINSUM_COMPONENTS`); both give the product to rounding.
"""

from __future__ import annotations

import numpy as np

#: Most components for which the products with the rows are numpy's ``einsum``
#: rather than BLAS (:func:`rows_product`, :func:`weighted_sum`).
#: OpenBLAS's products with one or two rows on one side ran at a third to half of
#: the memory's speed here: measured (one BLAS thread, process CPU, per chunk of
#: 16 MiB of rows and squares, six chunks so the rows come from memory),
#: ``(K, D) @ X.T`` against einsum, ms: D = 50 K = 2 2.21 / 0.95, D = 100 K = 2
#: 2.06 / 0.89, K = 1 0.98 / 0.46, D = 200 K = 2 1.65 / 0.90; at K = 4 they tie
#: (1.79 / 1.70 at D = 100) and at K = 8 BLAS wins (1.89 / 3.42). ``resp @ X``
#: likewise (D = 100, K = 2: 1.51 / 0.84; K = 8: 1.92 / 3.11).
EINSUM_COMPONENTS = 2


def rows_product(matrix: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``matrix @ X.T``: (K, D) by rows (n, D) gives (K, n); einsum for few components.

    See :data:`EINSUM_COMPONENTS`. O(n · K · D) time.
    """
    if matrix.shape[0] <= EINSUM_COMPONENTS:
        return np.einsum("ij,kj->ki", X, matrix)
    return matrix @ X.T


def weighted_sum(resp: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``resp @ X``: (K, n) by rows (n, D) gives (K, D); einsum for few components.

    See :data:`EINSUM_COMPONENTS`. O(n · K · D) time.
    """
    if resp.shape[0] <= EINSUM_COMPONENTS:
        return np.einsum("kn,nj->kj", resp, X)
    return resp @ X
