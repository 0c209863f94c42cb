"""Tg from the fold of E(T): synthetic two-slope data with a known break point."""

from __future__ import annotations

import numpy as np
import pytest

from glassjax.analysis import tg


def _two_slope(T, tg_true, e0=-7.0, s_glass=2.0e-4, s_liquid=5.0e-4):
    return e0 + s_glass * T + (s_liquid - s_glass) * np.maximum(T - tg_true, 0.0)


def test_exact_two_slope_data_recovers_break_and_slopes():
    T = np.linspace(300, 2000, 86)
    fit = tg.fit_tg(T, _two_slope(T, 1122.0))
    assert fit["Tg"] == pytest.approx(1122.0, abs=1e-3)
    assert fit["slope_glass"] == pytest.approx(2.0e-4, rel=1e-8)
    assert fit["slope_liquid"] == pytest.approx(5.0e-4, rel=1e-8)
    np.testing.assert_allclose(tg.hinge_curve(T, fit), _two_slope(T, 1122.0), atol=1e-9)


def test_noisy_heating_curves_recover_tg_within_tolerance():
    # 10 K/ps heating sampled every 10 K, noise 2 meV/atom: the break is located to a few 10 K
    rng = np.random.default_rng(0)
    T = np.arange(300.0, 2000.0, 10.0)
    runs = [(T, _two_slope(T, 1100.0) + rng.normal(scale=2e-3, size=T.size)) for _ in range(3)]
    res = tg.fit_tg_runs(runs)
    assert res["Tg"] == pytest.approx(1100.0, abs=40.0)
    assert 0 < res["Tg_std"] < 60.0
    for f in res["fits"]:
        assert f["slope_liquid"] > f["slope_glass"]
    # shuffled input order gives the same answer
    perm = rng.permutation(T.size)
    assert tg.fit_tg(T[perm], runs[0][1][perm])["Tg"] == pytest.approx(res["fits"][0]["Tg"], abs=1e-6)


def test_too_few_points_is_a_config_error():
    from glassjax.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 7 points"):
        tg.fit_tg([300, 400, 500], [1, 2, 3])
    with pytest.raises(ConfigError, match="temperatures but"):
        tg.fit_tg([300, 400, 500], [1, 2])


def test_cli_tg_reads_tables_with_headers_and_reports_mean(tmp_path):
    import csv

    from glassjax.cli import main

    rng = np.random.default_rng(1)
    T = np.arange(300.0, 2000.0, 10.0)
    paths = []
    for k in range(3):
        y = _two_slope(T, 1150.0) + rng.normal(scale=1e-3, size=T.size)
        p = tmp_path / f"heat{k}.csv"
        p.write_text("temp_K,pe_eV_per_atom\n" + "\n".join(f"{a},{b}" for a, b in zip(T, y)))
        paths.append(str(p))
    assert main(["analyze", "tg", *paths, "-o", str(tmp_path / "tg")]) == 0
    lines = (tmp_path / "tg.csv").read_text().splitlines()
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert len(rows) == 3
    for r in rows:
        assert float(r["Tg_K"]) == pytest.approx(1150.0, abs=30.0)
    assert (tmp_path / "tg.png").stat().st_size > 0
