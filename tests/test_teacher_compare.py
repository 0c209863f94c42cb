"""Pure-numpy parts of train/teacher/compare_teachers.py (no torch, chgnet or sevenn needed).

The teacher packages are not glassjax dependencies and are absent in CI; these tests cover the
frame selection, the metrics and the stress conversion against independent references
(numpy, ASE, a VASP OUTCAR's own printed stress, the raw npy files).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "train" / "teacher" / "compare_teachers.py"


@pytest.fixture(scope="module")
def ct():
    spec = importlib.util.spec_from_file_location("compare_teachers", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


def test_select_frames_even_spread_and_nesting(ct):
    # 36 frames, 4 picks: 0, 35/3, 70/3, 35 rounded
    assert ct.select_frames(36, 4).tolist() == [0, 12, 23, 35]
    assert ct.select_frames(5, 0).tolist() == [0, 1, 2, 3, 4]
    assert ct.select_frames(3, 10).tolist() == [0, 1, 2]
    for n in (2, 7, 40, 194):
        for k in range(1, min(n, 12)):
            idx = ct.select_frames(n, k)
            assert len(idx) == k and len(set(idx.tolist())) == k
            assert np.all(np.diff(idx) > 0) and idx[-1] <= n - 1
        # fewer frames are a subset of more frames (first and last always kept): a slow model
        # run on 2 frames per system is measured on frames the others also saw
        assert set(ct.select_frames(n, 2).tolist()) <= set(ct.select_frames(n, 3).tolist())
    with pytest.raises(ValueError):
        ct.select_frames(0, 2)


def test_force_metrics_match_numpy(ct):
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(3, 20, 3))
    pred = ref + 0.1 * rng.normal(size=ref.shape)
    m = ct.force_metrics(pred, ref)
    d = pred - ref
    assert m["rmse"] == pytest.approx(np.sqrt((d ** 2).mean()), rel=1e-12)
    assert m["mae"] == pytest.approx(np.abs(d).mean(), rel=1e-12)
    assert m["max_abs"] == pytest.approx(np.abs(d).max(), rel=1e-12)
    assert m["r"] == pytest.approx(np.corrcoef(pred.ravel(), ref.ravel())[0, 1], rel=1e-12)
    assert m["ref_rms"] == pytest.approx(np.sqrt((ref ** 2).mean()), rel=1e-12)
    # an affine map of the reference is perfectly correlated, a sign flip anti-correlated
    assert ct.force_metrics(2.0 * ref + 0.3, ref)["r"] == pytest.approx(1.0, abs=1e-12)
    assert ct.force_metrics(-ref, ref)["r"] == pytest.approx(-1.0, abs=1e-12)
    with pytest.raises(ValueError):
        ct.force_metrics(pred[:2], ref)


def test_energy_metrics_remove_offset(ct):
    rng = np.random.default_rng(1)
    natoms, c = 265, -285.6  # a CP2K-like absolute offset in eV/atom
    ref = -294.0 * natoms + rng.normal(size=8)
    noise = 1e-3 * rng.normal(size=8)  # eV/atom
    pred = ref + (c + noise) * natoms
    m = ct.energy_metrics(pred, ref, natoms)
    assert m["offset"] == pytest.approx(c + noise.mean(), abs=1e-9)
    assert m["rmse_centered"] == pytest.approx(noise.std(), rel=1e-6)
    assert m["ref_std"] == pytest.approx(np.std(ref / natoms), rel=1e-9)
    # a pure offset is no error at all
    assert ct.energy_metrics(ref + 5.0 * natoms, ref, natoms)["rmse_centered"] == pytest.approx(0, abs=1e-9)


def test_voigt_to_matrix_matches_ase(ct):
    from ase.stress import voigt_6_to_full_3x3_stress

    v = np.random.default_rng(2).normal(size=(4, 6))
    np.testing.assert_allclose(ct.voigt_to_matrix(v), voigt_6_to_full_3x3_stress(v), rtol=0, atol=0)


def test_stress_metrics_analytic(ct):
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(5, 3, 3))
    ref = 0.5 * (ref + ref.transpose(0, 2, 1))
    a = 0.7  # GPa added to each diagonal component: pressure (= -tr/3) drops by a
    m = ct.stress_metrics(ref + a * np.eye(3), ref)
    assert m["pressure_bias"] == pytest.approx(-a, abs=1e-12)
    assert m["pressure_rmse"] == pytest.approx(a, abs=1e-12)
    assert m["rmse"] == pytest.approx(a / np.sqrt(2.0), abs=1e-12)  # 3 of 6 components off by a


def test_virial_to_stress_against_outcar_text(ct, test_data):
    """glassjax's virial -> GPa equals the stress VASP printed ('in kB' line) and ASE's reading."""
    import ase.io
    from ase.units import GPa
    from glassjax.data.readers import read_vasp

    outcar = test_data / "vasp" / "dpdata_6362_BO_isif3_relax" / "6362_OUTCAR"
    with pytest.warns(Warning):  # the run stops mid-step: the reader says so
        fr = read_vasp(outcar)[0]
    stress = ct.virial_to_stress_gpa(fr.virial, fr.cells)  # (F, 3, 3) GPa, ASE sign
    text = outcar.read_text()
    kb = [list(map(float, m.group(1).split()))
          for m in re.finditer(r"^\s*in kB((?:\s+-?\d+\.\d+){6})", text, re.M)]
    press = [float(x) for x in re.findall(r"external pressure =\s+(-?\d+\.\d+) kB", text)]
    assert len(kb) >= fr.nframes == 2
    for f in range(fr.nframes):
        xx, yy, zz, xy, yz, zx = kb[f]  # VASP order and sign (positive = compressive), kB
        vasp = -np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]]) / 10.0  # GPa, ASE sign
        np.testing.assert_allclose(stress[f], vasp, atol=1e-4)
        assert -np.trace(stress[f]) / 3.0 == pytest.approx(press[f] / 10.0, abs=1e-3)
        ase_stress = ase.io.read(outcar, index=f).get_stress(voigt=False)  # eV/Å^3
        np.testing.assert_allclose(stress[f], ase_stress / GPa, atol=1e-8)


def test_merge_splits_of_b2o3_system(ct, b2o3_dir):
    """train + val of one DeePMD system become one system with all frames in order."""
    systems = ct.load_systems([b2o3_dir / "glass_300K_1GPa_NPT"])
    assert list(systems) == ["glass_300K_1GPa_NPT"]
    fr = systems["glass_300K_1GPa_NPT"]
    f_train = np.load(b2o3_dir / "glass_300K_1GPa_NPT" / "train" / "set.000" / "force.npy")
    f_val = np.load(b2o3_dir / "glass_300K_1GPa_NPT" / "val" / "set.000" / "force.npy")
    assert fr.nframes == len(f_train) + len(f_val)
    np.testing.assert_array_equal(fr.forces.reshape(fr.nframes, -1), np.concatenate([f_train, f_val]))
    assert ct.system_key("liquid_3000K_1GPa_NPT_val") == "liquid_3000K_1GPa_NPT"
    assert ct.system_key("6362_OUTCAR") == "6362_OUTCAR"


def test_unknown_model_is_a_clear_error(ct, capsys):
    # fails before any teacher package is imported
    assert ct.main(["--models", "mace-mp-0", "--data", str(SCRIPT)]) == 2
    err = capsys.readouterr().err
    assert "mace-mp-0" in err and "chgnet-0.3.0" in err


def test_pooled_energy_rmse_equals_direct_computation(ct):
    """The per-system decomposition equals the RMSE over all frames with one common offset."""
    rng = np.random.default_rng(4)
    sizes = [3, 5, 2]
    d = [rng.normal(loc=mu, scale=sd, size=n) for mu, sd, n in zip((0.01, -0.02, 0.05),
                                                                 (0.002, 0.004, 0.001), sizes)]
    per = [ct.energy_metrics(x * 7.0, np.zeros_like(x), 7) for x in d]  # d = error per atom
    got = ct.pooled_energy_rmse([p["rmse_centered"] for p in per], [p["offset"] for p in per], sizes)
    allx = np.concatenate(d)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((allx - allx.mean()) ** 2)), rel=1e-10)
    assert got["offset_spread"] == pytest.approx(max(x.mean() for x in d) - min(x.mean() for x in d))
    assert ct.reduced_formula(["B"] * 106 + ["O"] * 159) == "B2O3"
    assert ct.reduced_formula(["O", "Li", "O", "B", "Li", "O"]) == "B1Li2O3"


def test_missing_torch_is_a_clear_error(ct, capsys, test_data):
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here; the message is for environments without it")
    outcar = test_data / "vasp" / "dpdata_6362_BO_isif3_relax" / "6362_OUTCAR"
    assert ct.main(["--models", "sevennet-0", "--data", str(outcar)]) == 2
    err = capsys.readouterr().err
    assert "PyTorch" in err and "[teacher]" in err


def test_summary_pools_forces_within_one_level_of_theory(ct):
    """Pooled force RMSE of a group equals the RMSE over all its force components; systems
    computed at another level of theory form their own group."""
    rng = np.random.default_rng(5)
    shapes = {"glass": (3, 10, 3), "crystal": (2, 16, 3), "other": (2, 4, 3)}
    theory = {"glass": "revPBE-D3", "crystal": "revPBE-D3", "other": "PBE"}
    refs = {k: rng.normal(size=s) for k, s in shapes.items()}
    preds = {k: r + rng.normal(scale=0.1 + 0.1 * i, size=r.shape) for i, (k, r) in enumerate(refs.items())}
    results = {"m": {k: {"forces": ct.force_metrics(preds[k], refs[k]), "time_per_atom_ms": 1.0}
                     for k in shapes}}
    systems = {k: {"frames": list(range(s[0])), "natoms": s[1], "reduced_formula": "B2O3",
                   "theory": theory[k]} for k, s in shapes.items()}
    groups = ct.summary_rows(results, systems)["m"]["groups"]
    assert sorted(len(g["systems"]) for g in groups.values()) == [1, 2]
    d = np.concatenate([(preds[k] - refs[k]).ravel() for k in ("glass", "crystal")])
    g = groups["B2O3 / revPBE-D3"]
    assert g["force_rmse_pooled"] == pytest.approx(np.sqrt(np.mean(d ** 2)), rel=1e-12)
    assert groups["B2O3 / PBE"]["force_rmse_pooled"] == pytest.approx(
        np.sqrt(np.mean((preds["other"] - refs["other"]) ** 2)), rel=1e-12)
