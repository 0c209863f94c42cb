"""glassjax.uncertainty: ensemble deviation along a trajectory and DP-GEN frame flags.

References: each member's forces/energies from the ASE calculator (glassjax.calculator, its own
neighbour list), one model at a time, combined with numpy; hand-built deviations for the flags.
"""

from pathlib import Path

import ase.io
import jax
import numpy as np
import pytest

from glassjax.errors import ConfigError, DataError, ModelError
from glassjax.uncertainty import deviation_along, flag_frames, load_frames, write_flagged

DATA = Path(__file__).parent / "data"
LB = DATA / "md_models" / "lb_glass_heldout.extxyz"  # 5 frames, 49-atom Li borate glass
TETER_DP = DATA / "md_models" / "teter_distilled_lb.dp"


@pytest.fixture(scope="module")
def members():
    """Three members: the distilled model and two copies with perturbed weights (in memory)."""
    from glassjax.model import load_model

    model, variables = load_model(TETER_DP, dtype="float64")
    out = [(model, variables)]
    for seed in (1, 2):
        leaves, tree = jax.tree_util.tree_flatten(variables)
        rng = np.random.default_rng(seed)
        new = [np.asarray(x) + 0.05 * rng.standard_normal(np.shape(x)) * (np.std(x) + 1e-3)
               if np.issubdtype(np.asarray(x).dtype, np.floating) else x for x in leaves]
        out.append((model, jax.tree_util.tree_unflatten(tree, new)))
    return out


def _reference(members, images):
    """Numpy deviations from each member's ASE-calculator forces/energies."""
    from glassjax.calculator import GlassJaxCalculator

    E, F = [], []
    for model, variables in members:
        calc = GlassJaxCalculator((model, variables), dtype="float64")
        e, f = [], []
        for a in images:
            a = a.copy()
            a.calc = calc
            e.append(a.get_potential_energy())
            f.append(a.get_forces())
        E.append(e)
        F.append(f)
    E, F = np.array(E), np.array(F)  # (M, F), (M, F, N, 3)
    n = F.shape[2]
    mean = F.mean(axis=0)
    sig = np.sqrt(((F - mean) ** 2).mean(axis=0).sum(axis=-1))  # (F, N)
    return {"devi_e": (E / n).std(axis=0), "max_devi_f": sig.max(-1), "min_devi_f": sig.min(-1),
            "avg_devi_f": sig.mean(-1), "devi_f_atom": sig, "energy": E}


@pytest.fixture(scope="module")
def lb_devi(members):
    return deviation_along(members, LB, dtype="float64")


def test_deviation_matches_numpy_from_individual_members(members, lb_devi):
    images = ase.io.read(LB, ":")
    ref = _reference(members, images)
    for k in ("devi_e", "max_devi_f", "min_devi_f", "avg_devi_f", "devi_f_atom", "energy"):
        np.testing.assert_allclose(lb_devi[k], ref[k], rtol=1e-8, atol=1e-10, err_msg=k)
    assert lb_devi["max_devi_f"].shape == (len(images),)
    assert np.all(lb_devi["max_devi_f"] > 0)  # perturbed members really differ
    np.testing.assert_array_equal(lb_devi["frame"], np.arange(len(images)))


def test_identical_members_have_zero_deviation(members):
    d = deviation_along([members[0], members[0]], LB, dtype="float64")
    assert d["max_devi_f"].shape == (5,)
    np.testing.assert_allclose(d["max_devi_f"], 0.0, atol=1e-12)
    np.testing.assert_allclose(d["devi_e"], 0.0, atol=1e-12)


def test_default_ensemble_paths_on_shipped_sample():
    """The shipped 4-member default potential, loaded from its files, on 2 frames of its held-out set."""
    from glassjax.model import load_model
    from glassjax.pretrained import default_ensemble_paths

    paths = default_ensemble_paths()
    heldout = DATA / "default_potential" / "heldout.extxyz"
    d = deviation_along(paths, heldout, index="0:2", dtype="float64")
    # reference: each member evaluated on its own (predict_frames), combined with numpy
    from glassjax.analysis.io import read_trajectory
    from glassjax.train.evaluate import predict_frames

    fr = read_trajectory(heldout, index="0:2")
    preds = [predict_frames(*load_model(p, dtype="float64"), fr) for p in paths]
    E = np.array([p["energy"] for p in preds])
    F = np.array([p["forces"] for p in preds])
    sig = np.sqrt(((F - F.mean(0)) ** 2).mean(0).sum(-1))
    ref = {"max_devi_f": sig.max(-1), "devi_e": (E / fr.natoms).std(0)}
    np.testing.assert_allclose(d["max_devi_f"], ref["max_devi_f"], rtol=1e-8)
    np.testing.assert_allclose(d["devi_e"], ref["devi_e"], rtol=1e-8, atol=1e-12)
    assert d["energy"].shape == (len(paths), 2)


