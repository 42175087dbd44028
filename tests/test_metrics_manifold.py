"""Precision/recall and density/coverage: hand-computed configurations, a brute-force reference,
chunking invariance and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from latentdist.metrics import density_coverage, knn_radii, precision_recall

# 1-D integer configuration (exact in float64, so boundary cases "<=" are decided exactly).
REAL = np.array([[0.0], [2.0], [4.0], [6.0]])
FAKE = np.array([[0.0], [1.0], [12.0], [13.0]])


def _brute(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float, float, float]:
    """Reference straight from the papers' definitions with full distance matrices."""
    drr, dff, drf = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    r_real = np.sort(drr, axis=1)[:, k]
    r_fake = np.sort(dff, axis=1)[:, k]
    inside_real_balls = drf <= r_real[:, None]  # (N, M): fake j inside ball of real i
    precision = inside_real_balls.any(0).mean()
    recall = (drf <= r_fake[None, :]).any(1).mean()
    density = inside_real_balls.sum() / (k * len(fake))
    coverage = (drf.min(1) <= r_real).mean()
    return precision, recall, density, coverage


def test_knn_radii_by_hand():
    # k=1: every point of REAL has its nearest neighbour at 2. k=2: the end points reach 4.
    assert knn_radii(REAL, k=1).tolist() == [2.0, 2.0, 2.0, 2.0]
    assert knn_radii(REAL, k=2).tolist() == [4.0, 2.0, 2.0, 4.0]


def test_precision_recall_by_hand():
    # Real balls (k=1) have radius 2: fake 0 and 1 lie inside, 12 and 13 are 6+ away -> precision 2/4.
    # Fake balls (k=1) have radius 1: real 0 (distance 0 to fake 0) and real 2 (distance 1 to fake 1,
    # on the boundary, counted) are inside; real 4 and 6 are 3 and 5 from fake 1 -> recall 2/4.
    assert precision_recall(REAL, FAKE, k=1) == (0.5, 0.5)
    # Swapping the roles swaps the numbers.
    assert precision_recall(FAKE, REAL, k=1) == (0.5, 0.5)


def test_density_coverage_by_hand():
    # k=1, radius 2 around each real point. Fake 0 is inside the balls of real 0 and 2 (2 <= 2); fake 1
    # inside those of real 0 and 2; fake 12, 13 inside none. density = 4 / (k * M) = 4 / 4 = 1.
    # Coverage: nearest fake to real 0, 2, 4, 6 is at 0, 1, 3, 6 -> real 0 and 2 covered -> 0.5.
    assert density_coverage(REAL, FAKE, k=1) == (1.0, 0.5)
    # k=2, radii [4, 2, 2, 4]. Fake 0: inside balls of real 0 (0 <= 4) and 2 (2 <= 2), not 4 (4 > 2)
    # or 6 (6 > 4); fake 1: real 0 (1 <= 4) and 2 (1 <= 2), not 4 (3 > 2) or 6 (5 > 4). density =
    # 4 / (2 * 4) = 0.5. Coverage: real 4 (nearest fake 3 > 2) and 6 (5 > 4) stay uncovered -> 0.5.
    assert density_coverage(REAL, FAKE, k=2) == (0.5, 0.5)


def test_density_rewards_samples_in_dense_regions():
    # 2-D unit grid 0..4 x 0..4, k=4: interior points have four neighbours at distance 1 (radius 1).
    g = np.stack(np.meshgrid(np.arange(5.0), np.arange(5.0)), -1).reshape(-1, 2)
    # A fake point on the centre node lies in its own ball and in its 4 neighbours' balls (distance 1
    # <= radius 1) and in no other (diagonals are sqrt 2 > 1, a radius only edge points exceed) ->
    # 5 balls; density = 5 / (k * 1) = 1.25.
    centre = np.array([[2.0, 2.0]])
    radii = knn_radii(g, k=4).numpy()
    expected_balls = int((np.linalg.norm(g - centre, axis=1) <= radii).sum())
    assert expected_balls == 5  # the hand count above, checked against the radii
    assert density_coverage(g, centre, k=4).density == 5 / 4
    assert density_coverage(g, centre, k=4).coverage == 5 / 25


