"""The largest differences between gmm and R's mclust, over the committed references.

``python -m experiments.mclust_agreement`` prints, and writes to
``out/mclust_agreement.json``, for each of issue 12's checks against mclust
the largest difference over every stored cell (R is not needed: the numbers
are R's output committed in ``tests/reference/mclust/``, made by the R scripts
beside them):

- **hc**: ``gmm.hc(X, model, use).labels(G)`` against mclust's
  ``hclass(hc(X, modelName, use), G)``, G = 1..9, for every stored tree
  (``hc.json``): the partitions that differ after relabelling.
- **Same start, same fixed point** (``models.json``): every model from
  mclust's hc partition, run to mclust's stopping rule at ``tol = 1e-10`` with
  tight inner iterations, against ``me()``: the largest relative difference in
  log-likelihood and in BIC, and the largest difference in weights, means (over
  the data's largest absolute value) and covariances (over the largest
  absolute entry of mclust's); cells where mclust stops with a singular
  covariance and VVE (whose mclust M-step stops short of its optimum: ours is
  compared as "at least as high") are counted apart.
- **Prior** (``prior.json``): the same with ``prior='default'`` against
  ``me(..., prior = priorControl())``.
- **Same table** (``workflow.json``): ``sweep(X, range(1, 10), 'mclust',
  init_params='hc')`` at ``tol = 1e-10``, ``reg_covar = 0``, against
  ``mclustBIC`` with ``emControl(tol = 1e-10)``: the largest relative BIC gap
  over the cells both fit, the cells only one of them fits, and the chosen
  models.

Takes about a minute.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

import gmm
from gmm.covariance import register, unregister
from gmm.covariance.mclust import MODELS

from . import mclust as workflow

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "reference" / "mclust"
OUT = Path(__file__).resolve().parent / "out"


def _array(entry) -> np.ndarray:
    """An R array from the JSON: values in column-major order with their dim."""
    return np.asarray(entry["data"], dtype=float).reshape(entry["dim"], order="F")


def hc_check() -> dict:
    reference = json.loads((REFERENCE / "hc.json").read_text())
    trees = partitions = differing = 0
    for data in reference["datasets"].values():
        X = np.asarray(data["X"], dtype=float)
        for key, labels in data["hc"].items():
            model, use, *rest = key.split("/")
            tree = gmm.hc(X, model=model, use=use, merge_duplicates=bool(rest))
            trees += 1
            for G, theirs in enumerate(labels, start=1):
                partitions += 1
                differing += adjusted_rand_score(tree.labels(G), theirs) != 1.0
    return {"trees": trees, "partitions": partitions, "differing partitions": differing}


def _full(covariances, sigma: np.ndarray) -> np.ndarray:
    """Our covariances in the shape of mclust's (G, d, d) (one-feature models: scalars)."""
    covariances = np.asarray(covariances, dtype=float)
    if covariances.size == sigma.size:
        return covariances.reshape(sigma.shape)
    return np.broadcast_to(covariances.reshape(-1, 1, 1), sigma.shape)


def _fit_like_mclust(X, cell, fit, prior=None):
    G = cell["G"]
    resp = np.eye(G)[np.asarray(cell["classification"]) - 1]
    model = gmm.GaussianMixture(
        G,
        covariance_type=f"agreement-{fit['model']}",
        init_params=lambda X, k, rs: resp,
        tol=1e-10 * (1 + abs(fit["loglik"])) / X.shape[0],
        max_iter=100_000,
        reg_covar=0,
        prior=prior,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X)


