"""Complexity of generators and of data (docs/theory.md §3).

Generator proxies, for any ``torch.nn.Module`` g: R^d -> R^D (outputs flattened):

* :func:`lipschitz_upper` / :func:`lipschitz_lower`: Lip(g) bracketed by the product of layer norms
  and the largest local Jacobian spectral norm;
* :func:`jacobian_spectrum`: local singular values, Frobenius norm, numerical rank, local dimension;
* :func:`path_length`: mean stretch of short latent steps;
* :func:`linear_regions`: linear pieces crossed along random lines (piecewise-linear nets);
* :func:`param_count`, and :func:`complexity_report` gathering all of them in one row.

Data proxies: :func:`intrinsic_dimension` and :func:`n_components`. Training-time logging:
:class:`ComplexityCallback`.
"""

from latentdist.complexity.callback import CALLBACK_PROXIES, DEFAULT_PROXIES, ComplexityCallback
from latentdist.complexity.data_side import ID_METHODS, intrinsic_dimension, n_components
from latentdist.complexity.jacobian import JacobianSpectrum, jacobian_spectrum
from latentdist.complexity.lipschitz import LayerFactor, lipschitz_lower, lipschitz_upper
from latentdist.complexity.paths import LinearRegions, linear_regions, path_length
from latentdist.complexity.report import complexity_report, param_count

__all__ = [
    "lipschitz_upper",
    "lipschitz_lower",
    "LayerFactor",
    "jacobian_spectrum",
    "JacobianSpectrum",
    "path_length",
    "linear_regions",
    "LinearRegions",
    "param_count",
    "complexity_report",
    "intrinsic_dimension",
    "n_components",
    "ID_METHODS",
    "ComplexityCallback",
    "CALLBACK_PROXIES",
    "DEFAULT_PROXIES",
]
