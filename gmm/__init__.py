"""gmm: Gaussian mixture models fitted by EM, written with numpy and scipy."""

from .bayesian import BayesianGaussianMixture
from .covariance import covariance_types, mclust_types
from .densities import mixture_logpdf, mvn_logpdf, mvn_pdf
from .estimator import GaussianMixture
from .grids import evaluate_grid
from .hierarchical import hc
from .images import blend, gaussian_mask
from .imputation import GaussianMixtureImputer
from .initialization import init_methods
from .online import fit_stream
from .persistence import ModelFileError, load, save
from .sampling import sample_mvn
from .selection import GaussianMixtureIC, SweepResult, sweep
from .writing import OutputPathError

__version__ = "0.1.0"

__all__ = [
    "BayesianGaussianMixture",
    "GaussianMixture",
    "GaussianMixtureIC",
    "GaussianMixtureImputer",
    "ModelFileError",
    "OutputPathError",
    "SweepResult",
    "__version__",
    "blend",
    "covariance_types",
    "evaluate_grid",
    "fit_stream",
    "gaussian_mask",
    "hc",
    "init_methods",
    "load",
    "mclust_types",
    "mixture_logpdf",
    "mvn_logpdf",
    "mvn_pdf",
    "sample_mvn",
    "save",
    "sweep",
]
