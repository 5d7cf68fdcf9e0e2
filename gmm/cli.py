"""The ``gmm`` command: sweep, fit, predict, score, sample and inspect models.

Installed as the ``gmm`` console script and runnable as ``python -m gmm``.
DATA is a CSV file (the delimiter is sniffed; a first row that is not all
numbers is a header and gives the feature names) or a ``.npy`` array of shape
(n_samples, n_features). Models are the pickle-free files of :func:`gmm.save`.
Results go to standard output as plain numbers; every error is one line on
standard error, ``gmm: error: ...``, with exit status 1 (2 for a bad command
line).

Outputs (``--out``, ``--table``, ``--plot``, ``--checkpoint``) are checked before
DATA is read: each must be a regular file we may write or a new name in a
writable folder (:func:`gmm.writing.check_output_path`), no two the same file,
none the DATA file, and ``--plot`` must end in an image format matplotlib
writes. At the end every output is tried, the model first; one that still
fails (a full disk, a folder removed meanwhile) does not stop the others, and
the command then exits 1 naming what was not written. Sizes are bounded: ``--k``
by the rows and the memory of DATA (ranges are never listed before that check),
``--seed`` to 0..2**32-1, ``--n-init`` to 10,000, ``--max-iter`` to 10**9,
``--jobs`` to the cores, ``-n`` and ``--draws`` by memory. An error that names
a row counts from 0, as the API does, and adds the line of a CSV DATA file.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import datafiles
from .covariance import covariance_types

PROG = "gmm"

_EXAMPLES = {
    None: """examples:
  gmm sweep data.csv --k 1:20 --covariance all --out model.npz --plot bic.png
  gmm fit data.csv --k 5 --covariance full --out model.npz
  gmm predict model.npz data.csv --proba
  gmm info model.npz""",
    "sweep": """example:
  gmm sweep data.csv --k 1:20 --covariance full,diag --criterion bic --jobs 2 \\
      --checkpoint sweep.jsonl --out model.npz --table table.csv --plot bic.png

Fits every (K, covariance type), prints the table and the best model. With
--checkpoint, a rerun after an interruption skips the fits already done.""",
    "fit": """example:
  gmm fit data.csv --k 5 --covariance full --seed 0 --out model.npz
  gmm fit big.npy --k 5 --online --batch-size 1000 --out model.npz

With --online, one pass of stepwise EM over batches (a .npy is memory-mapped
and read once, batch by batch; a CSV is parsed whole, then streamed).""",
    "predict": """example:
  gmm predict model.npz data.csv            # one label per line
  gmm predict model.npz data.csv --proba    # one row of probabilities per sample""",
    "score": """example:
  gmm score model.npz data.csv              # mean log-likelihood per sample
  gmm score model.npz data.csv --samples    # one log-likelihood per sample""",
    "sample": """example:
  gmm sample model.npz -n 100 --seed 0 > draws.csv""",
    "info": """example:
  gmm info model.npz""",
    "impute": """example:
  gmm fit data.csv --k 3 --nan-policy marginalize --out model.npz
  gmm impute model.npz data.csv > filled.csv             # conditional means
  gmm impute model.npz data.csv --draws 5 --seed 0       # 5 draws, stacked""",
}


