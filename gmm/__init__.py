"""gmm: Gaussian mixture models fitted by EM, written with numpy and scipy."""

from .covariance import covariance_types
from .densities import mixture_logpdf, mvn_logpdf, mvn_pdf
from .estimator import GaussianMixture
from .grids import evaluate_grid
from .hc import hc
from .images import blend, gaussian_mask
from .initialization import init_methods
from .persistence import ModelFileError, load, save
from .sampling import sample_mvn
from .selection import GaussianMixtureIC, SweepResult, sweep

__version__ = "0.1.0"

__all__ = [
    "GaussianMixture",
    "GaussianMixtureIC",
    "ModelFileError",
    "SweepResult",
    "__version__",
    "blend",
    "covariance_types",
    "evaluate_grid",
    "gaussian_mask",
    "hc",
    "init_methods",
    "load",
    "mixture_logpdf",
    "mvn_logpdf",
    "mvn_pdf",
    "sample_mvn",
    "save",
    "sweep",
]
