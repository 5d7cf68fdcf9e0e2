"""The :class:`~gmm.GaussianMixtureIC` codec: the best model, the sweep table, the settings.

The best model is stored as a :class:`~gmm.GaussianMixture` is (the ``"model"``
section and ``model.*`` members, see :mod:`gmm.persistence.mixture`); the
``"selection"`` section adds the selection's constructor parameters, its
criterion, ``n_features_in_`` and the sweep table, and
``selection.feature_names_in_.npy`` its column names. Reading checks every row
of the table and that the table's best row is the stored model, then builds the
estimator with :meth:`GaussianMixtureIC.from_sweep`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..selection import COLUMNS, GaussianMixtureIC, SweepResult, SweepTable, best_index
from . import mixture
from .file import Codec, ModelReader, names_array
from .params import decode_params, encode_params


def encode(model: GaussianMixtureIC, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The ``"model"`` and ``"selection"`` sections of a fitted GaussianMixtureIC."""
    check_is_fitted(model)
    sections = {"model": mixture.encode_section(model.best_estimator_, arrays)}
    if hasattr(model, "feature_names_in_"):
        arrays["selection.feature_names_in_"] = names_array(model.feature_names_in_)
    sections["selection"] = {
        "params": encode_params(model.get_params(deep=False), arrays),
        "criterion": model.sweep_result_.criterion,
        "n_features_in_": int(model.n_features_in_),
        "table": model.table_.to_records(),
    }
    return sections


def decode(reader: ModelReader, metadata: dict[str, Any]) -> tuple[GaussianMixtureIC, set[str]]:
    """The fitted GaussianMixtureIC of a file, checked; and the members read."""
    best, used = mixture.decode(reader, metadata)
    section = reader.section(metadata, "selection")
    params, param_arrays = decode_params(
        reader, section.get("params"), "selection", GaussianMixtureIC
    )
    used |= param_arrays
    criterion = section.get("criterion")
    rows = section.get("table")
    if not isinstance(rows, list) or not rows:
        reader.fail("the sweep table is missing or empty")
    for number, row in enumerate(rows):
        if not _valid_row(row):
            reader.fail(f"row {number} of the sweep table is malformed")
    table = SweepTable(rows)
    try:
        result = SweepResult(table, criterion, best)
    except ValueError as error:
        reader.fail(f"the sweep table is unusable: {error}")
    row = table[best_index(table, criterion)]
    if (row["n_components"], row["covariance_type"]) != (best.n_components, best.covariance_type):
        reader.fail(
            f"the table's best row (K={row['n_components']}, "
            f"{row['covariance_type']!r}) is not the stored model"
        )
    if reader.field(section, "n_features_in_", int) != best.n_features_in_:
        reader.fail("n_features_in_ of the selection and of the model differ")
    names = None
    if "selection.feature_names_in_" in reader.members:
        names = reader.names_array("selection.feature_names_in_", best.n_features_in_)
        used.add("selection.feature_names_in_")
    return GaussianMixtureIC.from_sweep(result, feature_names_in=names, **params), used


def _valid_row(row) -> bool:
    if not isinstance(row, dict) or set(row) != set(COLUMNS):
        return False

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    return (
        isinstance(row["n_components"], int)
        and isinstance(row["covariance_type"], str)
        and all(number(row[c]) for c in ("log_likelihood", "aic", "bic", "icl", "fit_seconds"))
        and isinstance(row["n_parameters"], int)
        and isinstance(row["converged"], bool)
        and (row["n_iter"] is None or isinstance(row["n_iter"], int))
        and (row["error"] is None or isinstance(row["error"], str))
    )


#: GaussianMixtureIC: encoder and decoder.
CODEC = Codec(GaussianMixtureIC, encode, decode)