@given(seed=st.integers(0, 10_000), n=st.integers(2, 40), d=st.integers(1, 6), k=st.integers(1, 4))
def test_identical_sets_have_precision_and_recall_one(seed, n, d, k):
    x = np.random.default_rng(seed).normal(size=(max(n, k + 1), d))
    assert precision_recall(x, x, k=k) == (1.0, 1.0)
    assert density_coverage(x, x, k=k).coverage == 1.0


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(6, 60),
    m=st.integers(6, 60),
    d=st.integers(1, 5),
    k=st.integers(1, 5),
    chunk=st.integers(1, 70),
)
def test_chunked_equals_unchunked_equals_bruteforce(seed, n, m, d, k, chunk):
    rng = np.random.default_rng(seed)
    real, fake = rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 1.5 + 0.3
    whole_pr = precision_recall(real, fake, k=k)
    whole_dc = density_coverage(real, fake, k=k)
    assert precision_recall(real, fake, k=k, chunk_size=chunk) == whole_pr
    assert density_coverage(real, fake, k=k, chunk_size=chunk) == whole_dc
    p, r, dens, cov = _brute(real, fake, k)
    assert whole_pr.precision == pytest.approx(p, abs=1e-12)
    assert whole_pr.recall == pytest.approx(r, abs=1e-12)
    assert whole_dc.density == pytest.approx(dens, abs=1e-12)
    assert whole_dc.coverage == pytest.approx(cov, abs=1e-12)
    expected_radii = np.sort(cdist(real, real), 1)[:, k]
    radii = knn_radii(real, k=k, chunk_size=chunk).numpy()
    np.testing.assert_allclose(radii, expected_radii, rtol=1e-9, atol=1e-9)


def test_disjoint_supports_give_zero():
    rng = np.random.default_rng(0)
    real, fake = rng.uniform(size=(100, 3)), rng.uniform(size=(80, 3)) + 10.0
    assert precision_recall(real, fake) == (0.0, 0.0)
    assert density_coverage(real, fake) == (0.0, 0.0)


def test_density_near_one_and_coverage_high_for_same_distribution():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(2000, 4)), rng.normal(size=(2000, 4))
    dc = density_coverage(real, fake, k=5)
    # Naeem et al.: E[density] = 1 for identical distributions, coverage -> 1 - 2^-k = 0.97.
    assert 0.9 < dc.density < 1.1
    assert dc.coverage > 0.93


def test_torch_inputs_match_numpy():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))
    assert precision_recall(torch.from_numpy(real), torch.from_numpy(fake)) == precision_recall(real, fake)
    assert density_coverage(torch.from_numpy(real), fake) == density_coverage(real, fake)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda x: precision_recall(x, x, k=0), ValueError, "k must be >= 1"),
        (lambda x: precision_recall(x[:3], x, k=3), ValueError, "real needs at least 4"),
        (lambda x: precision_recall(x, x[:2], k=3), ValueError, "fake needs at least 4"),
        (lambda x: density_coverage(x[:5], x, k=5), ValueError, "real needs at least 6"),
        (lambda x: precision_recall(x, x[:, :1]), ValueError, "same number of features"),
        (lambda x: precision_recall(x, np.where(x > 0, np.inf, x)), ValueError, "fake.*NaN or inf"),
        (lambda x: density_coverage(x[:, 0], x), ValueError, "real must be 2-D"),
        (lambda x: density_coverage(x, x, chunk_size=0), ValueError, "chunk_size"),
        (lambda x: density_coverage(x, x, k=2.0), TypeError, "k must be an integer"),
        (lambda x: precision_recall(x, x, device="tpu"), ValueError, "device"),
    ],
)
def test_bad_input_raises(call, exc, match):
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(exc, match=match):
        call(x)
