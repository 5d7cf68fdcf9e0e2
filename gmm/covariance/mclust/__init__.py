"""mclust's covariance models as covariance families, one module per model.

The 14 multivariate models ``Sigma_k = lambda_k D_k A_k D_k'`` of Celeux &
Govaert (1995) as R's mclust names them (volume, shape, orientation: Equal,
Variable or Identity) and the one-feature models 'E' and 'V'. All store (K, D, D)
covariances; :meth:`~gmm.covariance.CovarianceFamily.decompose` gives volume,
shape and orientation as mclust's ``variance`` holds them. See
:mod:`gmm.covariance.mclust.family` for what they share.

>>> from gmm.covariance import get_family
>>> get_family("VEV").n_parameters(n_components=3, n_features=2)  # G + (d-1) + G·d(d-1)/2
7
"""

from __future__ import annotations

from .e import E
from .eee import EEE
from .eei import EEI
from .eev import EEV
from .eii import EII
from .eve import EVE
from .evi import EVI
from .evv import EVV
from .family import MULTIVARIATE, UNIVARIATE, InnerIterationWarning, MclustFamily
from .v import V
from .vee import VEE
from .vei import VEI
from .vev import VEV
from .vii import VII
from .vve import VVE
from .vvi import VVI
from .vvv import VVV

#: One class per mclust model name.
MODELS: dict[str, type[MclustFamily]] = {
    cls.model: cls
    for cls in (EII, VII, EEI, VEI, EVI, VVI, EEE, VEE, EVE, VVE, EEV, VEV, EVV, VVV, E, V)
}

__all__ = ["MODELS", "MULTIVARIATE", "UNIVARIATE", "InnerIterationWarning", "MclustFamily"]
