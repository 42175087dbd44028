"""Experiments reproducing the claims R1–R6 of docs/theory.md §6.

>>> from latentdist.experiments import run_experiment
>>> table = run_experiment("R1", "quick").table  # doctest: +SKIP

``mode='quick'`` writes under ``figures/quick/``; ``mode='full'`` under ``figures/`` and produces
the numbers quoted in ``paper_repro.md``. Results are cached by a hash of the configuration.
"""

from latentdist.experiments.config import CLAIMS, MODES, get_config
from latentdist.experiments.result import ExperimentResult
from latentdist.experiments.runner import experiment_module, run_all, run_experiment

__all__ = ["CLAIMS", "MODES", "get_config", "ExperimentResult", "experiment_module", "run_all",
           "run_experiment"]