class CommandLineError(Exception):
    """A problem with the user's input, reported as one line."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like every other error."""

    def error(self, message: str):
        sys.stderr.write(f"{PROG}: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


# ======================================================================= main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gmm`` command line; return the exit status.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        0 on success, 1 when the command failed, 2 for a bad command line.

    Examples
    --------
    >>> import io, os, tempfile
    >>> from contextlib import redirect_stdout
    >>> import numpy as np
    >>> from gmm.cli import main
    >>> folder = tempfile.mkdtemp()
    >>> data = os.path.join(folder, "data.npy")
    >>> np.save(data, np.random.default_rng(0).normal(size=(50, 2)))
    >>> model = os.path.join(folder, "model.npz")
    >>> with redirect_stdout(io.StringIO()):
    ...     status = main(["fit", data, "--k", "2", "--out", model])
    >>> status
    0
    >>> with redirect_stdout(io.StringIO()) as out:
    ...     status = main(["info", model])
    >>> status, out.getvalue().splitlines()[1]
    (0, 'class            GaussianMixture')
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        try:
            return args.handler(args) or 0
        except KeyboardInterrupt:
            sys.stderr.write(f"{PROG}: interrupted\n")
            return 130
        except BrokenPipeError:
            # The reader (e.g. `head`) went away; that is not an error of ours.
            _silence_stdout()
            return 0
        except Exception as error:  # every failure is one line, never a traceback
            sys.stderr.write(f"{PROG}: error: {_one_line(error)}{_row_note(error, args)}\n")
            return 1


def _show_warning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(f"{PROG}: warning: {_one_line(message)}\n")


def _one_line(error: BaseException | Warning | str) -> str:
    if isinstance(error, FileNotFoundError):
        return f"no such file: {error.filename!r}"
    if isinstance(error, IsADirectoryError):
        return f"is a folder, not a file: {error.filename!r}"
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.strerror or error}: {error.filename!r}"
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _row_note(error: BaseException, args) -> str:
    """Where the row an error names (counted from 0, as the API counts) is in DATA.

    A CSV's blank lines are skipped by the reader, so its line is found by
    counting the non-blank lines after the header: O(size of the file), only
    when such an error happens.
    """
    row = getattr(error, "row", None)
    path = getattr(args, "data", None)
    if not isinstance(row, (int, np.integer)) or path is None:
        return ""
    if path.lower().endswith(".npy"):
        return f" (rows count from 0: row {row} of the array in {path})"
    line = _csv_line(path, int(row), getattr(args, "header", None))
    if line is None:
        return f" (rows count from 0, after any header line of {path})"
    return f" (rows count from 0: that is line {line} of {path})"


def _csv_line(path: str, row: int, header: bool | None) -> int | None:
    try:
        _, names = datafiles.read_data(path, allow_missing=True, header=header)
        data_lines = 0
        with open(path, encoding="utf-8-sig", newline="") as file:
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                data_lines += 1
                if data_lines == row + 1 + (names is not None):
                    return number
    except (OSError, ValueError):
        return None
    return None


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