def test_h5md_trajectory_metadata_and_frames(tmp_path, members, lb_devi):
    from glassjax.md.deform import h5_append_observable
    from glassjax.md.trajectory import OBSERVABLES, H5MDWriter

    images = ase.io.read(LB, ":")
    nf = len(images)
    path = tmp_path / "trajectory.h5"
    rec = {"positions": np.stack([a.get_positions() for a in images]),
           "cell": np.stack([np.asarray(a.get_cell()) for a in images]),
           "velocities": np.zeros((nf, len(images[0]), 3))}
    for k in OBSERVABLES:
        rec[k] = np.zeros((nf, 3, 3)) if k == "stress" else np.arange(nf, dtype=float) + 300.0
    with H5MDWriter(path, images[0].get_chemical_symbols(), images[0].get_masses()) as w:
        w.append(np.arange(nf) * 10, np.arange(nf) * 0.01, rec)
        # a deformation run's extra observable, recorded with the frames
        h5_append_observable(w, "strain", (), np.arange(nf) * 10, np.arange(nf) * 0.01, -0.01 * np.arange(nf))
    d = deviation_along(members, path, dtype="float64")
    np.testing.assert_allclose(d["max_devi_f"], lb_devi["max_devi_f"], rtol=1e-10)
    np.testing.assert_array_equal(d["step"], np.arange(nf) * 10)
    np.testing.assert_allclose(d["time_ps"], np.arange(nf) * 0.01)
    np.testing.assert_allclose(d["temperature"], np.arange(nf) + 300.0)
    np.testing.assert_allclose(d["strain"], -0.01 * np.arange(nf))
    # a frame selection keeps frames and metadata aligned
    fr, info = load_frames(path, index="1:4")
    np.testing.assert_allclose(fr.positions, rec["positions"][1:4])
    np.testing.assert_allclose(info["strain"], [-0.01, -0.02, -0.03])
    np.testing.assert_array_equal(info["step"], [10, 20, 30])


def test_flags_hand_built():
    d = np.array([0.01, 0.05, 0.1, 0.2, 0.3, np.nan, 0.0499])
    fl = flag_frames(d, 0.05, 0.2)
    np.testing.assert_array_equal(fl["accurate"], [0, 6])
    np.testing.assert_array_equal(fl["candidate"], [1, 2])  # trust_lo itself is a candidate
    np.testing.assert_array_equal(fl["failed"], [3, 4, 5])  # trust_hi itself and NaN fail
    assert list(fl["labels"]) == ["accurate", "candidate", "candidate", "failed", "failed", "failed", "accurate"]
    # a deviation dict and trust_hi = inf (nothing fails but NaN)
    fl2 = flag_frames({"max_devi_f": d}, 0.05, np.inf)
    np.testing.assert_array_equal(fl2["failed"], [5])
    np.testing.assert_array_equal(fl2["candidate"], [1, 2, 3, 4])


@pytest.mark.parametrize("lo,hi", [(0.3, 0.1), (-0.1, 0.2), (np.nan, 0.2), (0.1, np.nan), (np.inf, np.inf),
                                   ("a", 0.2)])
def test_bad_trust_levels_raise(lo, hi):
    with pytest.raises(ConfigError, match="trust"):
        flag_frames(np.array([0.1, 0.2]), lo, hi)


def test_bad_inputs_raise(members, tmp_path):
    with pytest.raises(ConfigError, match="at least 2"):
        deviation_along([members[0]], LB)
    with pytest.raises(ConfigError, match="shape"):
        flag_frames(np.zeros((2, 3)), 0.1, 0.2)
    with pytest.raises(ConfigError, match="no 'avg_devi_x'"):
        flag_frames({"max_devi_f": np.zeros(3)}, 0.1, 0.2, key="avg_devi_x")
    with pytest.raises(DataError, match="not found"):
        load_frames(tmp_path / "missing.extxyz")
    # Si is not in the B/Li/O model's type map: the error names the member
    with pytest.raises(ModelError, match="ensemble member 0"):
        deviation_along(members, DATA / "default_potential" / "heldout.extxyz", index="7:8")


def test_write_flagged_roundtrip(tmp_path, lb_devi):
    d = lb_devi["max_devi_f"]
    lo, hi = float(np.sort(d)[1]), float(np.sort(d)[3])  # 1st accurate, 2 candidates, 2 failed
    fl = flag_frames(lb_devi, lo, hi)
    assert len(fl["candidate"]) == 2
    out = tmp_path / "candidates.extxyz"
    n = write_flagged(out, LB, fl, devi=lb_devi)
    assert n == 2
    back = ase.io.read(out, ":")
    src = ase.io.read(LB, ":")
    for a, i in zip(back, fl["candidate"]):
        assert a.info["glassjax_frame"] == i
        np.testing.assert_allclose(a.get_positions(), src[i].get_positions())
        np.testing.assert_allclose(a.info["max_devi_f"], d[i])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidates.extxyz"]  # no temporary left
    # candidate + failed, capped at 3 frames
    assert write_flagged(out, LB, fl, which=("candidate", "failed"), max_frames=3) == 3
    with pytest.raises(ConfigError, match="which"):
        write_flagged(out, LB, fl, which="good")
    with pytest.raises(ConfigError, match="indices"):
        write_flagged(out, LB, [0, 99])