def fits_check(name: str, datasets: dict, prior=None) -> dict:
    """Our fits from mclust's partitions against ``me()``'s (models.json or prior.json)."""
    reference = json.loads((REFERENCE / name).read_text())
    gaps = {"log-likelihood": 0.0, "BIC": 0.0, "weights": 0.0, "means": 0.0, "covariances": 0.0}
    where = dict.fromkeys(gaps, "")
    compared, singular, vve, vve_lower, errors = 0, [], 0, [], []
    for data_name, data in reference["datasets"].items():
        X = datasets[data_name]
        n, d = X.shape
        for cell in data["cells"]:
            G = cell["G"]
            for fit in cell["fits"]:
                label = f"{data_name} G={G} {fit['model']}"
                if not fit["ok"]:
                    singular.append(label)
                    continue
                try:
                    model = _fit_like_mclust(X, cell, fit, prior)
                except Exception as exc:  # reported, not hidden
                    errors.append(f"{label}: {type(exc).__name__}")
                    continue
                loglik = model.score(X) * n
                if fit["model"] == "VVE":
                    vve += 1
                    if loglik < fit["loglik"] - 1e-6 * abs(fit["loglik"]):
                        vve_lower.append(
                            f"{label} ({(loglik - fit['loglik']) / abs(fit['loglik']):.1e})"
                        )
                    continue
                compared += 1
                sigma = np.moveaxis(
                    np.broadcast_to(_array(fit["sigma"]).reshape(d, d, -1), (d, d, G)), -1, 0
                )
                found = {
                    "log-likelihood": abs(loglik - fit["loglik"]) / abs(fit["loglik"]),
                    "BIC": abs(model.bic(X) + fit["bic"]) / abs(fit["bic"]),
                    "weights": np.max(np.abs(model.weights_ - _array(fit["pro"]).ravel())),
                    "means": np.max(np.abs(model.means_ - _array(fit["mean"]).reshape(d, G).T))
                    / np.max(np.abs(X)),
                    "covariances": np.max(np.abs(_full(model.covariances_, sigma) - sigma))
                    / np.max(np.abs(sigma)),
                }
                for key, value in found.items():
                    if value > gaps[key]:
                        gaps[key], where[key] = float(value), label
    return {
        "fits compared": compared,
        "largest": {key: f"{gaps[key]:.2g} ({where[key]})" for key in gaps},
        "mclust singular (left out)": singular,
        "VVE fits": vve,
        "VVE below mclust": vve_lower,
        "errors": errors,
    }


def table_check() -> dict:
    reference = json.loads((REFERENCE / "workflow.json").read_text())
    rows = {}
    for name, data in reference["datasets"].items():
        X = np.asarray(data["X"], dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = gmm.sweep(
                X,
                range(1, 10),
                covariance_types="mclust",
                init_params="hc",
                tol=1e-10,
                reg_covar=0,
                max_iter=100_000,
                progress=False,
            )
        summary = workflow.compare(result, data)
        by_model, beyond = {}, []
        for cell, gap in summary["relative_gaps"].items():
            model = cell.split(",")[0]
            by_model[model] = max(by_model.get(model, 0.0), abs(gap))
            if abs(gap) > 1e-6:
                beyond.append(f"{cell}: {abs(gap):.1e} ({'higher' if gap > 0 else 'lower'})")
        rows[name] = {
            "cells": summary["cells"],
            "largest gap without VVE": f"{max(v for m, v in by_model.items() if m != 'VVE'):.2g}",
            "largest gap by model": {model: f"{gap:.2g}" for model, gap in by_model.items()},
            "cells beyond 1e-6 (ours higher or lower in BIC, mclust's sign)": beyond,
            "fitted by one side only": summary["not_reproduced"],
            "chosen": f"gmm {summary['ours_best']}, mclust {summary['mclust_best_all_models']}",
        }
    return rows


def main() -> int:
    models = json.loads((REFERENCE / "models.json").read_text())
    datasets = {name: _array(data["X"]) for name, data in models["datasets"].items()}
    names = [
        register(cls(name=f"agreement-{m}", inner_tol=1e-13, max_inner_iter=100_000)).name
        for m, cls in MODELS.items()
    ]
    try:
        result = {
            "hc": hc_check(),
            "same start, same fixed point": fits_check("models.json", datasets),
            "prior": fits_check("prior.json", datasets, prior="default"),
            "same table": table_check(),
        }
    finally:
        for name in names:
            unregister(name)
    OUT.mkdir(exist_ok=True)
    (OUT / "mclust_agreement.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