# ===================================================================== parser
def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Gaussian mixture models: choose K by information criteria, fit, "
        "predict, score and sample, with pickle-free model files.",
        epilog=_EXAMPLES[None],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"gmm {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, handler) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=help,
            epilog=_EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(handler=handler)
        return sub

    sub = command("sweep", "Fit a grid of K and covariance types; keep the best.", _sweep)
    _add_data_argument(sub, "CSV or .npy file, one sample per row")
    sub.add_argument(
        "--k",
        type=_k_values,
        default=(range(1, 11),),
        metavar="K",
        help="values of K: 5, 1:20 (inclusive), 1:20:2 or 2,4,8 (default 1:10); at most "
        "the number of rows",
    )
    sub.add_argument(
        "--covariance",
        type=_covariance_names,
        default="all",
        metavar="TYPES",
        help="'all' (full, tied, diag, spherical), 'mclust' (mclust's 14 models, or 'E' and "
        "'V' for one feature, with mclust's defaults as gmm.sweep takes them) or a comma "
        "list of registered names such as full,tied or EII,VVV (default all)",
    )
    sub.add_argument(
        "--criterion",
        choices=("bic", "aic", "icl"),
        default="bic",
        help="criterion that picks the best model (default bic)",
    )
    sub.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        metavar="N",
        help="parallel fits (-1: every core; default 1)",
    )
    sub.add_argument(
        "--checkpoint", metavar="FILE", help="JSON Lines file that makes the sweep resumable"
    )
    sub.add_argument(
        "--overwrite",
        action="store_true",
        help="start a checkpoint afresh if it was written for other data",
    )
    sub.add_argument("--out", metavar="MODEL", help="save the selection (best model) here")
    sub.add_argument("--table", metavar="CSV", help="write the table of fits here")
    sub.add_argument("--plot", metavar="IMAGE", help="plot the criterion against K (png, pdf, svg)")
    sub.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when standard error is a terminal)",
    )
    _add_fit_options(sub)

    sub = command("fit", "Fit one Gaussian mixture.", _fit)
    _add_data_argument(sub, "CSV or .npy file, one sample per row")
    sub.add_argument(
        "--k", type=_positive_int, required=True, metavar="K", help="number of components"
    )
    sub.add_argument(
        "--covariance",
        default="full",
        choices=covariance_types(include_mclust=True),
        help="covariance type (default full)",
    )
    sub.add_argument("--out", metavar="MODEL", help="save the fitted model here")
    sub.add_argument(
        "--bayesian",
        action="store_true",
        help="fit a BayesianGaussianMixture (variational; K is an upper bound)",
    )
    sub.add_argument(
        "--weight-prior",
        default="dirichlet_process",
        choices=("dirichlet_process", "dirichlet_distribution"),
        help="with --bayesian: the prior on the weights (default dirichlet_process)",
    )
    sub.add_argument(
        "--weight-concentration",
        type=float,
        default=None,
        metavar="A",
        help="with --bayesian: weight_concentration_prior (default 1/K)",
    )
    sub.add_argument(
        "--nan-policy",
        default="raise",
        choices=("raise", "omit", "marginalize"),
        help="empty cells, NA and NaN: an error (default), drop their rows (omit), or "
        "exact EM over the observed entries (marginalize)",
    )
    sub.add_argument(
        "--online",
        action="store_true",
        help="one pass of online (stepwise) EM over batches instead of batch EM",
    )
    sub.add_argument(
        "--prior",
        choices=("default",),
        default=None,
        help="mclust's conjugate prior (priorControl()): a MAP fit that keeps components "
        "from collapsing; batch EM only",
    )
    sub.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        metavar="N",
        help="rows per update with --online (default: gmm.online.default_batch_size, "
        "10,000 rows or 1 MiB of rows)",
    )
    _add_fit_options(sub)

    sub = command("impute", "Fill missing entries (empty, NA) from a model, as CSV.", _impute)
    sub.add_argument("model", metavar="MODEL", help="model file written by gmm fit")
    _add_data_argument(sub, "CSV or .npy file; empty cells, NA, NaN missing")
    sub.add_argument(
        "--draws",
        type=_positive_int,
        default=None,
        metavar="N",
        help="N draws from the conditional distribution, one block of rows per draw "
        "(default: the conditional mean)",
    )
    sub.add_argument("--seed", type=_seed, default=None, help="random seed of the draws")

    sub = command("predict", "Print the component of each sample (or its probabilities).", _predict)
    sub.add_argument("model", metavar="MODEL", help="model file written by gmm fit or sweep")
    _add_data_argument(sub, "CSV or .npy file, one sample per row")
    sub.add_argument(
        "--proba",
        action="store_true",
        help="print posterior probabilities, one column per component",
    )

    sub = command("score", "Print the mean log-likelihood of the data.", _score)
    sub.add_argument("model", metavar="MODEL", help="model file written by gmm fit or sweep")
    _add_data_argument(sub, "CSV or .npy file, one sample per row")
    sub.add_argument(
        "--samples", action="store_true", help="print each sample's log-likelihood instead"
    )

    sub = command("sample", "Draw samples from a model, as CSV.", _sample)
    sub.add_argument("model", metavar="MODEL", help="model file written by gmm fit or sweep")
    sub.add_argument(
        "-n",
        "--n-samples",
        type=_positive_int,
        default=1,
        metavar="N",
        help="number of samples (default 1)",
    )
    sub.add_argument("--seed", type=_seed, default=None, help="random seed")
    sub.add_argument(
        "--labels", action="store_true", help="add a last column with the component of each sample"
    )

    sub = command("info", "Describe a model file.", _info)
    sub.add_argument("model", metavar="MODEL", help="model file written by gmm fit or sweep")
    return parser


