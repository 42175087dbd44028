"""complexity_profile (P2, disconnected data), eps_complexity and plot_profile."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from latentdist.data import make_dataset
from latentdist.estimator import FLOOR_RULE_K
from latentdist.generators import MLP, LipschitzMLP
from latentdist.latents import Gaussian, Mixture, Uniform, normalize
from latentdist.profile import PROFILE_COLUMNS, complexity_profile, eps_complexity, plot_profile


def ring_mixture_latent(k: int = 8) -> Mixture:
    """A data-shaped latent for the k-mode ring: k small Gaussians on the unit circle."""
    angles = 2 * np.pi * np.arange(k) / k
    return Mixture([Gaussian(2, mean=[np.cos(a), np.sin(a)], cov=np.eye(2) * 0.0025) for a in angles])


def test_p2_profile_non_increasing_in_width():
    data = make_dataset("two_moons", 1000, seed=0, noise=0.05)
    prof = complexity_profile({"gauss": Gaussian(2)}, data, MLP(depth=2).at([1, 4, 32]), "w2", steps=300,
                              n_floor=4, progress=False, seed=0)
    assert list(prof.columns) == [*PROFILE_COLUMNS, "selected_restart"] and len(prof) == 3
    v, s = prof["value"].to_numpy(), prof["std"].to_numpy()
    for i in range(len(v) - 1):
        assert v[i + 1] <= v[i] + 2 * max(s[i], s[i + 1]), prof
    assert v[-1] < v[0]  # width 32 is strictly better than width 1 on two moons
    assert prof["noise_floor"].nunique() == 1  # one split, one floor for the whole profile


def _ring_profile(capacities, steps):
    data = make_dataset("gaussian_mixture_ring", 1000, seed=0)
    latents = {"gaussian": normalize(Gaussian(2), "moment"),
               "mixture": normalize(ring_mixture_latent(), "moment")}
    return complexity_profile(latents, data, LipschitzMLP(1.0, width=16, depth=2).at(capacities), "w2",
                              steps=steps, holdout=0.3, n_floor=5, progress=False, seed=0)


def _assert_mixture_cheaper(prof):
    # eps = the "indistinguishable from the floor" level of LatentDistanceResult.
    eps = float(prof["noise_floor"].iloc[0] + FLOOR_RULE_K * prof["noise_floor_std"].iloc[0])
    c = eps_complexity(prof, eps)
    assert c["mixture"] < c["gaussian"], (c, prof)


def test_disconnected_ring_mixture_latent_has_lower_eps_complexity():
    """R2: at the same (moment) normalisation the data-shaped latent reaches the floor at a smaller
    Lipschitz bound than N(0, I), which has to stretch across the gaps between the 8 modes."""
    _assert_mixture_cheaper(_ring_profile([1.0, 2.0, 4.0], steps=250))


@pytest.mark.slow
def test_disconnected_ring_full_profile():
    _assert_mixture_cheaper(_ring_profile([0.5, 1.0, 2.0, 4.0, 8.0], steps=500))


def test_profile_same_seed_same_numbers_and_matches_single_estimate():
    from latentdist.estimator import latent_data_distance

    x = np.random.default_rng(0).normal(size=(300, 2))
    kw = dict(steps=20, n_floor=3, progress=False, seed=4)
    fams = MLP(depth=1).at([2, 8])
    a = complexity_profile([Gaussian(2), Uniform(2)], x, fams, **kw)
    b = complexity_profile([Gaussian(2), Uniform(2)], x, fams, **kw)
    pd.testing.assert_frame_equal(a.drop(columns="fit_time"), b.drop(columns="fit_time"))
    assert list(a["latent"]) == ["gaussian", "gaussian", "uniform", "uniform"]
    # The batched profile row equals the stand-alone estimate with the same seed (up to float round-off).
    single = latent_data_distance(Gaussian(2), x, fams[1], **kw)
    assert abs(single.value - a["value"].iloc[1]) < 1e-4


def test_profile_bad_input():
    x = np.random.default_rng(0).normal(size=(100, 2))
    with pytest.raises(TypeError, match="latents"):
        complexity_profile("gaussian", x, MLP(), steps=2, progress=False)
    with pytest.raises(TypeError, match=r"latents\['a'\]"):
        complexity_profile({"a": 3}, x, MLP(), steps=2, progress=False)
    with pytest.raises(TypeError, match=r"families\[1\]"):
        complexity_profile(Gaussian(2), x, [MLP(), "wide"], steps=2, progress=False)
    with pytest.raises(ValueError, match="families"):
        complexity_profile(Gaussian(2), x, [], steps=2, progress=False)


# --------------------------------------------------------------------------------------- eps_complexity


@given(values=st.lists(st.floats(0, 2), min_size=1, max_size=6), eps=st.floats(0.01, 2.5))
def test_eps_complexity_is_the_smallest_capacity_reaching_eps(values, eps):
    caps = np.arange(1, len(values) + 1) * 2.0
    rng = np.random.default_rng(len(values))
    order = rng.permutation(len(values))  # row order must not matter
    prof = pd.DataFrame({"latent": "z", "capacity": caps[order], "value": np.asarray(values)[order]})
    got = eps_complexity(prof, eps)["z"]
    reaching = [c for c, v in zip(caps, values, strict=True) if v <= eps]
    assert got == (min(reaching) if reaching else np.inf)


def test_eps_complexity_per_latent_and_bad_input():
    prof = pd.DataFrame({"latent": ["a", "a", "b", "b"], "capacity": [1, 4, 1, 4],
                         "value": [0.9, 0.2, 0.1, 0.05]})
    out = eps_complexity(prof, 0.3)
    assert out.to_dict() == {"a": 4.0, "b": 1.0}
    with pytest.raises(ValueError, match="eps"):
        eps_complexity(prof, 0.0)
    with pytest.raises(ValueError, match="missing columns"):
        eps_complexity(prof.drop(columns="value"), 0.3)
    with pytest.raises(TypeError, match="profile"):
        eps_complexity([1, 2], 0.3)


def test_plot_profile_draws_curves_floor_and_eps():
    import matplotlib

    matplotlib.use("Agg")
    prof = pd.DataFrame({"latent": ["a", "a", "b", "b"], "capacity": [1, 4, 1, 4],
                         "value": [0.9, 0.2, 0.5, 0.1], "std": [0.1, 0.05, np.nan, 0.02],
                         "noise_floor": 0.05, "noise_floor_std": 0.01})
    fig = plot_profile(prof, eps=0.3)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"a", "b", "ε = 0.3"} <= set(labels) and any("noise floor" in t for t in labels)
    assert ax.get_xscale() == "log"
    import matplotlib.pyplot as plt

    plt.close(fig)
