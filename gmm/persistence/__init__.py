"""Safe model files: :func:`save` and :func:`load` without pickle.

A model file is a ``.npz`` archive (a zip of ``.npy`` members, stored without
compression) holding:

- ``metadata.npy``: UTF-8 JSON as a uint8 array. It records the file format and
  its version, the gmm version, the class, the covariance type, K, D, the dtype,
  the constructor parameters, the scalar fitted attributes, and the shape and
  dtype of every other member. A :class:`~gmm.GaussianMixtureIC` also stores its
  sweep table and criterion there.
- ``model.<attribute>.npy``: the fitted arrays of the Gaussian mixture (for a
  ``GaussianMixtureIC``, of its best estimator): ``weights_``, ``means_``,
  ``covariances_``, ``precisions_``, ``precisions_cholesky_``,
  ``lower_bounds_`` and, when fitted on named columns, ``feature_names_in_``.
- ``param.<name>.npy``: constructor parameters given as numpy arrays (such as
  ``means_init``); other values, lists included, are stored in the metadata.
- ``selection.feature_names_in_.npy``: a ``GaussianMixtureIC``'s column names.

:func:`load` never unpickles and never executes code. Before it reads any array
it checks the archive (known members only, stored uncompressed, sizes that fit
in the file) and each member's ``.npy`` header against the shapes and dtypes the
metadata implies, so a file that declares a huge or wrong shape is refused
before anything is allocated. Then it checks the values: finite, weights in
[0, 1] summing to 1, symmetric positive-definite covariances and precisions,
and precision Cholesky factors that are triangular and agree with the
precisions. Anything else raises :class:`ModelFileError` saying what is wrong.
The arrays are stored bit for bit, so a loaded model predicts exactly as the
saved one did.

:func:`save` writes a temporary file in the target folder, fsyncs it and renames
it over the target (``os.replace``), so an interrupted save leaves the previous
file intact. Pickling a model also works, as for any scikit-learn estimator,
but a pickle runs code when loaded: prefer these two functions for files that
travel.

The package keeps one concern per module: :mod:`~gmm.persistence.file` (the
archive, written atomically and read with every check above, and
:class:`ModelFileError`), :mod:`~gmm.persistence.params` (constructor
parameters), and one codec per estimator class, its encoder and decoder side
by side: :mod:`~gmm.persistence.mixture` and :mod:`~gmm.persistence.selection`.
:data:`CODECS` maps the class name stored in a file to its codec.
"""

from __future__ import annotations

import os

from ..writing import check_output_path
from . import roundtrip
from .bayesian import CODEC as _BAYESIAN
from .file import (
    FORMAT,
    FORMAT_VERSION,
    MAX_METADATA_BYTES,
    Codec,
    ModelFileError,
    build_archive,
    open_model_file,
    read_archive,
    write_archive,
)
from .mixture import CODEC as _MIXTURE
from .selection import CODEC as _SELECTION

#: The estimators a model file can hold, by the class name stored in the file.
CODECS: dict[str, Codec] = {
    "GaussianMixture": _MIXTURE,
    "GaussianMixtureIC": _SELECTION,
    "BayesianGaussianMixture": _BAYESIAN,
}

__all__ = [
    "CODECS",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_METADATA_BYTES",
    "Codec",
    "ModelFileError",
    "load",
    "save",
]


