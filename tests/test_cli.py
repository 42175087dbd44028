"""The ``latentdist`` command: options, errors (exit status 2 naming the option) and output."""

from __future__ import annotations

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

    def fake_run_all(claims, mode, *, out, use_cache, progress, log):
        seen.update(claims=claims, mode=mode, out=out, use_cache=use_cache)
        log("R2 fake: computed")
        return {"R2": None}

    monkeypatch.setattr(runner, "run_all", fake_run_all)
    assert cli.main(["repro", "--only", "R2", "R3", "--out", str(tmp_path), "--no-cache"]) == 0
    assert seen == {"claims": ["R2", "R3"], "mode": "quick", "out": str(tmp_path), "use_cache": False}
    assert cli.main(["repro", "--full"]) == 0
    assert seen["mode"] == "full" and seen["claims"] is None and seen["use_cache"] is True
    assert "R2 fake" in capsys.readouterr().out


def test_distance_prints_value_and_floor(capsys):
    code = cli.main(["distance", "--latent", "gaussian", "--data", "spiral", "--family", "mlp", "--width",
                     "8", "--distance", "w2", "--n", "200", "--restarts", "1", "--steps", "20", "--seed", "3",
                     "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "±" in out and "noise floor" in out
    value = float(out.split(":")[1].split("±")[0])
    assert value > 0
