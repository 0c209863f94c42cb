"""DeePMD-kit's learning-rate schedule and loss, against their closed forms in numpy."""

import numpy as np
import jax.numpy as jnp
import pytest

from glassjax.errors import ConfigError
from glassjax.train.loss import LossPrefactors, energy_loss
from glassjax.train.schedule import ExpDecay


def test_exp_decay_reaches_stop_lr_in_staircase_steps():
    s = ExpDecay(start_lr=1e-3, stop_lr=3.51e-8, num_steps=1_000_000, decay_steps=5000)
    steps = np.array([0, 4999, 5000, 12345, 500_000, 1_000_000])
    lr = np.asarray(s(jnp.asarray(steps)))
    r = (3.51e-8 / 1e-3) ** (5000 / 1_000_000)
    np.testing.assert_allclose(lr, 1e-3 * r ** (steps // 5000), rtol=1e-12)
    assert lr[0] == lr[1] == 1e-3  # constant within a period
    np.testing.assert_allclose(lr[-1], 3.51e-8, rtol=1e-9)  # stop_lr at the end
    assert float(s(2_000_000)) == pytest.approx(3.51e-8)  # clipped below at stop_lr


def test_exp_decay_short_run_fallback_and_errors():
    s = ExpDecay(start_lr=1e-3, stop_lr=1e-5, num_steps=200, decay_steps=5000)
    assert s.period == 3  # 200 // 100 + 1, DeePMD-kit's fallback for decay_steps >= num_steps
    np.testing.assert_allclose(float(s(198)), 1e-3 * s.rate ** 66, rtol=1e-12)
    with pytest.raises(ConfigError, match="stop_lr"):
        ExpDecay(start_lr=1e-3, stop_lr=1e-2, num_steps=10)
    with pytest.raises(ConfigError, match="decay_steps"):
        ExpDecay(start_lr=1e-3, stop_lr=1e-5, num_steps=10, decay_steps=0)


def _reference_loss(frames, prefs, lr, start_lr):
    """Direct per-frame loop on unpadded arrays (DeePMD-kit's EnergyStdLoss, legacy form)."""
    c = lr / start_lr
    pe = prefs.limit_pref_e + (prefs.start_pref_e - prefs.limit_pref_e) * c
    pf = prefs.limit_pref_f + (prefs.start_pref_f - prefs.limit_pref_f) * c
    pv = prefs.limit_pref_v + (prefs.start_pref_v - prefs.limit_pref_v) * c
    le = np.mean([(f["e"] - f["e_hat"]) ** 2 / f["n"] for f in frames])
    all_df = np.concatenate([(f["f"] - f["f_hat"]).ravel() for f in frames])
    lf = np.mean(all_df**2)
    lv = np.mean([np.mean((f["v"] - f["v_hat"]) ** 2) / f["n"] for f in frames])
    return pe * le + pf * lf + pv * lv


def test_loss_matches_direct_loop_and_ignores_padding():
    rng = np.random.default_rng(0)
    sizes = [5, 8, 3]
    nmax = 8
    frames = []
    batch = {k: [] for k in ("energy", "forces", "virial", "atom_mask", "natoms")}
    pred = {"energy": [], "forces": [], "virial": []}
    for n in sizes:
        f = {"n": n, "e": rng.normal(), "e_hat": rng.normal(), "f": rng.normal(size=(n, 3)),
             "f_hat": rng.normal(size=(n, 3)), "v": rng.normal(size=(3, 3)), "v_hat": rng.normal(size=(3, 3))}
        frames.append(f)
        pad = lambda a: np.concatenate([a, rng.normal(size=(nmax - n, 3)) * 100])  # noqa: E731 garbage
        batch["energy"].append(f["e_hat"])
        batch["forces"].append(pad(f["f_hat"]))
        batch["virial"].append(f["v_hat"])
        batch["atom_mask"].append(np.arange(nmax) < n)
        batch["natoms"].append(n)
        pred["energy"].append(f["e"])
        pred["forces"].append(pad(f["f"]))
        pred["virial"].append(f["v"])
    batch = {k: jnp.asarray(np.array(v)) for k, v in batch.items()}
    pred = {k: jnp.asarray(np.array(v)) for k, v in pred.items()}
    prefs = LossPrefactors(start_pref_e=0.02, limit_pref_e=1.0, start_pref_f=1000, limit_pref_f=1.0,
                           start_pref_v=0.5, limit_pref_v=0.1)
    for lr in (1e-3, 1e-4, 1e-8):
        loss, m = energy_loss(pred, batch, prefs, lr, 1e-3)
        np.testing.assert_allclose(float(loss), _reference_loss(frames, prefs, lr, 1e-3), rtol=1e-12)
    all_df = np.concatenate([(f["f"] - f["f_hat"]).ravel() for f in frames])
    np.testing.assert_allclose(float(m["rmse_f"]), np.sqrt(np.mean(all_df**2)), rtol=1e-12)
    np.testing.assert_allclose(float(m["rmse_e"]),
                               np.sqrt(np.mean([((f["e"] - f["e_hat"]) / f["n"]) ** 2 for f in frames])),
                               rtol=1e-12)


def test_frames_without_virial_do_not_contribute():
    b, n = 2, 4
    batch = {"energy": jnp.zeros(b), "forces": jnp.zeros((b, n, 3)), "virial": jnp.zeros((b, 3, 3)),
             "atom_mask": jnp.ones((b, n), bool), "natoms": jnp.full((b,), n),
             "has_virial": jnp.array([True, False])}
    pred = {"energy": jnp.zeros(b), "forces": jnp.zeros((b, n, 3)),
            "virial": jnp.stack([jnp.ones((3, 3)), 50 * jnp.ones((3, 3))])}
    prefs = LossPrefactors(start_pref_e=0, limit_pref_e=0, start_pref_f=0, limit_pref_f=0,
                           start_pref_v=1.0, limit_pref_v=1.0)
    loss, _ = energy_loss(pred, batch, prefs, 1.0, 1.0)
    np.testing.assert_allclose(float(loss), 1.0 / n)  # only frame 0: mean(1^2)/N


def test_relative_force_loss_matches_direct_sum():
    """loss.relative_f = c (DeePMD-kit's option): force errors divided by |F_label| + c per
    atom; the energy and virial terms and the reported absolute rmse_f are unchanged."""
    rng = np.random.default_rng(4)
    n, nmax = 6, 9
    f_hat = rng.normal(size=(n, 3)) * np.array([[0.5], [1.0], [2.0], [50.0], [200.0], [1.0]])  # two close contacts
    f = f_hat + rng.normal(size=(n, 3))
    garbage = rng.normal(size=(nmax - n, 3)) * 100
    batch = {"energy": jnp.asarray([1.0]), "virial": jnp.asarray(rng.normal(size=(1, 3, 3))),
             "forces": jnp.asarray(np.concatenate([f_hat, garbage])[None]),
             "atom_mask": jnp.asarray((np.arange(nmax) < n)[None]), "natoms": jnp.asarray([n])}
    pred = {"energy": jnp.asarray([1.3]), "virial": jnp.asarray(rng.normal(size=(1, 3, 3))),
            "forces": jnp.asarray(np.concatenate([f, -garbage])[None])}
    c = 1.5
    base = LossPrefactors(start_pref_e=0.02, limit_pref_e=1.0, start_pref_f=1000, limit_pref_f=1.0,
                          start_pref_v=0.5, limit_pref_v=0.1)
    rel = LossPrefactors(**{**base.__dict__, "relative_f": c})
    lr = 1e-4
    l_abs, m_abs = energy_loss(pred, batch, base, lr, 1e-3)
    l_rel, m_rel = energy_loss(pred, batch, rel, lr, 1e-3)
    p_f = 1.0 + (1000 - 1.0) * lr / 1e-3
    direct_abs = sum(np.sum((f[i] - f_hat[i]) ** 2) for i in range(n)) / (3 * n)
    direct_rel = sum(np.sum((f[i] - f_hat[i]) ** 2) / (np.linalg.norm(f_hat[i]) + c) ** 2 for i in range(n)) / (3 * n)
    np.testing.assert_allclose(float(l_rel) - float(l_abs), p_f * (direct_rel - direct_abs), rtol=1e-10)
    assert float(m_rel["rmse_f"]) == pytest.approx(float(m_abs["rmse_f"]), rel=1e-12)
    assert float(m_rel["rmse_f"]) == pytest.approx(np.sqrt(direct_abs), rel=1e-12)
    with pytest.raises(ConfigError, match="relative_f must be > 0"):
        LossPrefactors(relative_f=0.0)
