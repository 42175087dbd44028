"""Trainers (GAN, joint AE, Decoupled AE, VAE, two-stage VAE, RAE, WAE-MMD), latent priors, pipelines.

Every trainer takes data as numpy or torch, networks as families (built with the right dimensions, seeded)
or modules (copied), and ``seed``, ``device``, ``checkpoint_dir``/``resume``, ``callbacks``, ``progress`` and
``log_every``; each returns a small dataclass with the trained modules and a ``history`` DataFrame.

>>> from latentdist.train import train_dae, ConvEncoder, weaken, fit_prior, GenerativePipeline
"""

from latentdist.train.autoencoder import AutoencoderResult, DAEResult, encode, train_autoencoder, train_dae
from latentdist.train.gan import GANResult, train_gan
from latentdist.train.loop import Callback
from latentdist.train.nets import ConvCritic, ConvEncoder, Dropout, MLPCritic, MLPEncoder, add_dropout, weaken
from latentdist.train.pipeline import GenerativePipeline, prior_parameter_count
from latentdist.train.priors import FlowPrior, GMMPrior, KDEPrior, fit_prior
from latentdist.train.rae import train_rae
from latentdist.train.vae import (
    SecondStagePrior,
    TwoStageVAEResult,
    VAEResult,
    train_two_stage_vae,
    train_vae,
)
from latentdist.train.wae import train_wae

__all__ = [
    "train_gan",
    "GANResult",
    "train_autoencoder",
    "train_dae",
    "AutoencoderResult",
    "DAEResult",
    "encode",
    "Callback",
    "MLPEncoder",
    "ConvEncoder",
    "MLPCritic",
    "ConvCritic",
    "Dropout",
    "weaken",
    "add_dropout",
    "GMMPrior",
    "KDEPrior",
    "FlowPrior",
    "fit_prior",
    "GenerativePipeline",
    "prior_parameter_count",
    "train_vae",
    "train_two_stage_vae",
    "VAEResult",
    "TwoStageVAEResult",
    "SecondStagePrior",
    "train_rae",
    "train_wae",
]
