"""Verdict rules of R1–R4 and R6 as pure functions of made-up summary tables: pass, fail, borderline.

The tables are written by hand, so each test states the numbers its rule must accept or reject; the
rules read nothing but the table.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from latentdist.experiments import r1_distance, r2_complexity, r3_optimal, r4_gan, r6_baselines
from latentdist.experiments._common import (
    Verdict,
    bootstrap_ci,
    claim_task,
    run_claim_tasks,
    unit_config,
)

# ------------------------------------------------------------------------------------------------ R1


def _r1(gaps, oracle_sd=0.03, std=0.01, draws=4, closed=1.0):
    """Anchors whose estimate sits ``gap`` above an oracle of 1.0; tolerance 3 (0.04)/2 + 0.02 = 0.08."""
    return pd.DataFrame([{"part": "A2", "latent": "gaussian", "capacity": float(i + 1), "value": 1.0 + g,
                          "std": std, "oracle": 1.0, "oracle_sd": oracle_sd, "draws": draws,
                          "closed_form": closed, "tol_k": 3.0, "tol_rel": 0.02} for i, g in enumerate(gaps)])


def test_r1_clear_pass_and_clear_fail():
    assert r1_distance.verdict(_r1([0.0, 0.01, -0.02])).status == "reproduced"
    v = r1_distance.verdict(_r1([0.5, -0.4, 0.3]))
    assert v.status == "not reproduced" and v.reasons[0].startswith("0/3")


def test_r1_borderline_at_the_tolerance():
    tol = 3 * (0.03 + 0.01) / np.sqrt(4) + 0.02 * 1.0
    assert r1_distance.verdict(_r1([tol - 1e-9, 0.0])).status == "reproduced"  # |gap| <= tol matches
    v = r1_distance.verdict(_r1([tol + 1e-6, 0.0]))
    assert v.status == "partial" and any("miss" in r for r in v.reasons)      # one miss is reported
    # more draws shrink the tolerance: the same gap now misses
    assert r1_distance.verdict(_r1([0.07, 0.0], draws=100)).status == "partial"


def test_r1_recomputes_the_match_instead_of_trusting_a_column():
    t = _r1([0.5, 0.5]).assign(match=True)
    assert r1_distance.verdict(t).status == "not reproduced"
    with pytest.raises(ValueError, match="oracle"):
        r1_distance.verdict(t.drop(columns="oracle"))


# ------------------------------------------------------------------------------------------------ R2


def _r2(cases):
    rows = []
    for key, params in cases.items():
        for latent, p in params.items():
            rows.append({"dataset": key, "distance": "w2", "steps": 100, "latent": latent, "total_params": p})
    return pd.DataFrame(rows)


def test_r2_clear_pass_and_clear_fail():
    ok = _r2({"ring": {"gaussian": np.inf, "topology": 60.0, "optimal1d": 400.0},
              "spiral": {"gaussian": 354.0, "topology": 106.0, "optimal1d": np.inf}})
    assert r2_complexity.verdict(ok).status == "reproduced"
    bad = _r2({"ring": {"gaussian": 114.0, "topology": np.inf, "optimal1d": np.inf},
               "spiral": {"gaussian": 114.0, "topology": 338.0, "optimal1d": 594.0}})
    assert r2_complexity.verdict(bad).status == "not reproduced"


def test_r2_borderline_equal_parameters_do_not_count_and_latent_params_do():
    tie = _r2({"ring": {"gaussian": 114.0, "topology": 114.0, "optimal1d": np.inf},
               "spiral": {"gaussian": np.inf, "topology": 60.0, "optimal1d": np.inf}})
    v = r2_complexity.verdict(tie)
    assert v.status == "partial" and "1/2" in v.reasons[0]
    # the same widths, but a 256-number latent pays for its particles: total params decide
    counted = _r2({"ring": {"gaussian": 354.0, "optimal1d": 106.0 + 256.0}})
    assert r2_complexity.verdict(counted).status == "not reproduced"
    assert r2_complexity.VERDICT_PARAMS == "total_params"


# ------------------------------------------------------------------------------------------------ R3


def _r3(gaps, n_comp=(8, 8, 8), ids=(1.0, 1.1, 0.9), data_comp=8, data_id=1.0):
    rows = []
    for s, (g, c, i) in enumerate(zip(gaps, n_comp, ids, strict=True)):
        common = {"dataset": "ring", "search_seed": s, "data_n_components": data_comp,
                  "data_intrinsic_dim": data_id}
        rows.append({**common, "latent": "optimal", "value": 0.3, "latent_n_components": c,
                     "latent_intrinsic_dim": i})
        rows.append({**common, "latent": "gaussian_equal_total", "value": 0.3 + g,
                     "latent_n_components": np.nan, "latent_intrinsic_dim": np.nan})
    return pd.DataFrame(rows)


def test_r3_clear_pass_and_clear_fail():
    assert r3_optimal.verdict(_r3([0.20, 0.21, 0.19])).status == "reproduced"
    assert r3_optimal.verdict(_r3([-0.1, -0.2, -0.15])).status == "not reproduced"


def test_r3_borderline_two_standard_errors_and_the_mirror_part():
    # gaps 0, 0.1, 0.2: mean 0.1 < 2 se = 2 * 0.1 / sqrt(3) = 0.115 -> does not beat
    assert r3_optimal.verdict(_r3([0.0, 0.1, 0.2])).status == "not reproduced"
    # gaps 0.1, 0.2, 0.3: mean 0.2 > 0.115 -> beats; 17 components against the data's 8 -> partial
    v = r3_optimal.verdict(_r3([0.1, 0.2, 0.3], n_comp=(17, 18, 16)))
    assert v.status == "partial" and "does not mirror" in v.reasons[0]
    # intrinsic dimension off by more than ID_TOL also fails the mirror part
    off = 1.0 + r3_optimal.ID_TOL + 0.05
    assert r3_optimal.verdict(_r3([0.1, 0.2, 0.3], ids=(off,) * 3)).status == "partial"


# ------------------------------------------------------------------------------------------------ R4


def _r4(gauss, dd, widths=(16, 128)):
    rows = []
    for w in widths:
        for lat, vals in (("gaussian", gauss[w]), ("data-dependent", dd[w])):
            rows += [{"latent": lat, "width": w, "repeat": r, "w2": v, "n_modes_hit": 8.0}
                     for r, v in enumerate(vals)]
    return pd.DataFrame(rows)


def test_r4_clear_pass_and_clear_fail():
    g = {16: [1.5, 1.6, 1.55, 1.52, 1.58], 128: [0.6, 0.62, 0.61, 0.63, 0.6]}
    d = {16: [1.0, 1.1, 1.05, 1.02, 1.08], 128: [0.4, 0.41, 0.42, 0.4, 0.43]}
    assert r4_gan.verdict(_r4(g, d)).status == "reproduced"
    assert r4_gan.verdict(_r4(d, g)).status == "not reproduced"


def test_r4_borderline_few_seeds_and_one_width():
    g2 = {16: [1.5, 1.6], 128: [0.6, 0.62]}
    d2 = {16: [1.0, 1.1], 128: [0.4, 0.41]}
    assert r4_gan.verdict(_r4(g2, d2)).status == "not reproduced"  # 2 seeds: a CI is not evidence
    g = {16: [1.5, 1.6, 1.55, 1.52, 1.58], 128: [0.40, 0.45, 0.38, 0.44, 0.41]}
    d = {16: [1.0, 1.1, 1.05, 1.02, 1.08], 128: [0.42, 0.40, 0.41, 0.43, 0.42]}  # sign flips by seed
    v = r4_gan.verdict(_r4(g, d))
    assert v.status == "partial" and "1/2" in v.reasons[0]


def test_r4_paired_differences_pair_by_seed():
    t = _r4({16: [1.0, 2.0, 3.0]}, {16: [0.9, 1.9, 2.9]}, widths=(16,))
    diff = r4_gan.paired_differences(t)
    # paired, every difference is 0.1: the CI is the point; unpaired the seed spread would swamp it
    assert diff["mean_diff"].iloc[0] == pytest.approx(0.1)
    assert diff["ci_low"].iloc[0] == pytest.approx(0.1) and diff["ci_high"].iloc[0] == pytest.approx(0.1)


# ------------------------------------------------------------------------------------------------ R6


def _r6(values, std=0.01, floor_std=0.01, distances=("w2", "sinkhorn", "mmd")):
    rows = []
    for j, dist in enumerate(distances):
        for latent, v in values.items():
            val = v[j] if isinstance(v, list | tuple) else v
            rows.append({"dataset": "ring", "distance": dist, "latent": latent, "value": val, "std": std,
                         "noise_floor": 0.2, "noise_floor_std": floor_std})
    return pd.DataFrame(rows)


def test_r6_clear_pass_and_clear_fail():
    clear = _r6({"gaussian": 1.0, "topology": 0.5, "optimal": 0.5})
    assert r6_baselines.verdict(clear).status == "reproduced"
    v = r6_baselines.verdict(_r6({"gaussian": 0.5, "topology": 0.9, "optimal": 0.6}))
    assert v.status == "not reproduced"


def test_r6_borderline_gap_equal_to_the_error_and_single_distance():
    # rule floor_sd: the gap must exceed std + std + 2 floor sd = 0.04; exactly 0.04 does not
    edge = 1.0 - 0.04
    v = r6_baselines.verdict(_r6({"gaussian": 1.0, "topology": [edge, 0.5, 0.5], "optimal": 0.5}))
    assert v.status == "partial" and any("topology: below N(0, I) under 2/3" in r for r in v.reasons)
    single = r6_baselines.verdict(_r6({"gaussian": 1.0, "topology": [0.5, 1.0, 1.0], "optimal": 1.0}))
    assert single.status == "partial" and any("only one distance" in r for r in single.reasons)


# ------------------------------------------------------------------------------------------- helpers


def test_verdict_status_is_checked():
    with pytest.raises(ValueError, match="status"):
        Verdict("mostly")
    assert Verdict("partial", ("a",)).to_dict() == {"status": "partial", "reasons": ["a"]}


def test_bootstrap_ci_covers_the_mean_and_rejects_nan():
    mean, lo, hi = bootstrap_ci([0.1, 0.3, 0.2, 0.4, 0.0], seed=1)
    assert mean == pytest.approx(0.2) and lo < mean < hi and lo >= 0.0 and hi <= 0.4
    assert bootstrap_ci([0.1, 0.3, 0.2], seed=1) == bootstrap_ci([0.1, 0.3, 0.2], seed=1)
    with pytest.raises(ValueError, match="finite"):
        bootstrap_ci([0.1, np.nan])


def test_claim_tasks_resume_and_never_reuse_another_config(tmp_path):
    calls = []

    def work(cfg, seed, progress):
        calls.append(seed)
        return {"rows": [{"v": np.float64(0.5) + seed}], "z": np.array([[1.0, 2.0000001]])}

    def run(cfg, version=1, seed=0):
        own = unit_config(cfg)
        return run_claim_tasks(cfg, "R9", version, [claim_task(cfg, "R9", version, "unit-a", work, False,
                                                               cfg=own, seed=seed)], False)[0]

    cfg = {"seed": 0, "unit_dir": str(tmp_path)}
    first, again = run(cfg), run(cfg)
    # stored units are the JSON round trip (arrays as lists rounded to 6 decimals), fresh or read back
    assert first == again == {"rows": [{"v": 0.5}], "z": [[1.0, 2.0]]} and len(calls) == 1
    files = list((tmp_path / "R9").glob("unit-a-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text()) == first
    run({**cfg, "seed": 1})  # another config: recomputed
    run(cfg, version=2)      # another version: recomputed
    assert len(calls) == 3
    run({**cfg, "unit_dir": str(tmp_path / "elsewhere")})  # where units live is not in the key ...
    assert len(calls) == 4  # ... but a folder without the unit computes it
    quick = run({"seed": 0, "unit_dir": None})  # quick mode: no files, the result as computed
    assert len(calls) == 5 and isinstance(quick["z"], np.ndarray)


def test_topology_latents_share_topology_not_coordinates():
    from latentdist.complexity import n_components
    from latentdist.experiments._common import latent_params

    ring = r2_complexity.topology_latent("gaussian_mixture_ring", {"params": {"k": 8}})
    z = ring.sample(2000, seed=0).numpy()
    assert z.shape == (2000, 1)                                     # d = 1, not the data's D = 2
    assert n_components(z, 0.3) == 8                                # 8 components on a line
    assert float((z**2).mean()) == pytest.approx(1.0, rel=0.1)      # moment-normalised
    assert latent_params(ring) == 8 * 2 + 7                         # means, sds and weights are counted
    spiral = r2_complexity.topology_latent("spiral", {})
    assert n_components(spiral.sample(2000, seed=0).numpy(), 0.3) == 1 and latent_params(spiral) == 0
    with pytest.raises(ValueError, match="topology"):
        r2_complexity.topology_latent("moons", {})


def test_equal_total_width_buys_the_latent_parameters():
    from latentdist.experiments._common import generator_params, make_family

    cfg = {"family": "lipschitz", "capacity": 1.0, "width": 16, "depth": 2}
    w = r3_optimal.equal_total_width(cfg, 512, 2, 2)

    def params(width):
        return generator_params(make_family("lipschitz", 1.0, width, 2), 2, 2)

    assert w % 2 == 0 and params(w) >= params(16) + 512 > params(w - 2)


def test_particles_round_trip_and_shape_stats():
    from latentdist.experiments._common import particle_latent, particles_of
    from latentdist.latents import Discrete, normalize

    pts = np.array([[0.0, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0]])
    lat = normalize(Discrete(pts), "moment")
    stored = particles_of(lat)
    back = particle_latent(stored.tolist())
    np.testing.assert_allclose(back.points.numpy(), stored[:, :2])
    np.testing.assert_allclose(float((stored[:, :2] ** 2).sum(1).mean()), 2.0)  # E||z||^2 = d
    stats = r3_optimal.shape_stats(stored[:, :2], 0.3)
    assert stats["n_components"] == 2
    with pytest.raises(TypeError, match="particle"):
        particles_of(normalize(r2_complexity.topology_latent("spiral", {}), "moment"))