def _add_fit_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--seed", type=_seed, default=0, help="random_state of every fit (default 0)")
    sub.add_argument(
        "--n-init",
        type=_n_init,
        default=1,
        metavar="N",
        help="initialisations per fit, the best kept (default 1)",
    )
    sub.add_argument(
        "--max-iter",
        type=_max_iter,
        default=None,
        metavar="N",
        help="EM iterations per initialisation (default 100; a 'mclust' sweep: 1000)",
    )
    sub.add_argument(
        "--tol",
        type=float,
        default=None,
        help="convergence threshold (default 1e-3; a 'mclust' sweep: 1e-5, relative)",
    )
    sub.add_argument(
        "--reg-covar",
        type=float,
        default=None,
        metavar="R",
        help="added to covariance diagonals (default 1e-6; a 'mclust' sweep: 0)",
    )
    sub.add_argument(
        "--init-params",
        default=None,
        choices=("kmeans", "k-means++", "random", "random_from_data", "hc"),
        help="initialisation (default kmeans; a 'mclust' sweep: hc, mclust's hierarchical start)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


#: The most initialisations a fit may ask for (each is a whole EM run).
MAX_N_INIT = 10_000
#: The most EM iterations per initialisation.
MAX_ITER = 10**9


def _bounded_int(text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _seed(text: str) -> int:
    return _bounded_int(text, 0, 2**32 - 1, "a seed from 0 to 2**32 - 1")


def _n_init(text: str) -> int:
    return _bounded_int(text, 1, MAX_N_INIT, f"an integer from 1 to {MAX_N_INIT}")


def _max_iter(text: str) -> int:
    return _bounded_int(text, 0, MAX_ITER, f"an integer from 0 to {MAX_ITER}")


def _jobs(text: str) -> int:
    from .selection.parallel import cpu_count

    cores = cpu_count()
    if text.strip() == "-1":
        return -1
    return _bounded_int(text, 1, cores, f"-1 (every core) or a number of fits from 1 to {cores}")


def _k_values(text: str) -> tuple[range, ...]:
    """``5``, ``1:20`` (inclusive), ``1:20:2``, ``2,4,8`` or a comma list of these.

    Kept as ranges, never listed here: ``1:1000000000000`` costs nothing until
    :func:`_k_list` compares it with the data.
    """
    values: list[range] = []
    try:
        for part in text.split(","):
            bounds = [int(b) for b in part.split(":")]
            if len(bounds) == 1:
                values.append(range(bounds[0], bounds[0] + 1))
            elif len(bounds) in (2, 3):
                step = bounds[2] if len(bounds) == 3 else 1
                if step < 1 or bounds[1] < bounds[0]:
                    raise ValueError
                values.append(range(bounds[0], bounds[1] + 1, step))
            else:
                raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected K like 5, 1:20 (inclusive), 1:20:2 or 2,4,8; got {text!r}"
        ) from None
    if min(part[0] for part in values) < 1:
        raise argparse.ArgumentTypeError(f"K must be >= 1, got {text!r}")
    return tuple(values)


def _k_list(parts: tuple[range, ...], X: np.ndarray, covariance) -> list[int]:
    """The values of ``--k`` as a list, after checking the largest against DATA and memory."""
    from .selection.search import check_grid_size, grid_types, largest_value

    n_rows, n_features = X.shape
    types = grid_types(covariance, n_features)
    k_max = max(largest_value(part) for part in parts)
    dtype = X.dtype if X.dtype == np.float32 else np.float64
    try:
        check_grid_size(k_max, n_rows, n_features, types, dtype, name="--k")
    except ValueError as error:
        raise CommandLineError(str(error)) from None
    return list(dict.fromkeys(itertools.chain.from_iterable(parts)))


def _covariance_names(text: str) -> str | list[str]:
    from .selection import check_covariance_types

    names = text if text in ("all", "mclust") else [name.strip() for name in text.split(",")]
    try:
        checked = check_covariance_types(names)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    # 'mclust' goes to the sweep as the word: it picks the one-feature models
    # ('E', 'V') from the data and brings mclust's defaults (hc start, relative
    # convergence, no reg_covar), as gmm.sweep(X, covariance_types='mclust') does.
    return "mclust" if names == "mclust" else checked


# ======================================================================= data
def _add_data_argument(sub: argparse.ArgumentParser, help: str) -> None:
    sub.add_argument("data", metavar="DATA", help=help)
    sub.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether a CSV's first line names the columns (default: a line of text is a "
        "header, a line of numbers is data, a mix is an error)",
    )


def read_data(
    path: str, allow_missing: bool = False, header: bool | None = None
) -> tuple[np.ndarray, list[str] | None]:
    """DATA as :func:`gmm.datafiles.read_data` reads it: ``(X, names or None)``.

    Raises
    ------
    CommandLineError
        Instead of :class:`gmm.datafiles.DataFileError`, with the same message.
    """
    try:
        return datafiles.read_data(path, allow_missing, header)
    except datafiles.DataFileError as error:
        raise CommandLineError(str(error)) from None


def _with_names(X: np.ndarray, names: list[str] | None):
    """A DataFrame when there are names and pandas, so the model records them."""
    if names is None:
        return X
    try:
        import pandas as pd
    except ImportError:
        return X
    return pd.DataFrame(X, columns=names)


def _load_model(path: str):
    from .persistence import load

    return load(path)


