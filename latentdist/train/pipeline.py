"""A sampler x = g(z), z ~ prior, that reports the size of both parts.

Never hide the prior (docs/theory.md §3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from latentdist._seeding import SeedLike, seed_int
from latentdist._validation import check_int, probe_module, to_tensor
from latentdist.latents import Affine, Discrete, Gaussian, Latent, Mixture, Pushforward

__all__ = ["GenerativePipeline", "prior_parameter_count"]


def prior_parameter_count(prior: Any) -> int:
    """Number of fitted numbers a latent sampler carries.

    Fitted priors report their own ``n_parameters`` (GMM: weights, means, covariances; KDE: the stored points
    plus the bandwidth; flow: network weights plus standardisation). Empirical and push-forward latents store
    their points (n·d + n - 1 weights for a general discrete law, n·d for equal weights). Fixed laws such as
    N(0, I) or U[-1, 1]^d have none; a non-standard Gaussian has d + d(d+1)/2.
    """
    if hasattr(prior, "n_parameters"):
        return int(prior.n_parameters)
    if isinstance(prior, Affine):
        return prior_parameter_count(prior.base)
    if isinstance(prior, Pushforward):
        return int(prior.codes.numel())
    if isinstance(prior, Discrete):
        m = prior.points.shape[0]
        equal = bool(torch.allclose(prior.weights, torch.full_like(prior.weights, 1.0 / m)))
        return int(prior.points.numel()) + (0 if equal else m - 1)
    if isinstance(prior, Mixture):
        return sum(prior_parameter_count(c) for c in prior.components) + len(prior.components) - 1
    if isinstance(prior, Gaussian):
        d = prior.dim
        identity = torch.eye(d, dtype=prior.cov.dtype)
        standard = bool((prior.mean == 0).all() and torch.equal(prior.cov, identity))
        return 0 if standard else d + d * (d + 1) // 2
    return 0


class GenerativePipeline:
    """Generate with ``decoder(prior.sample(n))``.

    Parameters
    ----------
    prior : Latent or object with ``.dim`` and ``.sample(n, seed)``
        A fitted prior (:class:`~latentdist.train.priors.GMMPrior` ...) or any latent.
    decoder : nn.Module
        Maps (n, prior.dim) to samples.
    output_shape : sequence of int, optional
        Per-sample shape of the output (e.g. (1, 28, 28)); default: whatever the decoder returns.
    batch_size : int
        Decoding batch size.

    Examples
    --------
    >>> from latentdist.latents import Gaussian
    >>> pipe = GenerativePipeline(Gaussian(2), torch.nn.Linear(2, 3))
    >>> pipe.sample(5, seed=0).shape, pipe.param_counts()
    (torch.Size([5, 3]), {'prior': 0, 'decoder': 9, 'total': 9})
    """

    def __init__(self, prior: Latent | Any, decoder: nn.Module, *, output_shape: Sequence[int] | None = None,
                 batch_size: int = 1024):
        if not (hasattr(prior, "dim") and callable(getattr(prior, "sample", None))):
            raise TypeError(f"prior must have .dim and .sample(n, seed), got {type(prior).__name__}")
        if not isinstance(decoder, nn.Module):
            raise TypeError(f"decoder must be a torch.nn.Module, got {type(decoder).__name__}")
        if isinstance(prior.dim, int):  # a decoder for another latent size fails here, not at sampling
            param = next(decoder.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
            probe_module(decoder, torch.zeros(2, prior.dim, device=device), "decoder")
        self.prior = prior
        self.decoder = decoder
        self.output_shape = None if output_shape is None else tuple(int(s) for s in output_shape)
        self.batch_size = check_int(batch_size, "batch_size", low=1)

    def sample(self, n: int, seed: SeedLike = 0) -> torch.Tensor:
        """``n`` samples as a float32 CPU tensor; same seed, same samples. The decoder runs in eval mode."""
        n = check_int(n, "n", low=1)
        z = to_tensor(self.prior.sample(n, seed_int(seed)), dtype=torch.float32).detach()
        return self.decode(z)

    __call__ = sample

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode latent points (n, dim) in batches, without gradients, in eval mode."""
        param = next(self.decoder.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        was_training = self.decoder.training
        self.decoder.eval()
        try:
            with torch.no_grad():
                out = [self.decoder(z[i:i + self.batch_size].to(device)).cpu()
                       for i in range(0, z.shape[0], self.batch_size)]
        finally:
            self.decoder.train(was_training)
        x = torch.cat(out)
        return x.reshape(x.shape[0], *self.output_shape) if self.output_shape else x

    def param_counts(self) -> dict[str, int]:
        """{'prior': fitted numbers in the prior, 'decoder': decoder parameters, 'total': both}."""
        prior = prior_parameter_count(self.prior)
        decoder = sum(p.numel() for p in self.decoder.parameters())
        return {"prior": prior, "decoder": decoder, "total": prior + decoder}

    def __repr__(self) -> str:
        c = self.param_counts()
        return (f"GenerativePipeline(prior={self.prior!r}, prior_params={c['prior']}, "
                f"decoder_params={c['decoder']})")
