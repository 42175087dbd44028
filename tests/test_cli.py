"""The ``latentdist`` command: options, errors (exit status 2 naming the option) and output."""

from __future__ import annotations

import numpy as np
import pytest

from latentdist import cli


def _fails(argv, capsys, *needles):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err, (needle, err)


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "repro" in out and "distance" in out and "datasets" in out


def test_bad_options_exit_2(capsys):
    _fails([], capsys, "required")
    _fails(["frobnicate"], capsys, "invalid choice")
    _fails(["repro", "--only", "R9"], capsys, "--only", "R9")
    _fails(["repro", "--quick", "--full"], capsys, "--full")
    _fails(["repro", "--fast"], capsys, "--fast")
    _fails(["distance", "--width", "0"], capsys, "--width", ">= 1")
    _fails(["distance", "--width", "abc"], capsys, "--width", "integer")
    _fails(["distance", "--n", "-5"], capsys, "--n")
    _fails(["distance", "--seed", "-1"], capsys, "--seed")
    _fails(["distance", "--lipschitz", "nan"], capsys, "--lipschitz")
    _fails(["distance", "--family", "transformer"], capsys, "--family", "transformer")
    _fails(["distance", "--latent", "cauchy"], capsys, "--latent", "cauchy")


def test_unknown_dataset_and_distance_exit_2(capsys):
    _fails(["distance", "--data", "nope"], capsys, "--data", "nope", "spiral")
    _fails(["distance", "--distance", "w7"], capsys, "--distance", "w7")
    _fails(["distance", "--family", "lipschitz", "--width", "7"], capsys, "--width", "even")


def test_datasets_lists_names(capsys):
    from latentdist.data import available_datasets

    assert cli.main(["datasets"]) == 0
    assert capsys.readouterr().out.split() == available_datasets()


def test_repro_uses_runner(monkeypatch, tmp_path, capsys):
    from latentdist.experiments import runner

    seen = {}

    def fake_run_all(claims, mode, *, out, use_cache, progress, log, executor):
        seen.update(claims=claims, mode=mode, out=out, use_cache=use_cache, executor=type(executor).__name__)
        log("R2 fake: computed")
        return {"R2": None}

    monkeypatch.setattr(runner, "run_all", fake_run_all)
    assert cli.main(["repro", "--only", "R2", "R3", "--out", str(tmp_path), "--no-cache"]) == 0
    assert seen == {"claims": ["R2", "R3"], "mode": "quick", "out": str(tmp_path), "use_cache": False,
                    "executor": "SerialExecutor"}
    assert cli.main(["repro", "--workers", "2"]) == 0 and seen["executor"] == "ProcessExecutor"
    assert cli.main(["repro", "--full"]) == 0
    assert seen["mode"] == "full" and seen["claims"] is None and seen["use_cache"] is True
    assert "R2 fake" in capsys.readouterr().out


def test_distance_prints_value_and_floor(capsys, monkeypatch):
    import latentdist.estimator as estimator

    seen, real = [], estimator.latent_data_distance

    def recording(*args, **kwargs):  # the real estimator; keep its result to compare with the printout
        assert kwargs["n_restarts"] == 1 and kwargs["steps"] == 20 and kwargs["seed"] == 3
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(estimator, "latent_data_distance", recording)
    code = cli.main(["distance", "--latent", "gaussian", "--data", "spiral", "--family", "mlp", "--width",
                     "8", "--distance", "w2", "--n", "200", "--restarts", "1", "--steps", "20", "--seed", "3",
                     "--no-progress"])
    assert code == 0
    _assert_prints_the_estimate(capsys.readouterr().out, seen[0])


def _assert_prints_the_estimate(out, res):
    """The printed value ± spread and floor ± sd are the estimator's numbers (``value > 0`` could not fail;
    a single restart's spread is NaN and must print as nan)."""
    line, floor_line = out.strip().splitlines()[-2:]
    value, spread = (float(v) for v in line.rsplit(":", 1)[1].split("(")[0].split("±"))
    floor, floor_sd = (float(v) for v in floor_line.rsplit(":", 1)[1].split("±"))
    np.testing.assert_equal([value, spread, floor, floor_sd],
                            [round(v, 4) for v in (res.value, res.std, res.noise_floor, res.noise_floor_std)])


def test_printed_estimate_check_fails_on_wrong_numbers():
    import types

    res = types.SimpleNamespace(value=0.41234, std=0.0123, noise_floor=0.1, noise_floor_std=0.02,
                                summary=lambda: "")
    good = ("D_{mlp}(x) under w2: 0.4123 ± 0.0123 (spread over 2 restarts)\n"
            "noise floor d(P_x, P_x'): 0.1000 ± 0.0200")
    _assert_prints_the_estimate(good, res)
    for bad in (good.replace("0.4123", "0.5000"), good.replace("0.1000", "0.0000"),
                good.replace("± 0.0123", "± 0.0000")):
        with pytest.raises(AssertionError):
            _assert_prints_the_estimate(bad, res)
