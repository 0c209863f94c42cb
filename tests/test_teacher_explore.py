"""train/teacher/explore.py: one active-learning exploration round at a tiny size.

A two-member ensemble (the tests' distilled Li borate model and a copy with perturbed
weights) drives a melt-quench, a triaxial compression and a uniaxial stretch of a small LB70
glass.  Checked: the candidate frames' recorded deviations against an independent
recomputation with each member through ASE (GlassJaxCalculator), the DP-GEN cap on written
frames, the info that train/teacher/label.py reads (segment, temperature), labelling the
candidates with a stand-in teacher into generate.py's npz format, and resuming.
"""

from __future__ import annotations

import ase.io
import jax
import numpy as np
import pytest

from glassjax.calculator import GlassJaxCalculator
from glassjax.model import load_model
from glassjax.model.dpfile import save_dp


@pytest.fixture(scope="module")
def round1(tmp_path_factory, test_data, teacher_script):
    tmp = tmp_path_factory.mktemp("al")
    model, variables = load_model(test_data / "md_models" / "teter_distilled_lb.dp")
    rng = np.random.default_rng(0)
    perturbed = {"params": jax.tree_util.tree_map(lambda p: np.asarray(p) * (1 + 0.05 * rng.standard_normal(np.shape(p))),
                                                  variables["params"]),
                 "constants": variables["constants"]}
    m1 = tmp / "member_1.dp"
    save_dp(m1, model.config, perturbed)
    models = [test_data / "md_models" / "teter_distilled_lb.dp", m1]
    ex = teacher_script("explore")
    sched = ex.Schedule(n_atoms=40, melt_ps=0.05, quench_ps=0.05, glass_ps=0.02, every=10, compress_rate=-1.0,
                        compress_to=-0.03, tension_rate=1.0, tension_to=0.03, snapshot=0.01)
    out = tmp / "round1"
    rows = ex.explore_glass("LB70", models, out, sched, trust_lo=0.0, trust_hi=1e9, max_frames=3, progress=False)
    return ex, models, out, rows


def test_candidates_and_their_deviations(round1):
    ex, models, out, rows = round1
    assert [r["segment"] for r in rows] == ["melt_quench", "compressed", "stretched"]
    calcs = [GlassJaxCalculator(str(m)) for m in models]
    for r in rows:
        # trust_lo = 0, trust_hi huge: every frame is a candidate; at most max_frames are written
        assert r["candidate"] == r["frames"] > 0 and r["accurate"] == r["failed"] == 0
        assert r["written"] == min(3, r["frames"])
        frames = ase.io.read(out / "candidates" / f"LB70_{r['segment']}.extxyz", index=":")
        assert len(frames) == r["written"]
        for a in frames:
            assert a.info["segment"] == r["segment"] and "temperature" in a.info
            forces = []
            for c in calcs:
                b = a.copy()
                b.calc = c
                forces.append(b.get_forces())
            f = np.stack(forces)  # (M, N, 3)
            dev = np.sqrt(np.mean(np.sum((f - f.mean(axis=0)) ** 2, axis=-1), axis=0))  # DeePMD: per atom
            assert a.info["max_devi_f"] == pytest.approx(dev.max(), rel=1e-3, abs=1e-4)


def test_label_and_resume(round1, tmp_path, teacher_script):
    ex, models, out, rows = round1
    label = teacher_script("label")
    teacher = GlassJaxCalculator(str(models[0]))  # a stand-in teacher: any ASE calculator
    n = label.label_file(out / "candidates" / "LB70_compressed.extxyz", teacher, tmp_path)
    data = np.load(tmp_path / "LB70_compressed.npz")
    assert n == rows[1]["written"] and data["forces"].shape[0] == n
    assert set(data["segment"].tolist()) == {"compressed"}
    # generate.py --to-h5 turns the labels into one training system named <glass>_<segment>
    from glassjax.data.dataset import read_dataset

    gen = teacher_script("generate")
    gen.to_dataset([tmp_path], tmp_path / "al.h5")
    (system,) = read_dataset(tmp_path / "al.h5")
    assert system.name == "LB70_compressed"
    np.testing.assert_allclose(system.forces, data["forces"], rtol=1e-6)
    assert not (tmp_path / "al.heldout.h5").exists()
    # a second run of the script skips the finished glass and writes the summary from its record
    assert ex.main(["--out", str(out), "--models", *map(str, models), "--compositions", "LB70", "--no-progress"]) == 0
    import csv

    summary = list(csv.DictReader(open(out / "summary.csv")))
    assert [(s["segment"], int(s["written"])) for s in summary] == [(r["segment"], r["written"]) for r in rows]


def test_label_script_skips_runs_without_candidates(round1, tmp_path, monkeypatch, teacher_script):
    """A run with no candidate frames leaves an empty extxyz (write_flagged); label.py must
    label the other files, write nothing for the empty one and stop (it once crashed on it)."""
    ex, models, out, rows = round1
    label = teacher_script("label")
    configs = tmp_path / "candidates"
    configs.mkdir()
    (configs / "LB70_empty.extxyz").write_text("")
    src = out / "candidates" / "LB70_compressed.extxyz"
    (configs / src.name).write_text(src.read_text())
    monkeypatch.setattr(label, "make_teacher", lambda name, device: GlassJaxCalculator(str(models[0])))
    assert label.label_file(configs / "LB70_empty.extxyz", None, tmp_path) == 0
    labels = tmp_path / "labels"
    assert label.main([str(configs), "--out", str(labels)]) == 0
    assert sorted(p.name for p in labels.iterdir()) == ["LB70_compressed.npz"]
    assert np.load(labels / "LB70_compressed.npz")["forces"].shape[0] == rows[1]["written"]
