"""train/teacher/density.py: the pressure scan and relaxation that compare a glass's density
under the teacher and under the distilled potential.

The zero crossing is checked on an analytic equation of state; the whole script runs with
a stand-in teacher (the tests' distilled Li-borate model, the same as the "glassjax" side):
both columns must then agree exactly, the pressures must be -tr(stress)/3 of ASE's stress,
and the relaxation must take the glass from 7 GPa to near zero pressure."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TEACHER = REPO / "train" / "teacher"


@pytest.fixture(scope="module")
def density_mod():
    sys.path.insert(0, str(TEACHER))
    try:
        spec = importlib.util.spec_from_file_location("teacher_density", TEACHER / "density.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.pop(0)


def test_zero_crossing_of_a_murnaghan_equation_of_state(density_mod):
    """P(rho) = K0/K' ((rho/rho0)^K' - 1) (Murnaghan): the interpolated crossing on a fine
    scan recovers rho0; a scan that does not bracket P = 0 gives NaN."""
    rho0, k0, kp = 2.1, 60.0, 4.0
    rho = np.linspace(1.9, 2.3, 41)
    p = k0 / kp * ((rho / rho0) ** kp - 1.0)
    assert density_mod.zero_crossing(rho[::-1], p[::-1]) == pytest.approx(rho0, abs=1e-4)
    assert density_mod.zero_crossing(rho, p) == pytest.approx(rho0, abs=1e-4)
    assert np.isnan(density_mod.zero_crossing(rho[25:], p[25:]))


def test_density_script_with_a_stand_in_teacher(density_mod, test_data, tmp_path, monkeypatch):
    from glassjax.calculator import GlassJaxCalculator

    model = test_data / "md_models" / "teter_distilled_lb.dp"
    monkeypatch.setattr(density_mod, "make_teacher", lambda name, device: GlassJaxCalculator(str(model)))
    glass = ase.io.read(test_data / "md_models" / "lb_glass_start.extxyz")  # the model's own 500 K glass
    start = tmp_path / "glass.extxyz"
    ase.io.write(start, glass)
    out = tmp_path / "density.json"
    assert density_mod.main([str(start), "--potential", str(model), "--scan", "0.985,1,1.04,1.1",
                             "--steps", "300", "--fmax", "0.05", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert not out.with_suffix(".tmp").exists()
    calc = GlassJaxCalculator(str(model))
    for row in res["scan"]:
        assert row["P_teacher"] == pytest.approx(row["P_glassjax"], abs=1e-9)
        a = glass.copy()
        a.set_cell(glass.cell.array * row["factor"], scale_atoms=True)
        a.calc = calc
        assert row["density"] == pytest.approx(float(np.sum(a.get_masses())) / a.get_volume() * 1.66053906660)
        assert row["P_glassjax"] == pytest.approx(-np.trace(a.get_stress(voigt=False)) / 3 * 160.21766208, rel=1e-9)
    rho = [r["density"] for r in res["scan"]]
    p = [r["P_glassjax"] for r in res["scan"]]
    assert res["zero_pressure_density_teacher"] == res["zero_pressure_density_glassjax"]
    assert min(rho) < res["zero_pressure_density_glassjax"] < max(rho) and np.all(np.diff(p) < 0)
    p_start = p[rho.index(max(r for r in rho if r <= res["start_density"] + 1e-9))]
    assert abs(p_start) > 5.0  # the 500 K glass is under 7 GPa in this model at 0 K
    for name in ("teacher", "glassjax"):
        relaxed = res["relaxed"][name]  # atoms and cell: the pressure is relaxed away
        assert relaxed["steps"] > 0 and abs(relaxed["pressure_GPa"]) < 0.5
    assert res["relaxed"]["teacher"]["density"] == pytest.approx(res["relaxed"]["glassjax"]["density"], rel=1e-9)
