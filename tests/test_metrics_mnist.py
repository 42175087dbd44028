"""The self-trained MNIST feature classifier and the image metrics built on it.

All tests that need the full classifier share one cached copy (``load_or_train``); keeping them in
this one file lets pytest-xdist (``--dist loadfile``) train it at most once per run. The first run on a
fresh machine trains it (about half a minute to a few minutes on 2 CPU cores); later runs load it.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from latentdist.data import load_mnist
from latentdist.metrics import FeatureRecipe, MNISTFeatures, fid, mnist_metrics
from latentdist.metrics.features import _models_dir

TINY = FeatureRecipe(channels=(4, 8), hidden=16, epochs=1, batch_size=32)


@pytest.fixture(scope="module")
def classifier(mnist_root) -> MNISTFeatures:
    return MNISTFeatures.load_or_train(root=mnist_root, progress=False)


@pytest.fixture(scope="module")
def mnist_test(mnist_root) -> tuple[np.ndarray, np.ndarray]:
    return load_mnist("test", root=mnist_root)


@pytest.fixture(scope="module")
def tiny_data(mnist_root) -> tuple[np.ndarray, np.ndarray]:
    return load_mnist("train", root=mnist_root, n=300, seed=5)


def test_classifier_reaches_its_accuracy_target(classifier, mnist_test):
    x, y = mnist_test
    measured = float((classifier.predict(x) == y).mean())
    # The stored accuracy is what training measured; recomputing it here checks the cache is honest.
    assert measured == pytest.approx(classifier.accuracy, abs=2e-4)
    assert measured >= 0.985


def test_features_shape_dtype_and_input_forms(classifier, mnist_test):
    x = mnist_test[0][:50]
    f = classifier.features(x)
    assert f.shape == (50, classifier.recipe.hidden) == (50, 128) and f.dtype == np.float64
    assert (f >= 0).all()  # post-ReLU activations
    np.testing.assert_allclose(classifier.features(torch.from_numpy(x.reshape(50, 784))), f, atol=1e-5)
    np.testing.assert_allclose(classifier.features(x, batch_size=7), f, atol=1e-5)


def test_load_or_train_reuses_the_cache(classifier, mnist_root):
    again = MNISTFeatures.load_or_train(root=mnist_root, progress=False)
    assert again.recipe_hash == classifier.recipe_hash and again.accuracy == classifier.accuracy
    for (k, a), b in zip(classifier.net.state_dict().items(), again.net.state_dict().values(), strict=True):
        assert torch.equal(a.cpu(), b.cpu()), k
    path = _models_dir(mnist_root) / f"mnist_features_{classifier.recipe_hash}.pt"
    assert path.exists()


def test_fid_orders_real_blurred_and_noise(classifier, mnist_test):
    x = mnist_test[0]
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(x))
    a, b = x[perm[:5000]], x[perm[5000:]]
    blurred = np.stack([gaussian_filter(img, sigma=(0, 1.0, 1.0)) for img in b]).astype(np.float32)
    noise = rng.uniform(size=b.shape).astype(np.float32)
    fa, fb = classifier.features(a), classifier.features(b)
    fid_halves = fid(fa, fb)
    fid_blur = fid(fa, classifier.features(blurred))
    fid_noise = fid(fa, classifier.features(noise))
    assert fid_halves < fid_blur < fid_noise
    assert fid_halves < 0.1 * fid_blur
    assert fid_halves < 0.01 * fid_noise


def test_mnist_metrics_on_real_halves_and_on_noise(classifier, mnist_test):
    x = mnist_test[0]
    real, other = x[:2000], x[2000:4000]
    noise = np.random.default_rng(1).uniform(size=other.shape).astype(np.float32)
    good = mnist_metrics(real, other, features=classifier, kid_subsets=20, kid_subset_size=500)
    bad = mnist_metrics(real, noise, features=classifier, kid_subsets=20, kid_subset_size=500)
    assert set(good) >= {"fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"}
    assert good["features"] == classifier.recipe_hash and good["n_real"] == good["n_fake"] == 2000
    # Two samples of one distribution: KID within its spread of 0; k-NN metrics near their ideal values.
    assert abs(good["kid_mean"]) < 3 * good["kid_std"]
    assert good["precision"] > 0.6 and good["recall"] > 0.6 and good["coverage"] > 0.9
    assert 0.7 < good["density"] < 1.3
    # Uniform noise: no real digit lies near a noise feature (recall, coverage ~ 0) and FID/KID explode.
    assert bad["recall"] < 0.05 and bad["coverage"] < 0.05
    assert bad["kid_mean"] > 10 * bad["kid_std"] and bad["fid"] > 20 * good["fid"]
    # Precision is NOT low here: the noise features collapse into a small region next to a few real
    # outliers whose k-NN balls are large, the outlier weakness of precision that density was designed
    # to fix (Naeem et al. 2020): density counts each fake sample by how many balls hold it, divided by k.
    assert bad["density"] < 0.5 * bad["precision"]


def test_same_seed_same_weights_on_a_tiny_recipe(tiny_data):
    x, y = tiny_data
    before = torch.random.get_rng_state()
    a = MNISTFeatures.train(x, y, recipe=TINY, seed=3, progress=False)
    flat = torch.from_numpy(x.reshape(-1, 784).copy())
    b = MNISTFeatures.train(flat, y, recipe=TINY, seed=3, progress=False)
    c = MNISTFeatures.train(x, y, recipe=TINY, seed=4, progress=False)
    assert torch.equal(torch.random.get_rng_state(), before)  # global RNG untouched
    sa, sb, sc = a.net.state_dict(), b.net.state_dict(), c.net.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.recipe_hash == b.recipe_hash != c.recipe_hash
    assert a.accuracy is None


def test_recipe_hash_covers_recipe_and_data(tiny_data):
    x, y = tiny_data
    h = MNISTFeatures.train(x, y, recipe=TINY, seed=0, progress=False).recipe_hash
    other_recipe = FeatureRecipe(channels=(4, 8), hidden=16, epochs=1, batch_size=33)
    assert MNISTFeatures.train(x, y, recipe=other_recipe, seed=0, progress=False).recipe_hash != h
    assert MNISTFeatures.train(x[:299], y[:299], recipe=TINY, seed=0, progress=False).recipe_hash != h


def test_models_dir_prefers_a_writable_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTDIST_CACHE", str(tmp_path / "cache"))
    assert _models_dir(tmp_path) == tmp_path / "models"
    assert _models_dir(tmp_path / "missing") == tmp_path / "cache" / "models"
    read_only = tmp_path / "ro"
    read_only.mkdir()
    os.chmod(read_only, 0o555)
    try:
        # Holds even as root, who bypasses permission checks: a read-only data root (such as a shared
        # MNIST copy) is never written to.
        assert _models_dir(read_only) == tmp_path / "cache" / "models"
        assert not (read_only / "models").exists()
    finally:
        os.chmod(read_only, 0o755)


@pytest.mark.parametrize(
    "images, exc, match",
    [
        (np.full((3, 1, 28, 28), 1.5, dtype=np.float32), ValueError, r"pixel values in \[0, 1\]"),
        (np.zeros((3, 28, 28), dtype=np.float32), ValueError, "images must be 2-D or 4-D"),
        (np.zeros((3, 785), dtype=np.float32), ValueError, r"images must have shape \(n, 1, 28, 28\)"),
        (np.full((3, 784), np.nan, dtype=np.float32), ValueError, "images contains NaN"),
        (np.zeros((3, 3, 28, 28), dtype=np.float32), ValueError, r"images must have shape"),
        ("images", TypeError, "images"),
    ],
)
def test_bad_images_raise(images, exc, match):
    with pytest.raises(exc, match=match):
        MNISTFeatures.train(images, np.zeros(3, dtype=np.int64), recipe=TINY, progress=False)


def test_bad_labels_and_recipe_raise(tiny_data):
    x, y = tiny_data
    with pytest.raises(ValueError, match="labels must have one entry per image"):
        MNISTFeatures.train(x, y[:10], recipe=TINY, progress=False)
    with pytest.raises(ValueError, match="labels must be integers in 0..9"):
        MNISTFeatures.train(x, y + 10, recipe=TINY, progress=False)
    with pytest.raises(TypeError, match="recipe must be a FeatureRecipe"):
        MNISTFeatures.train(x, y, recipe={"epochs": 1}, progress=False)
    with pytest.raises(ValueError, match="lr_schedule"):
        FeatureRecipe(lr_schedule="step")
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        FeatureRecipe(epochs=0)
