"""Unwrapping, MSD, D, Nernst-Einstein and Arrhenius against known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.constants as sc

from glassjax.analysis import diffusion


def _random_walk(rng, D, dt, nframes, natoms, cells):
    """Gaussian steps with variance 2 D dt per Cartesian direction, wrapped into the cell of each frame."""
    steps = rng.normal(scale=np.sqrt(2 * D * dt), size=(nframes - 1, natoms, 3))
    true = np.concatenate([rng.uniform(0, 5, (1, natoms, 3)), np.zeros((nframes - 1, natoms, 3))])
    true[1:] = true[0] + np.cumsum(steps, axis=0)
    s = np.einsum("fna,fab->fnb", true, np.linalg.inv(cells))
    wrapped = np.einsum("fna,fab->fnb", s - np.floor(s), cells)
    return true, wrapped


def test_unwrap_recovers_the_continuous_path_in_a_changing_triclinic_cell():
    rng = np.random.default_rng(0)
    nf, n = 60, 20
    base = np.array([[9.0, 0, 0], [1.0, 8.0, 0], [0.5, -0.7, 10.0]])
    cells = np.stack([base * (1 + 0.002 * k) for k in range(nf)])  # slow expansion
    # true path: affine with the cell plus a walk that crosses the boundaries many times
    s_true = np.cumsum(rng.normal(scale=0.08, size=(nf, n, 3)), axis=0)
    wrapped = np.einsum("fna,fab->fnb", s_true - np.floor(s_true), cells)
    assert np.abs(s_true).max() > 1.0  # boundaries were crossed
    un = np.asarray(diffusion.unwrap(wrapped, cells))
    # frame 0 is kept as given (wrapped); later frames follow it continuously
    expect = np.einsum("fna,fab->fnb", s_true - np.floor(s_true[0]), cells)
    np.testing.assert_allclose(un, expect, atol=1e-9)
    np.testing.assert_allclose(un[0], wrapped[0], atol=1e-12)


def test_msd_all_origins_matches_direct_double_loop():
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.normal(size=(40, 7, 3)), axis=0)
    mask = np.arange(7) % 2 == 0
    got = np.asarray(diffusion.msd(x, mask))
    ref = np.zeros(40)
    for m in range(40):
        d = x[m:] - x[:40 - m]
        ref[m] = np.mean(np.sum(d[:, mask] ** 2, axis=-1))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


def test_random_walk_in_periodic_box_gives_known_D():
    rng = np.random.default_rng(2)
    D, dt, nf, n = 0.05, 0.1, 400, 400  # Å^2/ps, ps
    cells = np.broadcast_to(np.eye(3) * 6.0, (nf, 3, 3))  # small box: many wraps
    true, wrapped = _random_walk(rng, D, dt, nf, n, cells)
    un = np.asarray(diffusion.unwrap(wrapped, cells))
    np.testing.assert_allclose(un, true, atol=1e-9)
    t = np.arange(nf) * dt
    m = np.asarray(diffusion.msd(un))
    fit = diffusion.diffusion_coefficient(t, m, t_min=2.0, t_max=15.0)
    # 400 independent walkers: the relative error of the fitted D is about sqrt(2/(3*400)) ~ 4 %
    # at the longest lags of the window; 12 % is three sigma
    assert fit["D"] == pytest.approx(D, rel=0.12)
    assert fit["D_cm2_s"] == pytest.approx(fit["D"] * 1e-4)


def test_nernst_einstein_units():
    D, n, V, T = 0.01, 100, 12000.0, 500.0  # Å^2/ps, ions, Å^3, K
    # by hand with scipy.constants: n/V [1/m^3] e^2 D [m^2/s] / (k T) [J] -> S/m -> S/cm
    sigma = (n / (V * 1e-30)) * sc.e ** 2 * (D * 1e-8) / (sc.k * T) / 100
    assert diffusion.nernst_einstein(D, n, V, T) == pytest.approx(sigma, rel=1e-12)
    assert diffusion.nernst_einstein(D, n, V, T, charge_e=2.0) == pytest.approx(4 * sigma, rel=1e-12)


def test_arrhenius_recovers_activation_energy():
    kB = sc.k / sc.e  # eV/K
    T = np.array([500.0, 600.0, 700.0, 900.0])  # the paper's temperatures
    Ea, D0 = 0.38, 2.5
    D = D0 * np.exp(-Ea / (kB * T))
    fit = diffusion.arrhenius(T, D)
    assert fit["Ea"] == pytest.approx(Ea, rel=1e-6)
    assert fit["D0"] == pytest.approx(D0, rel=1e-5)
    rng = np.random.default_rng(3)
    noisy = diffusion.arrhenius(T, D * np.exp(rng.normal(scale=0.03, size=4)))
    assert abs(noisy["Ea"] - Ea) < 4 * noisy["Ea_stderr"] + 1e-3


def test_bad_inputs_raise_config_errors():
    from glassjax.errors import ConfigError

    with pytest.raises(ConfigError, match="two or more"):
        diffusion.arrhenius([500.0], [1.0])
    with pytest.raises(ConfigError, match="positive"):
        diffusion.arrhenius([500.0, 600.0], [1.0, -1.0])
    with pytest.raises(ConfigError, match="fit window"):
        diffusion.diffusion_coefficient(np.arange(10.0), np.arange(10.0), t_min=20, t_max=30)


def test_cli_msd_and_arrhenius(tmp_path):
    import csv

    from ase import Atoms
    from ase.io import write

    from glassjax.cli import main

    rng = np.random.default_rng(4)
    D, dt, nf, n_li = 0.02, 0.5, 80, 100
    a = 9.0
    cells = np.broadcast_to(np.eye(3) * a, (nf, 3, 3))
    true, wrapped = _random_walk(rng, D, dt, nf, n_li, cells)
    o_pos = rng.uniform(0, a, (20, 3))  # immobile O
    images = [Atoms(symbols=["Li"] * n_li + ["O"] * 20, positions=np.concatenate([wrapped[f], o_pos]),
                    cell=cells[f], pbc=True) for f in range(nf)]
    write(tmp_path / "walk.extxyz", images)
    rc = main(["analyze", "msd", str(tmp_path / "walk.extxyz"), "--dt", str(dt), "--t-min", "5", "--t-max", "25",
               "--temperature", "500", "-o", str(tmp_path / "msd"), "--no-progress"])
    assert rc == 0
    text = (tmp_path / "msd.csv").read_text()
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    m = np.array([float(r["msd_A2"]) for r in rows])
    ref = np.array([np.mean(np.sum((true[k:] - true[:nf - k]) ** 2, axis=-1)) for k in range(nf)])
    np.testing.assert_allclose(m, ref, rtol=1e-6, atol=1e-9)
    assert "S/cm" in text
    # Arrhenius from a two-column table with a header
    kB = sc.k / sc.e
    T = np.array([500.0, 600.0, 700.0, 900.0])
    (tmp_path / "d.csv").write_text("T,D\n" + "\n".join(f"{t},{1e-3 * np.exp(-0.4 / (kB * t))}" for t in T))
    assert main(["analyze", "arrhenius", str(tmp_path / "d.csv"), "-o", str(tmp_path / "arr")]) == 0
    import re

    ea = float(re.search(r"Ea = ([-0-9.eE+]+) ", (tmp_path / "arr.csv").read_text()).group(1))
    assert ea == pytest.approx(0.4, rel=1e-6)