def save(model, path: str | os.PathLike) -> None:
    """Write a fitted model to ``path`` as a pickle-free ``.npz`` file.

    Parameters
    ----------
    model : GaussianMixture or GaussianMixtureIC
        Fitted.
    path : str or path
        Written as given (no suffix is added). An existing file is replaced
        atomically: a temporary file in the same folder is written, fsynced and
        renamed over it.

    Raises
    ------
    TypeError
        If ``model`` is not one of the three classes, or a constructor
        parameter is of a type a file cannot hold (a numpy Generator, an
        object, a dict with non-str keys, an array of non-numbers). A
        RandomState is stored with its state. A callable ``init_params`` is
        stored as None: files hold no code, so such a model loads with
        ``init_params=None`` and needs ``set_params(init_params=...)`` before
        it is refitted.
    ValueError
        If the file would not load back to an equal model
        (:mod:`gmm.persistence.roundtrip`): a parameter or fitted attribute
        that would come back different (a feature name with a NUL character
        or an unpaired surrogate, an integer beyond 64 bits, lists nested
        more than 32 deep, ``covariance_type`` changed by ``set_params`` after
        the fit...), named with the reason. Nothing is written then.
    gmm.OutputPathError
        (a ValueError) If ``path`` must not be replaced: a folder, a device, a
        FIFO, a socket, a file with no write bit or one this user may not
        write, a missing or unwritable folder, a loop of links
        (:func:`gmm.writing.check_output_path`). Checked before the file is
        built; nothing on disk changes. A symbolic link is followed and its
        target replaced atomically; the link stays a link.
    sklearn.exceptions.NotFittedError
        If the model is not fitted.

    Notes
    -----
    The file is built in memory and read back with :func:`load`'s checks
    before the target is touched: O(size of the model) time and extra memory,
    plus O(K·D³) for the checks of 'full' covariances. A ``warm_start`` refit
    after ``set_params(n_components=...)`` keeps the components it started
    from (as scikit-learn does): the file stores both, and the loaded model
    has the same ``n_components`` parameter and the same fitted components.
    See :mod:`gmm.persistence` for the file layout.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from gmm import GaussianMixture, save, load
    >>> X = np.array([[0.0, 0.1], [0.2, 0.0], [5.0, 5.1], [5.2, 4.9], [0.1, 0.3], [5.1, 5.0]])
    >>> model = GaussianMixture(2, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(model, path)
    >>> np.array_equal(load(path).predict_proba(X), model.predict_proba(X))
    True
    """
    codec = next((c for c in CODECS.values() if isinstance(model, c.cls)), None)
    if codec is None:
        raise TypeError(
            f"save() stores GaussianMixture and GaussianMixtureIC models, got "
            f"{type(model).__name__}. Use pickle or joblib for other objects."
        )
    check_output_path(path)  # before any work; write_archive checks again as it writes
    arrays: dict = {}
    sections = codec.encode(model, arrays)
    data = build_archive(type(model).__name__, sections, arrays)
    try:
        with read_archive(_IN_MEMORY, data) as reader:
            loaded = _decode(reader)
    except ModelFileError as error:
        reason = str(error).removeprefix(f"{_IN_MEMORY}: ")
        raise ValueError(
            f"Cannot save the model: the file would not load back ({reason}). Nothing was written."
        ) from None
    problem = roundtrip.problem(model, loaded)
    if problem is not None:
        raise ValueError(f"Cannot save the model: {problem}. Nothing was written.")
    write_archive(path, data)


#: The name of a model file checked in memory before it is written, in messages.
_IN_MEMORY = "<the file being saved>"


def load(path: str | os.PathLike):
    """Read a model written by :func:`save`, checking everything first.

    Parameters
    ----------
    path : str or path

    Returns
    -------
    GaussianMixture or GaussianMixtureIC
        Fitted, with the saved arrays bit for bit.

    Raises
    ------
    ModelFileError
        (a ValueError) If the file is not a gmm model file, was written by a
        newer format version, or holds a wrong member, shape, dtype or value;
        the message says which.
    FileNotFoundError
        If there is no such file.

    Notes
    -----
    Never unpickles and never runs code from the file. Memory is bounded by
    the file's size: declared shapes are checked against the member sizes
    before anything is read. Checking positive definiteness costs O(K·D³).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from gmm import GaussianMixture, ModelFileError, save, load
    >>> X = np.array([[0.0, 0.1], [0.2, 0.0], [5.0, 5.1], [5.2, 4.9], [0.1, 0.3], [5.1, 5.0]])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(GaussianMixture(2, random_state=0).fit(X), path)
    >>> load(path).n_components
    2
    >>> with open(path, "wb") as f:
    ...     _ = f.write(b"not a model")
    >>> try:
    ...     load(path)
    ... except ModelFileError as error:
    ...     print(str(error).split(": ", 1)[1])
    not a gmm model file (not a .npz archive)
    """
    with open_model_file(path) as reader:
        return _decode(reader)


def _decode(reader):
    metadata = reader.metadata(tuple(CODECS))
    model, read = CODECS[metadata["class"]].decode(reader, metadata)
    reader.check_members(read)
    return model
