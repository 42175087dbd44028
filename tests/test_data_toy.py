"""Toy datasets: the metadata each ToyDataset carries must be true of its samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist
from sklearn.metrics import adjusted_rand_score

from latentdist.data import ToyDataset, available_datasets, make_dataset

NAMES = available_datasets()
MIXTURES = {"gaussian_mixture_ring", "gaussian_mixture_grid"}
NATIVE_DIM = {
    "two_points": 1, "gaussian": 2, "gaussian_mixture_ring": 2, "gaussian_mixture_grid": 2, "two_moons": 2,
    "circles": 2, "spiral": 2, "swiss_roll": 3, "s_curve": 3, "helix": 3, "torus": 3, "sphere": 3,
    "disconnected_arcs": 2,
}


def _native_from_latent(ds: ToyDataset) -> np.ndarray:
    """The documented formula x = f(latent, labels), written out independently of the library."""
    z, lab, p = ds.latent, ds.labels, ds.params
    name = ds.name
    if name == "two_points":
        return p["a"] * z
    if name == "gaussian":
        lam, vec = np.linalg.eigh(p["cov"])
        order = np.argsort(lam)[::-1][: z.shape[1]]
        return p["mean"] + z @ (vec[:, order] * np.sqrt(lam[order])).T
    if name == "gaussian_mixture_ring":
        ang = 2 * np.pi * lab / p["k"]
        return p["radius"] * np.stack([np.cos(ang), np.sin(ang)], 1) + p["std"] * z
    if name == "gaussian_mixture_grid":
        i, j = np.divmod(lab, p["side"])
        c = p["spacing"] * (np.stack([i, j], 1) - (p["side"] - 1) / 2)
        return c + p["std"] * z
    t = z[:, 0]
    if name == "two_moons":
        upper = np.stack([np.cos(t), np.sin(t)], 1)
        lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)
        return np.where(lab[:, None] == 0, upper, lower)
    if name == "circles":
        r = np.where(lab == 0, 1.0, p["factor"])[:, None]
        return r * np.stack([np.cos(t), np.sin(t)], 1)
    if name == "spiral":
        return np.stack([t * np.cos(t), t * np.sin(t)], 1)
    if name == "swiss_roll":
        return np.stack([t * np.cos(t), z[:, 1], t * np.sin(t)], 1)
    if name == "s_curve":
        return np.stack([np.sin(t), z[:, 1], np.sign(t) * (np.cos(t) - 1)], 1)
    if name == "helix":
        return np.stack([p["radius"] * np.cos(t), p["radius"] * np.sin(t), p["rise"] * t / (2 * np.pi)], 1)
    if name == "torus":
        ph = z[:, 1]
        ring = p["major"] + p["minor"] * np.cos(ph)
        return np.stack([ring * np.cos(t), ring * np.sin(t), p["minor"] * np.sin(ph)], 1)
    if name == "sphere":
        k = p["k"]
        out = np.ones((len(z), k + 1))
        for i in range(k):
            out[:, i] *= np.cos(z[:, i])
            out[:, i + 1 :] *= np.sin(z[:, i])[:, None]
        return out
    if name == "disconnected_arcs":
        return p["radius"] * np.stack([np.cos(t), np.sin(t)], 1)
    raise AssertionError(f"test has no formula for {name}")


def _to_output(ds: ToyDataset, u: np.ndarray) -> np.ndarray:
    return u if ds.embedding is None else u @ ds.embedding


def _native_normal(ds: ToyDataset) -> np.ndarray:
    """Unit normals to the noise-free support at each sample (native coordinates), from the formulas."""
    z, lab = ds.latent, ds.labels
    t = z[:, 0]
    name = ds.name
    if name in ("circles", "disconnected_arcs"):
        return np.stack([np.cos(t), np.sin(t)], 1)
    if name == "two_moons":
        return np.where(lab[:, None] == 0, 1, -1) * np.stack([np.cos(t), np.sin(t)], 1)
    if name == "sphere":
        return _native_from_latent(ds)
    if name == "torus":
        ph = z[:, 1]
        return np.stack([np.cos(ph) * np.cos(t), np.cos(ph) * np.sin(t), np.sin(ph)], 1)
    if name == "spiral":
        tang = np.stack([np.cos(t) - t * np.sin(t), np.sin(t) + t * np.cos(t)], 1)
        nrm = np.stack([-tang[:, 1], tang[:, 0]], 1)
    elif name == "helix":
        nrm = -np.stack([np.cos(t), np.sin(t), np.zeros_like(t)], 1)
    elif name == "swiss_roll":
        nrm = np.stack([-(np.sin(t) + t * np.cos(t)), np.zeros_like(t), np.cos(t) - t * np.sin(t)], 1)
    elif name == "s_curve":
        nrm = np.stack([np.sign(t) * np.sin(t), np.zeros_like(t), np.cos(t)], 1)
    else:
        raise AssertionError(name)
    return nrm / np.linalg.norm(nrm, axis=1, keepdims=True)


# ----------------------------------------------------------------- metadata is true


@pytest.mark.parametrize("name", NAMES)
def test_latent_parameterizes_noise_free_x(name):
    ds = make_dataset(name, 400, ambient_dim=NATIVE_DIM[name] + 3, seed=3)
    assert ds.x.dtype == np.float64 and ds.x.shape == (400, NATIVE_DIM[name] + 3)
    assert ds.latent.ndim == 2 and ds.latent.shape[0] == 400
    np.testing.assert_allclose(_to_output(ds, _native_from_latent(ds)), ds.x, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_noise_is_added_once_after_embedding(name):
    clean = make_dataset(name, 1500, ambient_dim=6 if name != "sphere" else 7, seed=5)
    noisy = make_dataset(name, 1500, ambient_dim=clean.dim, noise=0.1, seed=5)
    np.testing.assert_array_equal(clean.latent, noisy.latent)
    np.testing.assert_array_equal(clean.embedding, noisy.embedding)
    resid = noisy.x - clean.x
    # 1500 * D draws: the std estimate has relative s.e. ~ 1/sqrt(2 * 9000) < 1%; allow 5 s.e.
    assert abs(resid.std() / 0.1 - 1) < 5 / np.sqrt(2 * resid.size)
    # isotropic: every ambient coordinate, not only the native span, carries the noise
    per_coord = resid.std(axis=0) / 0.1
    assert np.all(np.abs(per_coord - 1) < 5 / np.sqrt(2 * len(resid)))
    assert abs(resid.mean()) < 5 * 0.1 / np.sqrt(resid.size)


@pytest.mark.parametrize("name", NAMES)
def test_isometric_embedding_preserves_distances(name):
    native = make_dataset(name, 200, seed=7)
    assert native.embedding is None and native.dim == NATIVE_DIM[name]
    emb = make_dataset(name, 200, ambient_dim=native.dim + 5, seed=7)
    e = emb.embedding
    assert e.shape == (native.dim, native.dim + 5)
    np.testing.assert_allclose(e @ e.T, np.eye(native.dim), atol=1e-12)
    np.testing.assert_allclose(pdist(emb.x), pdist(native.x), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(emb.x, native.x @ e, atol=1e-12)


def test_sphere_points_have_unit_norm():
    for k in (1, 2, 4):
        ds = make_dataset("sphere", 500, k=k, seed=k)
        assert ds.x.shape == (500, k + 1) and ds.latent.shape == (500, k) and ds.intrinsic_dim == k
        np.testing.assert_allclose(np.linalg.norm(ds.x, axis=1), 1.0, atol=1e-12)
        # uniform on the sphere: mean ~ 0 with s.e. 1/sqrt(n (k+1)) per coordinate
        assert np.all(np.abs(ds.x.mean(0)) < 5 / np.sqrt(500 * (k + 1)))


# Scales below half the gap between components but above the largest within-component gap.
COMPONENT_SCALE = {
    "two_points": 1.0, "gaussian": 2.0, "gaussian_mixture_ring": 0.5, "gaussian_mixture_grid": 0.5,
    "two_moons": 0.2, "circles": 0.2, "spiral": 1.0, "swiss_roll": 3.0, "s_curve": 0.5, "helix": 0.4,
    "torus": 0.8, "sphere": 0.5, "disconnected_arcs": 0.4,
}


@pytest.mark.parametrize("name", NAMES)
def test_component_count_by_single_linkage(name):
    ds = make_dataset(name, 3000, ambient_dim=NATIVE_DIM[name] + 2, seed=11)
    clusters = fcluster(linkage(ds.x, method="single"), t=COMPONENT_SCALE[name], criterion="distance")
    assert len(np.unique(clusters)) == ds.n_components
    if ds.labels is not None:
        assert adjusted_rand_score(ds.labels, clusters) == 1.0
    elif ds.n_components == 1:
        assert ds.labels is None


def test_two_points_and_mixture_metadata():
    ds = make_dataset("two_points", 1000, a=3.0, seed=0)
    assert set(np.unique(ds.x)) == {-3.0, 3.0}
    np.testing.assert_array_equal(ds.modes, [[-3.0], [3.0]])
    assert ds.mode_std == 0.0 and ds.intrinsic_dim == 0
    np.testing.assert_array_equal(ds.x[:, 0] > 0, ds.labels == 1)
    # equal weights: a binomial(1000, 1/2) count is within 5 s.d. of 500
    assert abs((ds.labels == 1).sum() - 500) < 5 * np.sqrt(250)

    ring = make_dataset("gaussian_mixture_ring", 4000, k=6, radius=3.0, std=0.1, ambient_dim=5, seed=2)
    assert ring.modes.shape == (6, 5) and ring.mode_std == 0.1 and ring.n_components == 6
    np.testing.assert_allclose(np.linalg.norm(ring.modes, axis=1), 3.0)
    within = ring.x - ring.modes[ring.labels]
    assert abs(within.std() * np.sqrt(5 / 2) - 0.1) < 0.005  # all variance lives in the 2 native coords
    counts = np.bincount(ring.labels, minlength=6)
    assert np.all(np.abs(counts - 4000 / 6) < 5 * np.sqrt(4000 / 6 * 5 / 6))


def test_gaussian_latent_is_whitened_and_cov_matches():
    cov = np.array([[4.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    ds = make_dataset("gaussian", 20000, cov=cov, mean=[1.0, -2.0, 0.5], seed=4)
    assert ds.intrinsic_dim == 3
    np.testing.assert_allclose(np.cov(ds.latent.T), np.eye(3), atol=0.05)
    np.testing.assert_allclose(np.cov(ds.x.T), cov, atol=0.15)
    np.testing.assert_allclose(ds.x.mean(0), [1.0, -2.0, 0.5], atol=0.05)


def test_singular_gaussian_lives_on_a_subspace():
    ds = make_dataset("gaussian", 300, cov=[4.0, 1.0, 0.0], seed=0)
    assert ds.intrinsic_dim == 2 and ds.latent.shape == (300, 2)
    np.testing.assert_array_equal(ds.x[:, 2], 0.0)
    y = ds.x.copy()
    y[:, 2] = 0.3
    np.testing.assert_allclose(ds.manifold_distance(y), 0.3, atol=1e-12)


# ----------------------------------------------------------------- manifold distance


@pytest.mark.parametrize("name", NAMES)
def test_manifold_distance_zero_on_support_and_offset_off_it(name):
    d_amb = NATIVE_DIM[name] + 3
    ds = make_dataset(name, 300, ambient_dim=d_amb, seed=13)
    if name in MIXTURES:
        np.testing.assert_allclose(ds.manifold_distance(ds.modes), 0.0, atol=1e-12)
        # small std: each point's nearest centre is its own one
        own = ds.mode_std * np.linalg.norm(ds.latent, axis=1)
        np.testing.assert_allclose(ds.manifold_distance(ds.x), own, atol=1e-10)
    else:
        assert ds.manifold_distance(ds.x).max() < 1e-8
    # out of the embedding's span: distance adds in quadrature
    rng = np.random.default_rng(0)
    v = rng.standard_normal((ds.n, d_amb))
    v -= (v @ ds.embedding.T) @ ds.embedding
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    base = ds.manifold_distance(ds.x)
    np.testing.assert_allclose(ds.manifold_distance(ds.x + 0.37 * v), np.hypot(base, 0.37), atol=1e-8)


@pytest.mark.parametrize("name", ["circles", "disconnected_arcs", "two_moons", "sphere", "torus", "spiral",
                                  "helix", "swiss_roll", "s_curve"])
def test_manifold_distance_along_the_normal(name):
    ds = make_dataset(name, 300, seed=17)
    delta = np.random.default_rng(1).uniform(0.01, 0.15, size=(ds.n, 1))
    for sign in (1, -1):
        y = ds.x + sign * delta * _native_normal(ds)
        np.testing.assert_allclose(ds.manifold_distance(y), delta[:, 0], atol=1e-7)


def test_manifold_distance_two_points_exact():
    ds = make_dataset("two_points", 10, a=2.0, ambient_dim=3, seed=0)
    y = np.array([[0.0], [1.5], [-5.0]]) @ ds.embedding
    np.testing.assert_allclose(ds.manifold_distance(y), [2.0, 0.5, 3.0])


def test_manifold_distance_accepts_tensors_and_checks_shape():
    ds = make_dataset("circles", 50, seed=0)
    np.testing.assert_allclose(ds.manifold_distance(torch.tensor(ds.x)), ds.manifold_distance(ds.x))
    with pytest.raises(ValueError, match="y must have 2 features"):
        ds.manifold_distance(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="y contains NaN"):
        ds.manifold_distance(np.full((4, 2), np.nan))


# ----------------------------------------------------------------- seeds


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_data_different_seed_different_data(name):
    a = make_dataset(name, 50, ambient_dim=NATIVE_DIM[name] + 1, noise=0.01, seed=1)
    b = make_dataset(name, 50, ambient_dim=NATIVE_DIM[name] + 1, noise=0.01, seed=1)
    c = make_dataset(name, 50, ambient_dim=NATIVE_DIM[name] + 1, noise=0.01, seed=2)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.latent, b.latent)
    assert not np.array_equal(a.x, c.x)
    assert not np.array_equal(a.embedding, c.embedding)


def test_generator_seed_and_no_global_rng_use():
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (checking it is untouched)
    torch_state = torch.random.get_rng_state().clone()
    a = make_dataset("swiss_roll", 20, seed=np.random.default_rng(5), noise=0.1, ambient_dim=4)
    b = make_dataset("swiss_roll", 20, seed=np.random.default_rng(5), noise=0.1, ambient_dim=4)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert torch.equal(torch.random.get_rng_state(), torch_state)


# ----------------------------------------------------------------- hypothesis over the input space


@given(
    name=st.sampled_from(NAMES),
    n=st.integers(1, 60),
    extra=st.one_of(st.none(), st.integers(0, 4)),
    seed=st.integers(0, 2**31),
)
def test_any_dataset_is_consistent(name, n, extra, seed):
    ambient = None if extra is None else NATIVE_DIM[name] + extra
    ds = make_dataset(name, n, ambient_dim=ambient, seed=seed)
    d = ambient or NATIVE_DIM[name]
    assert ds.x.shape == (n, d) and ds.x.dtype == np.float64 and np.isfinite(ds.x).all()
    assert ds.latent.shape[0] == n and np.isfinite(ds.latent).all()
    assert ds.params["ambient_dim"] == ambient and ds.params["noise"] == 0.0
    np.testing.assert_allclose(_to_output(ds, _native_from_latent(ds)), ds.x, atol=1e-9)
    if ds.labels is not None:
        assert ds.labels.dtype == np.int64 and ds.labels.shape == (n,)
        assert ds.labels.min() >= 0 and ds.labels.max() < len(ds.modes if ds.modes is not None else
                                                                   range(ds.n_components))
    dist = ds.manifold_distance(ds.x)
    if name in MIXTURES:
        assert np.all(dist <= ds.mode_std * np.linalg.norm(ds.latent, axis=1) + 1e-10)
    else:
        assert dist.max() < 1e-8


# ----------------------------------------------------------------- bad input


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match="swiss_roll") as err:
        make_dataset("swissroll", 10)
    assert "name" in str(err.value)
    with pytest.raises(TypeError, match="name"):
        make_dataset(3, 10)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"n": 0}, ValueError, "n must be >= 1"),
        ({"n": 2.5}, TypeError, "n must be an integer"),
        ({"n": True}, TypeError, "n must be an integer"),
        ({"n": 10, "noise": -0.1}, ValueError, "noise must be >= 0"),
        ({"n": 10, "noise": float("nan")}, ValueError, "noise must be finite"),
        ({"n": 10, "noise": "0.1"}, TypeError, "noise must be a real number"),
        ({"n": 10, "ambient_dim": 2}, ValueError, "ambient_dim must be >= the native dimension 3"),
        ({"n": 10, "ambient_dim": 4.0}, TypeError, "ambient_dim must be an integer"),
        ({"n": 10, "radius": 1.0}, ValueError, r"unknown keyword\(s\) \['radius'\]"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        make_dataset("swiss_roll", **kwargs)


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("sphere", {"k": 0}, "k must be >= 1"),
        ("torus", {"major": 1.0, "minor": 2.0}, "major must be > 2.0"),
        ("two_points", {"a": 0.0}, "a must be > 0"),
        ("circles", {"factor": 1.0}, "factor must be < 1"),
        ("disconnected_arcs", {"k": 3, "gap": 0.0}, "gap must be > 0"),
        ("gaussian", {"cov": [[1.0, 2.0], [2.0, 1.0]]}, "positive semi-definite"),
        ("gaussian", {"cov": [[1.0, 0.5], [0.0, 1.0]]}, "cov must be symmetric"),
        ("gaussian", {"cov": np.eye(2), "mean": [0.0, 0.0, 0.0]}, r"mean must have shape \(2,\)"),
        ("gaussian", {"cov": [[1.0, np.inf], [np.inf, 1.0]]}, "cov contains NaN or inf"),
        ("gaussian", {"cov": np.eye(2)[None]}, "cov must be 1-D or 2-D"),
        ("gaussian_mixture_grid", {"side": 0}, "side must be >= 1"),
        ("gaussian_mixture_ring", {"std": -1.0}, "std must be >= 0"),
    ],
)
def test_bad_dataset_keywords(name, params, match):
    with pytest.raises(ValueError, match=match):
        make_dataset(name, 10, **params)


@pytest.mark.parametrize("name, grid", [("spiral", (400001,)), ("swiss_roll", (2500, 800)),
                                        ("s_curve", (2500, 200)), ("helix", (300001,))])
def test_numerical_distance_matches_brute_force_far_from_support(name, grid):
    from scipy.spatial import cKDTree

    ds = make_dataset(name, 10, seed=0)
    lo = np.array([1.5 * np.pi, 0.0]) if name == "swiss_roll" else np.array([-1.5 * np.pi, 0.0])
    hi = np.array([4.5 * np.pi, 21.0]) if name == "swiss_roll" else np.array([1.5 * np.pi, 2.0])
    if name == "spiral":
        lo, hi = np.array([1.5 * np.pi]), np.array([4.5 * np.pi])
    if name == "helix":
        lo, hi = np.array([0.0]), np.array([6 * np.pi])
    axes = [np.linspace(a, b, m) for a, b, m in zip(lo, hi, grid, strict=True)]
    u = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], 1)
    if u.shape[1] == 1:
        u = np.concatenate([u, np.zeros_like(u)], 1)
    fake = ToyDataset(name, ds.x, u, 0, 1, ds.params)
    dense = _native_from_latent(fake)
    # the largest gap between neighbouring grid points bounds the brute-force error
    step = np.linalg.norm(np.diff(dense.reshape(*grid, -1), axis=0), axis=-1).max()
    if len(grid) == 2:
        step = np.hypot(step, np.linalg.norm(np.diff(dense.reshape(*grid, -1), axis=1), axis=-1).max())
    box_lo, box_hi = dense.min(0) - 2, dense.max(0) + 2
    y = np.random.default_rng(3).uniform(box_lo, box_hi, size=(300, dense.shape[1]))
    brute = cKDTree(dense).query(y)[0]
    got = ds.manifold_distance(y)
    # the library never does worse than the dense grid beyond its optimizer tolerance (1e-6) ...
    assert np.all(got <= brute + 1e-6)
    # ... and never reports a distance shorter than any point of the support could give
    assert np.all(got >= brute - step / 2 - 1e-9)
