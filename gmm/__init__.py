"""gmm: Gaussian mixture models fitted by EM, written with numpy and scipy."""

from .covariance import covariance_types
from .densities import mixture_logpdf, mvn_logpdf, mvn_pdf
from .estimator import GaussianMixture
from .grids import evaluate_grid
from .images import blend, gaussian_mask
from .initialization import init_methods
from .sampling import sample_mvn

__version__ = "0.1.0"

__all__ = [
    "GaussianMixture",
    "__version__",
    "blend",
    "covariance_types",
    "evaluate_grid",
    "gaussian_mask",
    "init_methods",
    "mixture_logpdf",
    "mvn_logpdf",
    "mvn_pdf",
    "sample_mvn",
]