def _check_features(model, X: np.ndarray, names: list[str] | None, path: str) -> np.ndarray:
    """The data as an array, after checking it matches the model's features."""
    expected = model.n_features_in_
    if X.shape[1] != expected:
        raise CommandLineError(
            f"{path} has {X.shape[1]} columns but the model was fitted on {expected} features"
        )
    known = getattr(model, "feature_names_in_", None)
    if names is not None and known is not None and list(known) != list(names):
        raise CommandLineError(
            f"{path}: columns ({', '.join(names)}) do not match the model's features "
            f"({', '.join(map(str, known))})"
        )
    return X.astype(model_dtype(model), copy=False)


def model_dtype(model) -> np.dtype:
    """The floating dtype of a fitted model's parameters."""
    inner = getattr(model, "best_estimator_", model)
    return inner.means_.dtype


def _write_array(array: np.ndarray, header: Sequence[str] | None = None) -> None:
    fmt = "%d" if array.dtype.kind in "iu" else ("%.9g" if array.dtype == np.float32 else "%.17g")
    out = sys.stdout
    if header is not None:
        out.write(",".join(header) + "\n")
    np.savetxt(out, array, fmt=fmt, delimiter=",")
    out.flush()


# =================================================================== commands
def _fit_params(args) -> dict[str, Any]:
    """The fit options given on the command line; the rest keep the estimator's
    defaults (or, for ``--covariance mclust``, mclust's: :func:`gmm.sweep`)."""
    given = {
        "max_iter": args.max_iter,
        "tol": args.tol,
        "reg_covar": args.reg_covar,
        "init_params": args.init_params,
    }
    return {name: value for name, value in given.items() if value is not None}


def _sweep(args) -> int:
    from .selection import GaussianMixtureIC, sweep

    _check_outputs(args)
    X, names = read_data(args.data, header=args.header)
    ks = _k_list(args.k, X, args.covariance)
    result = sweep(
        X,
        ks,
        args.covariance,
        criterion=args.criterion,
        n_init=args.n_init,
        random_state=args.seed,
        n_jobs=args.jobs,
        checkpoint=args.checkpoint,
        progress=args.progress,
        overwrite=args.overwrite,
        **_fit_params(args),
    )
    print(repr(result.table))
    best = result.best_params_
    print(
        f"best by {args.criterion}: K={best['n_components']}, "
        f"covariance={best['covariance_type']}, {args.criterion}={result.best_score_:.10g}"
    )

    def save_model() -> None:
        from .persistence import save

        model = GaussianMixtureIC.from_sweep(
            result,
            feature_names_in=names,
            n_components=ks,
            covariance_type=args.covariance,
            criterion=args.criterion,
            n_init=args.n_init,
            random_state=args.seed,
            **_fit_params(args),
        )
        save(model, args.out)

    _write_outputs(
        [
            ("--out", args.out, save_model),
            ("--table", args.table, lambda: result.to_csv(args.table)),
            ("--plot", args.plot, lambda: _save_plot(result, args.plot)),
        ]
    )
    return 0


#: Options that name a file the command writes, in the order they are written.
_OUTPUT_OPTIONS = ("out", "table", "plot", "checkpoint")


