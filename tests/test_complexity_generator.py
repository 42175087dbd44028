"""Generator proxies against truths: exact Lipschitz constants, known kinks, invariances, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from latentdist.complexity import (
    ComplexityCallback,
    complexity_report,
    jacobian_spectrum,
    linear_regions,
    lipschitz_lower,
    lipschitz_upper,
    param_count,
    path_length,
)


def _seeded(fn, seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return fn()


def _mlp(d, widths, out, act, seed):
    def build():
        layers, k = [], d
        for w in widths:
            layers += [nn.Linear(k, w), act()]
            k = w
        layers.append(nn.Linear(k, out))
        return nn.Sequential(*layers)

    return _seeded(build, seed)


def _points(n, d, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- Lipschitz: exact truth and ordering


@given(d=st.integers(1, 6), D=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_linear_layer_upper_equals_lower_equals_sigma_max(d, D, seed):
    g = _seeded(lambda: nn.Linear(d, D), seed)
    sigma = float(torch.linalg.svdvals(g.weight.detach().double())[0])
    assert lipschitz_upper(g) == pytest.approx(sigma, rel=1e-4)
    assert lipschitz_lower(g, _points(5, d, seed)) == pytest.approx(sigma, rel=1e-4)


@given(
    d=st.integers(1, 4),
    widths=st.lists(st.integers(1, 8), min_size=0, max_size=3),
    act=st.sampled_from([nn.ReLU, nn.Tanh, nn.LeakyReLU, nn.GELU, nn.ELU, nn.Sigmoid]),
    seed=st.integers(0, 10_000),
)
def test_lower_never_exceeds_upper_mlp(d, widths, act, seed):
    g = _mlp(d, widths, 3, act, seed)
    low = lipschitz_lower(g, _points(32, d, seed), refine_steps=3)
    assert low <= lipschitz_upper(g) * (1 + 1e-5)


@settings(max_examples=10)
@given(c=st.integers(1, 3), size=st.integers(4, 7), seed=st.integers(0, 10_000))
def test_lower_never_exceeds_upper_conv(c, size, seed):
    def build():
        return nn.Sequential(
            nn.Linear(3, c * size * size),
            nn.ReLU(),
            nn.Unflatten(1, (c, size, size)),
            nn.ConvTranspose2d(c, 2, 4, stride=2, padding=1),
            nn.BatchNorm2d(2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2, 1, 3, padding=1),
        )

    g = _seeded(build, seed)
    g.eval()
    with torch.no_grad():  # non-trivial running statistics
        g[4].running_var.uniform_(0.5, 2.0)
    assert lipschitz_lower(g, _points(16, 3, seed)) <= lipschitz_upper(g) * (1 + 1e-5)


def test_conv_factor_is_the_exact_operator_norm():
    conv = _seeded(lambda: nn.Conv2d(2, 3, 3, padding=1, stride=2), 0)
    g = nn.Sequential(nn.Unflatten(1, (2, 6, 6)), conv)
    _, factors = lipschitz_upper(g, in_shape=(72,), details=True)
    # the operator x -> conv(x) - bias on 2x6x6 inputs, as a dense matrix
    eye = torch.eye(72).reshape(72, 2, 6, 6)
    with torch.no_grad():
        A = (conv(eye) - conv(torch.zeros(1, 2, 6, 6))).reshape(72, -1).double()
    assert factors[1].factor == pytest.approx(float(torch.linalg.svdvals(A)[0]), rel=1e-6)
    # and the bound is attained by a linear conv net: lower (full Krylov) equals it
    assert lipschitz_lower(g, _points(4, 72), n_iter=72) == pytest.approx(factors[1].factor, rel=1e-4)


def test_large_conv_uses_lanczos_and_agrees_with_power_iteration():
    convt = _seeded(lambda: nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), 0)
    g = nn.Sequential(nn.Unflatten(1, (64, 7, 7)), convt)
    up = lipschitz_upper(g, in_shape=(64 * 49,))
    x = torch.randn(1, 64, 7, 7, generator=torch.Generator().manual_seed(1))
    b = convt(torch.zeros_like(x)).detach()
    for _ in range(300):  # plain power iteration on A^T A
        x = x.detach().requires_grad_(True)
        y = convt(x) - b
        (x,) = torch.autograd.grad(y, x, y.detach())
        x = x / x.norm()
    with torch.no_grad():
        est = float((convt(x) - b).norm())
    assert est <= up * (1 + 1e-5)
    assert est >= up * (1 - 1e-3)


def test_lipschitz_mlp_bound_at_most_L():
    import latentdist.generators as gens
    for L in (0.5, 2.0, 7.0):
        g = gens.LipschitzMLP(lipschitz=L, width=16, depth=3).build(3, 2, seed=1)
        assert lipschitz_upper(g) <= L * (1 + 1e-5)
        walked = lipschitz_upper(g, in_shape=(3,), use_declared=False, unknown="probe")
        assert walked <= L * (1 + 1e-5)
        assert lipschitz_lower(g, _points(64, 3), refine_steps=2) <= walked * (1 + 1e-5)


def test_spectral_norm_parametrization_reads_effective_weight():
    lin = _seeded(lambda: nn.Linear(4, 6), 3)
    g = nn.Sequential(nn.utils.parametrizations.spectral_norm(lin, n_power_iterations=50))
    g.train()
    for _ in range(3):  # converge u, v in training mode
        g(_points(2, 4))
    assert lipschitz_upper(g) == pytest.approx(1.0, rel=1e-4)
    assert g.training  # mode restored


def test_batchnorm_factor():
    bn = nn.BatchNorm1d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, -4.0, 0.5]))
        bn.running_var.copy_(torch.tensor([1.0, 4.0, 0.25]))
    g = nn.Sequential(nn.Linear(2, 3, bias=False), bn)
    with torch.no_grad():
        g[0].weight.copy_(torch.eye(3, 2))
    assert lipschitz_upper(g) == pytest.approx(4.0 / math.sqrt(4.0 + bn.eps), rel=1e-6)


def test_residual_and_functional_ops_are_refused_unless_declared():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Linear(3, 3)

        def forward(self, x):
            return x + self.f(x)

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Linear(3, 3)

        def forward(self, x):
            return torch.tanh(self.f(x)) * 3

    for g in (Residual(), Functional(), nn.Sequential(nn.Linear(3, 3), Residual())):
        with pytest.raises(ValueError, match="not a plain chain"):
            lipschitz_upper(g)

    class Declared(Residual):
        def lipschitz_bound(self):
            return 1.0 + float(torch.linalg.matrix_norm(self.f.weight, 2))

    g = Declared()
    assert lipschitz_upper(g) == pytest.approx(g.lipschitz_bound())
    assert lipschitz_lower(g, _points(16, 3)) <= lipschitz_upper(g) * (1 + 1e-6)


def test_unknown_layer_policies():
    class Double(nn.Module):
        def forward(self, x):
            return 2 * x

    class Square(nn.Module):
        def forward(self, x):
            return x * x

    g = nn.Sequential(nn.Linear(2, 2), Double())
    with pytest.raises(ValueError, match="Double"):
        lipschitz_upper(g)
    assert lipschitz_upper(g, unknown="probe") == pytest.approx(2 * lipschitz_upper(g[:1]), rel=1e-5)
    with pytest.warns(UserWarning, match="not a guaranteed bound"):
        assert lipschitz_upper(g, unknown="ignore") == pytest.approx(lipschitz_upper(g[:1]))
    with pytest.raises(ValueError, match="Square"):
        lipschitz_upper(nn.Sequential(nn.Linear(2, 2), Square()), unknown="probe")
    with pytest.raises(ValueError, match="unknown"):
        lipschitz_upper(g, unknown="guess")


def test_refinement_only_raises_the_lower_bound():
    g = _mlp(2, [16, 16], 2, nn.Tanh, 5)
    z = _points(8, 2)
    base = lipschitz_lower(g, z)
    refined, zstar = lipschitz_lower(g, z, refine_steps=15, return_argmax=True)
    assert refined >= base
    assert zstar.shape == (2,)
    assert refined <= lipschitz_upper(g) * (1 + 1e-5)


# ---------------------------------------------------------------- Jacobian spectrum


def test_jacobian_spectrum_of_linear_map_is_exact():
    g = _seeded(lambda: nn.Linear(3, 5), 0)
    s = torch.linalg.svdvals(g.weight.detach().double()).numpy()
    spec = jacobian_spectrum(g, _points(4, 3), k=2)
    assert spec.singular_values.shape == (4, 2)
    np.testing.assert_allclose(spec.singular_values, np.tile(s[:2], (4, 1)), rtol=1e-5)
    assert spec.frobenius == pytest.approx(float(np.sqrt((s**2).sum())), rel=1e-5)
    assert spec.numerical_rank == 3 and spec.local_dim == 3


def test_jacobian_rank_and_local_dim_see_a_collapsed_direction():
    g = nn.Linear(3, 4, bias=False)
    with torch.no_grad():
        g.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1e-3], [0, 0, 0]]))
    spec = jacobian_spectrum(g, _points(3, 3), local_dim_threshold=1e-2)
    assert spec.numerical_rank == 3  # 1e-3 is far above float32 rank tolerance
    assert spec.local_dim == 2  # but below 1% of the top singular value


def test_jacobian_reverse_mode_matches_forward_mode():
    g = _mlp(6, [8], 2, nn.Tanh, 1)  # d > D: reverse mode
    z = _points(5, 6)
    spec = jacobian_spectrum(g, z)
    J = torch.stack([torch.autograd.functional.jacobian(lambda x: g(x[None])[0], zi) for zi in z])
    np.testing.assert_allclose(spec.singular_values, torch.linalg.svdvals(J.double()).numpy(), rtol=1e-5)


# ---------------------------------------------------------------- path length and linear regions


def test_path_length_of_linear_map_is_mean_directional_stretch():
    g = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        g.weight.copy_(torch.diag(torch.tensor([3.0, 1.0])))
    pl = path_length(g, _points(4000, 2), seed=1)
    # E ||A u|| for u uniform on the circle: (1/2pi) ∫ sqrt(9 cos^2 + sin^2)
    t = np.linspace(0, 2 * np.pi, 200_001)[:-1]
    truth = np.mean(np.sqrt(9 * np.cos(t) ** 2 + np.sin(t) ** 2))
    assert pl == pytest.approx(truth, rel=0.02)  # Monte Carlo over 4000 directions: sd ~ 0.6%


def _hinges(knots, slopes):
    """g(t) = sum_k a_k relu(t - c_k): 1 + (number of knots in range) linear pieces."""
    k = len(knots)
    g = nn.Sequential(nn.Linear(1, k), nn.ReLU(), nn.Linear(k, 1, bias=False))
    with torch.no_grad():
        g[0].weight.fill_(1.0)
        g[0].bias.copy_(-torch.tensor(knots, dtype=torch.float32))
        g[2].weight.copy_(torch.tensor([slopes], dtype=torch.float32))
    return g


@given(
    knots=st.lists(st.floats(-1.9, 1.9), min_size=1, max_size=12, unique=True),
    seed=st.integers(0, 1000),
)
def test_linear_regions_exact_on_hinge_sums(knots, seed):
    knots = sorted(knots)
    length, resolution = 4.0, 512
    if len(knots) > 1 and np.diff(knots).min() <= 2 * length / resolution:
        knots = knots[:1]  # the guarantee needs knots further apart than the grid step
    rng = np.random.default_rng(seed)
    slopes = (rng.choice([-1, 1], len(knots)) * rng.uniform(0.5, 2, len(knots))).tolist()
    res = linear_regions(_hinges(knots, slopes), n_lines=3, length=length, resolution=resolution,
                         seed=seed, progress=False)
    assert res.per_line.tolist() == [len(knots) + 1] * 3
    grid_only = linear_regions(_hinges(knots, slopes), n_lines=1, length=length, resolution=resolution,
                               n_bisect=0, progress=False)
    assert grid_only.per_line.tolist() == [len(knots) + 1]
    for b in res.breakpoints:  # d = 1: lines run along ±t, so breakpoints are ±knots
        np.testing.assert_allclose(np.sort(np.abs(b)), np.sort(np.abs(knots)), atol=1e-5)


def test_linear_regions_bisection_finds_knots_inside_one_cell():
    res = linear_regions(_hinges([0.3, 0.301], [1.0, -1.0]), n_lines=1, length=4.0, resolution=8,
                         progress=False)
    assert res.per_line.tolist() == [3]


def test_linear_regions_refuses_smooth_networks():
    with pytest.raises(ValueError, match="smooth activations"):
        linear_regions(_mlp(2, [4], 1, nn.Tanh, 0), progress=False)

    class Hidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(2, 8), nn.Linear(8, 1)

        def forward(self, x):
            return self.b(torch.sin(3 * self.a(x)))

    with pytest.raises(ValueError, match="not affine"):
        linear_regions(_seeded(Hidden, 0), progress=False)


def _brute_force_kinks(g, length, n=200_001):
    """Kinks of a 1-D -> 1-D piecewise-linear g on [-length/2, length/2]: where the slope of a fine
    float64 grid changes (a kink inside a cell changes two consecutive slopes, so runs are grouped)."""
    t = torch.linspace(-length / 2, length / 2, n, dtype=torch.float64)[:, None]
    with torch.no_grad():
        y = g.double()(t).squeeze(1).numpy()
    slope = np.diff(y) / np.diff(t[:, 0].numpy())
    idx = np.flatnonzero(np.abs(np.diff(slope)) > 1e-6 * max(1.0, np.abs(slope).max()))
    groups = np.split(idx, np.flatnonzero(np.diff(idx) > 2) + 1) if idx.size else []
    return np.array([t[int(grp.mean()) + 1, 0].item() for grp in groups])


def _assert_regions_match_brute_force(g, res):
    """Every line through the origin of R^1 crosses the kinks of g at ±t: counts and places must agree."""
    kinks = np.sort(np.abs(_brute_force_kinks(g, res.length)))
    assert res.per_line.tolist() == [len(kinks) + 1] * len(res.per_line)
    for b in res.breakpoints:
        np.testing.assert_allclose(np.sort(np.abs(b)), kinks, atol=5 * res.length / 200_000)


def _maxmin_with_kinks(seed):
    """A MaxMin (GroupSort) network R -> R; the old test (2-D input, zero biases) only checked >= 1 piece."""
    import latentdist.generators as gens

    g = gens.LipschitzMLP(lipschitz=3.0, width=8, depth=2).build(1, 1, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # zero init biases put every kink at 0; random ones spread 4-6 kinks over the line
        for name, p in g.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-1.0, 1.0, generator=gen)
    return g


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_regions_maxmin_network(seed):
    g = _maxmin_with_kinks(seed)
    res = linear_regions(g, n_lines=4, resolution=512, progress=False)
    assert res.per_line.min() >= 5  # the case is not trivial
    _assert_regions_match_brute_force(g, res)


def test_maxmin_region_check_fails_on_a_wrong_count_or_place():
    import dataclasses

    g = _maxmin_with_kinks(0)
    res = linear_regions(g, n_lines=2, resolution=512, progress=False)
    for broken in (dataclasses.replace(res, per_line=res.per_line + 1),
                   dataclasses.replace(res, breakpoints=[b + 0.01 for b in res.breakpoints])):
        with pytest.raises(AssertionError):
            _assert_regions_match_brute_force(g, broken)


# ---------------------------------------------------------------- invariances


def _proxies(g, z):
    row = complexity_report(g, z, regions={"n_lines": 2, "resolution": 128, "n_bisect": 10})
    return row


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh])
def test_output_permutation_and_scaling(act):
    g = _mlp(3, [12, 12], 5, act, 2)
    z = _points(64, 3)
    perm = torch.tensor([3, 0, 4, 1, 2])
    gp = _seeded(lambda: nn.Sequential(*g, nn.Linear(5, 5, bias=False)), 0)
    gs = _seeded(lambda: nn.Sequential(*g, nn.Linear(5, 5, bias=False)), 0)
    with torch.no_grad():
        gp[-1].weight.copy_(torch.eye(5)[perm])
        gs[-1].weight.copy_(2.5 * torch.eye(5))
    with pytest.warns(UserWarning) if act is nn.Tanh else _nullcontext():
        base = _proxies(g, z)
    with pytest.warns(UserWarning) if act is nn.Tanh else _nullcontext():
        perm_row = _proxies(gp, z)
    with pytest.warns(UserWarning) if act is nn.Tanh else _nullcontext():
        scaled = _proxies(gs, z)
    for key in ("lipschitz_upper", "lipschitz_lower", "jacobian_frobenius", "path_length",
                "numerical_rank", "local_dim", "linear_regions"):
        if math.isnan(base[key]):
            assert math.isnan(perm_row[key])
            continue
        assert perm_row[key] == pytest.approx(base[key], rel=1e-5), key
    for key in ("lipschitz_upper", "lipschitz_lower", "jacobian_frobenius", "path_length"):
        assert scaled[key] == pytest.approx(2.5 * base[key], rel=1e-5), key


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------- report, callback, determinism


def test_report_row_and_frame():
    g = _mlp(2, [8], 3, nn.ReLU, 0)
    row = complexity_report(g, _points(32, 2), timings=True)
    assert row["params"] == param_count(g) == 2 * 8 + 8 + 8 * 3 + 3
    assert row["lipschitz_lower"] <= row["lipschitz_upper"]
    assert row["in_dim"] == 2 and row["out_dim"] == 3 and row["n"] == 32
    assert all(k in row for k in ("time_jacobian", "time_linear_regions"))
    frame = complexity_report(g, _points(32, 2), as_frame=True)
    assert frame.shape[0] == 1 and frame["params"].iloc[0] == row["params"]


def test_param_count_trainable_only():
    g = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    g[0].weight.requires_grad_(False)
    assert param_count(g) == 13 and param_count(g, trainable_only=True) == 7


def test_latent_objects_and_seeds():
    import latentdist.latents as latents
    g = _mlp(3, [8], 2, nn.Tanh, 0)
    lat = latents.Gaussian(3)
    a = path_length(g, lat, n=64, seed=4)
    assert a == path_length(g, lat, n=64, seed=4)
    assert a != path_length(g, lat, n=64, seed=5)
    assert lipschitz_lower(g, lat, n=32, seed=1) == lipschitz_lower(g, lat, n=32, seed=1)
    state = torch.random.get_rng_state()
    path_length(g, lat, n=16, seed=np.random.default_rng(0))
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched


def test_callback_logs_and_restores_mode():
    g = _mlp(2, [8], 2, nn.ReLU, 0)
    g.train()
    cb = ComplexityCallback(_points(32, 2), every=5)
    logs = {}
    cb(3, g, logs)
    assert logs == {}
    cb(10, g, logs)
    assert set(logs) == {"lipschitz_upper", "lipschitz_lower", "path_length", "jacobian_frobenius"}
    assert logs["lipschitz_lower"] <= logs["lipschitz_upper"]
    assert g.training and all(m.training for m in g.modules())
    logs2 = {}
    cb(10, g, logs2)
    assert logs2 == logs  # fixed evaluation points: same model, same numbers
    with pytest.raises(ValueError, match="proxies"):
        ComplexityCallback(_points(4, 2), proxies=("lipschitz",))


def test_callback_logs_nan_for_inapplicable_proxy():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Linear(2, 2)

        def forward(self, x):
            return x + self.f(x)

    cb = ComplexityCallback(_points(8, 2), every=1, proxies=("lipschitz_upper", "path_length"))
    logs = {}
    with pytest.warns(UserWarning, match="lipschitz_upper"):
        cb(0, Residual(), logs)
    assert math.isnan(logs["lipschitz_upper"]) and np.isfinite(logs["path_length"])


# ---------------------------------------------------------------- bad input


def test_bad_input_fails_clearly():
    g = _mlp(3, [4], 2, nn.ReLU, 0)
    with pytest.raises(ValueError, match="dimension 5"):
        lipschitz_lower(g, _points(4, 5))
    with pytest.raises(ValueError, match="dimension 2"):
        path_length(g, _points(4, 2))
    with pytest.raises(ValueError, match="NaN"):
        jacobian_spectrum(g, torch.full((3, 3), float("nan")))
    with pytest.raises(ValueError, match="2-D"):
        path_length(g, torch.zeros(3))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        lipschitz_upper(lambda z: z)
    with pytest.raises(ValueError, match="eps"):
        path_length(g, _points(4, 3), eps=0.0)

    class Rounded(nn.Module):
        def forward(self, x):
            return x.detach().round()

    with pytest.raises(ValueError, match="not differentiable"):
        lipschitz_lower(Rounded(), _points(4, 3))
    with pytest.raises(ValueError, match="not differentiable"):
        jacobian_spectrum(nn.Sequential(nn.Linear(3, 2), Rounded()), _points(4, 3))

    class ArgMax(nn.Module):
        def forward(self, x):
            return x.argmax(1, keepdim=True)

    with pytest.raises(ValueError, match="floating"):
        path_length(ArgMax(), _points(4, 3))
