"""gmm: Gaussian mixture models fitted by EM, written with numpy and scipy."""

from .covariance import covariance_types
from .estimator import GaussianMixture
from .initialization import init_methods

__version__ = "0.1.0"

__all__ = ["GaussianMixture", "covariance_types", "init_methods", "__version__"]