def _check_outputs(args) -> None:
    """Check every output path (and the plot's format) before DATA is read or anything fits.

    Each must be writable as :func:`gmm.writing.check_output_path` says; no two
    may be the same file, and none may be the DATA file. O(1) system calls per
    output; importing matplotlib for ``--plot``.

    Raises
    ------
    CommandLineError
        Naming the option and the path.
    """
    from .writing import OutputPathError, check_output_path

    seen: dict[str, str] = {}
    data = getattr(args, "data", None)
    for name in _OUTPUT_OPTIONS:
        path = getattr(args, name, None)
        if not path:
            continue
        option = f"--{name}"
        try:
            target = check_output_path(path)
        except OutputPathError as error:
            raise CommandLineError(f"{option}: {error}") from None
        if target in seen:
            raise CommandLineError(
                f"{seen[target]} and {option} name the same file {path!r}; give each its own file"
            )
        seen[target] = option
        if data is not None and os.path.exists(target) and _same_file(target, data):
            raise CommandLineError(
                f"{option} {path!r} is the DATA file; gmm does not write over its input. "
                "Choose another path"
            )
    if getattr(args, "plot", None):
        _plot_format(args.plot)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _plot_format(path: str) -> str:
    """The image format of ``--plot``'s extension, one matplotlib's canvas can write."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CommandLineError('--plot needs matplotlib: pip install "gmm[plot]"') from None
    extension = os.path.splitext(path)[1][1:].lower()
    formats = Figure().canvas.get_supported_filetypes()
    if extension not in formats:
        what = "has no extension" if not extension else f"ends in .{extension}"
        known = ", ".join(f".{name}" for name in sorted(formats))
        raise CommandLineError(
            f"--plot {path!r} {what}, which is not an image format matplotlib can write; "
            f"use one of {known}"
        )
    return extension


def _write_outputs(outputs) -> None:
    """Write each ``(option, path, write)`` whose path is given, in order (the model first).

    One that fails (a full disk, a folder removed meanwhile) does not stop the
    others; afterwards one :class:`CommandLineError` names every output not written.
    """
    failed = []
    wanted = [(option, path, write) for option, path, write in outputs if path]
    for option, path, write in wanted:
        try:
            write()
        except Exception as error:
            failed.append(f"{option} {path!r} ({_one_line(error)})")
    if failed:
        written = len(wanted) - len(failed)
        others = f"; the other {written} output(s) were written" if written else ""
        raise CommandLineError(f"not written: {'; '.join(failed)}{others}")


def _save_plot(result, path: str) -> None:
    from matplotlib.figure import Figure

    from .writing import write_atomically

    image_format = _plot_format(path)
    figure = Figure(figsize=(7, 4.5))
    result.plot(ax=figure.subplots())
    write_atomically(
        path, lambda file: figure.savefig(file, format=image_format, bbox_inches="tight", dpi=110)
    )


def _fit(args) -> int:
    from .estimator import GaussianMixture
    from .selection import information_criteria

    if args.prior is not None and (args.bayesian or args.online):
        raise CommandLineError("--prior goes with batch EM, not with --bayesian or --online")
    if args.online and args.nan_policy != "raise":
        raise CommandLineError(
            "--nan-policy goes with batch EM, not with --online (online EM needs complete "
            "rows: drop or impute the incomplete ones first, e.g. with gmm impute)"
        )
    _check_outputs(args)
    if args.bayesian:
        return _fit_bayesian(args)
    if args.online:
        return _fit_online(args)
    X, names = read_data(args.data, allow_missing=args.nan_policy != "raise", header=args.header)
    X = _with_names(X, names)
    model = GaussianMixture(
        args.k,
        covariance_type=args.covariance,
        n_init=args.n_init,
        random_state=args.seed,
        nan_policy=args.nan_policy,
        prior=args.prior,
        **_fit_params(args),
    ).fit(X)
    criteria = information_criteria(model, X, None)
    print(f"components: {args.k}, covariance: {args.covariance}")
    print(f"converged: {model.converged_} after {model.n_iter_} iterations")
    for key in ("log_likelihood", "aic", "bic", "icl"):
        print(f"{key}: {criteria[key]:.10g}")
    return _save_if_asked(model, args)


def _save_if_asked(model, args) -> int:
    """Save ``model`` to ``--out`` when given; the exit status of a fit command."""
    from .persistence import save

    _write_outputs([("--out", args.out, lambda: save(model, args.out))])
    return 0


def _fit_bayesian(args) -> int:
    from .bayesian import BayesianGaussianMixture

    X, names = read_data(args.data, header=args.header)
    model = BayesianGaussianMixture(
        args.k,
        covariance_type=args.covariance,
        weight_concentration_prior_type=args.weight_prior,
        weight_concentration_prior=args.weight_concentration,
        n_init=args.n_init,
        random_state=args.seed,
        **_fit_params(args),
    ).fit(_with_names(X, names))
    effective = model.effective_components_
    print(f"components: {args.k} (upper bound), covariance: {args.covariance}")
    print(f"weight prior: {args.weight_prior}")
    print(f"converged: {model.converged_} after {model.n_iter_} iterations")
    print(f"lower bound: {model.lower_bound_:.10g}")
    print(f"effective components (weight > 1%): {len(effective)}")
    print("weights: " + " ".join(f"{w:.4g}" for w in model.weights_[effective]))
    return _save_if_asked(model, args)


def _fit_online(args) -> int:
    """``gmm fit --online``: :func:`gmm.fit_stream` over DATA read once in batches."""
    from .online import default_batch_size, fit_stream

    if args.data.lower().endswith(".npy"):
        try:
            X = np.load(args.data, mmap_mode="r", allow_pickle=False)
        except OSError:
            raise
        except Exception as error:
            raise CommandLineError(f"{args.data}: not a readable .npy file ({error})") from None
        if X.ndim != 2 or X.dtype.kind not in "biuf":
            raise CommandLineError(f"{args.data}: DATA must be a 2-D numeric array")
        names = None
    else:
        X, names = read_data(args.data, header=args.header)
    # A memory map is read batch by batch with plain file reads; a CSV's names go with
    # every batch, so the model records them.
    size = args.batch_size or default_batch_size(X.shape[1], X.dtype)
    batches = X
    if names is not None:
        batches = (
            _with_names(X[start : start + size], names) for start in range(0, X.shape[0], size)
        )
    model = fit_stream(
        batches,
        batch_size=args.batch_size,
        progress=None,
        total=-(-X.shape[0] // size),
        n_components=args.k,
        covariance_type=args.covariance,
        random_state=args.seed,
        **_fit_params(args),
    )
    print(f"components: {args.k}, covariance: {args.covariance}")
    print(f"online: {model.n_batches_seen_} batches, {model.n_samples_seen_} samples")
    print(f"mean log-likelihood of the stream: {model.lower_bound_:.10g}")
    return _save_if_asked(model, args)


def _model_and_data(args):
    """The model file and the data file of a command, checked against each other."""
    model = _load_model(args.model)
    # A model fitted with a nan_policy other than 'raise' predicts on incomplete rows.
    X, names = read_data(args.data, getattr(model, "nan_policy", "raise") != "raise", args.header)
    return model, _check_features(model, X, names, args.data)


def _predict(args) -> int:
    model, X = _model_and_data(args)
    if args.proba:
        _write_array(model.predict_proba(X))
    else:
        _write_array(model.predict(X))
    return 0


def _score(args) -> int:
    model, X = _model_and_data(args)
    if args.samples:
        _write_array(model.score_samples(X))
    else:
        print(f"{model.score(X):.17g}")
    return 0


def _impute(args) -> int:
    model = _load_model(args.model)
    if not hasattr(model, "impute"):
        raise CommandLineError(f"{args.model} holds a {type(model).__name__}, which cannot impute")
    X, names = read_data(args.data, allow_missing=True, header=args.header)
    X = _check_features(model, X, names, args.data)
    if args.draws is not None:
        _check_memory(args.draws, 8 * X.shape[0] * (X.shape[1] + 1), "--draws")
    filled = model.impute(X, n_draws=args.draws, random_state=args.seed)
    _write_array(filled.reshape(-1, X.shape[1]), names)
    return 0


def _check_memory(count: int, bytes_each: int, option: str) -> None:
    """Refuse ``count`` items of ``bytes_each`` bytes each (``option``) that memory cannot hold."""
    from .selection.search import available_memory, readable_bytes

    memory = available_memory()
    need = count * bytes_each
    if memory is not None and need > memory:
        raise CommandLineError(
            f"{option} {count} needs about {readable_bytes(need)} and about "
            f"{readable_bytes(memory)} of memory is available; the most that fits is "
            f"{memory // bytes_each}"
        )


def _sample(args) -> int:
    model = _load_model(args.model)
    _check_memory(args.n_samples, 8 * (model.n_features_in_ + 1), "-n")
    X, y = model.sample(args.n_samples, random_state=args.seed)
    known = getattr(model, "feature_names_in_", None)
    header = None if known is None else [str(name) for name in known]
    if args.labels:
        X = np.column_stack([X.astype(np.float64), y])
        header = None if header is None else [*header, "component"]
    _write_array(X, header)
    return 0


def _info(args) -> int:
    model = _load_model(args.model)
    inner = getattr(model, "best_estimator_", model)
    lines = [
        ("file", args.model),
        ("class", type(model).__name__),
        ("covariance type", inner.covariance_type),
        ("components", inner.n_components),
        ("features", inner.n_features_in_),
        ("dtype", inner.means_.dtype.name),
        ("converged", inner.converged_),
        ("iterations", inner.n_iter_),
        ("lower bound", f"{inner.lower_bound_:.10g}"),
    ]
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        lines.append(("feature names", ", ".join(map(str, names))))
    if inner is not model:
        result = model.sweep_result_
        lines.append(("criterion", result.criterion))
        lines.append(("grid fits", len(result.table)))
        lines.append((f"best {result.criterion}", f"{result.best_score_:.10g}"))
    width = max(len(key) for key, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")
    return 0
