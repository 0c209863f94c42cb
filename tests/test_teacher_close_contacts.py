"""train/teacher/close_contacts.py and generate.py's --base / --max-force.

Close-contact frames are real held-out glass frames (teacher sample in
tests/data/default_potential) with atom pairs pushed together; checked against direct
geometry with ASE: which atoms moved, where they went, and that no third atom came too close.
The data-set step is checked with a stand-in teacher (the tests' distilled Li borate model)
through label.py, as the real run does.
"""

from __future__ import annotations

import ase.io
import numpy as np
import pytest


@pytest.fixture(scope="module")
def cc(teacher_script):
    return teacher_script("close_contacts")


@pytest.fixture(scope="module")
def glasses(test_data):
    frames = ase.io.read(test_data / "default_potential" / "heldout.extxyz", index=":")
    for a in frames:
        a.calc = None
    return frames


def test_push_pair_moves_the_two_atoms_symmetrically_along_their_bond(cc, glasses):
    a = glasses[14].copy()                    # LBS-20-40-40 glass
    i, j = cc.choose_pair(a, ("O", "O"), np.random.default_rng(0), n_nearest=1)
    d = a.get_all_distances(mic=True)
    sym = np.array(a.get_chemical_symbols())
    o = np.flatnonzero(sym == "O")
    assert d[i, j] == pytest.approx(np.min(d[np.ix_(o, o)][np.triu_indices(len(o), 1)]))  # the closest O-O
    before = a.get_positions()
    vec = a.get_distance(i, j, mic=True, vector=True)
    r0 = cc.push_pair(a, i, j, 1.4)
    assert r0 == pytest.approx(np.linalg.norm(vec))
    assert a.get_distance(i, j, mic=True) == pytest.approx(1.4, abs=1e-12)
    after = a.get_positions()
    moved = np.flatnonzero(np.linalg.norm(after - before, axis=1) > 0)
    assert sorted(moved) == sorted([i, j])
    np.testing.assert_allclose(after[i] - before[i], -(after[j] - before[j]), atol=1e-12)   # midpoint kept
    np.testing.assert_allclose(np.cross(after[i] - before[i], vec), 0.0, atol=1e-12)        # along the bond


def test_close_frames_land_in_their_windows_and_touch_nothing_else(cc, glasses):
    rng = np.random.default_rng(3)
    seen = set()
    for a in glasses:
        out = cc.close_frame(a, rng, n_pairs=2)
        moved = np.flatnonzero(np.linalg.norm(out.get_positions() - a.get_positions(), axis=1) > 1e-9)
        pairs = [p for p in out.info["pairs"].split(";") if p]
        assert len(pairs) == 2 and len(moved) == 4
        sym = out.get_chemical_symbols()
        pushed = []
        for p in pairs:
            left, dist = p.split(":")
            i, j = (int("".join(c for c in s if c.isdigit())) for s in left.split("-"))
            key = cc._pair_key(sym[i], sym[j])
            lo, hi = cc.WINDOWS[key]
            r = out.get_distance(i, j, mic=True)
            assert lo <= r <= hi and float(dist.split("->")[1]) == pytest.approx(r, abs=5e-3)
            assert float(dist.split("->")[0]) <= hi + 1.0
            pushed.append((i, j))
            seen.add(key)
        # every other pair is at least at its window's lower end (direct check)
        d = out.get_all_distances(mic=True)
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                if (i, j) not in pushed and (j, i) not in pushed and d[i, j] < 2.0:
                    assert d[i, j] >= cc.WINDOWS.get(cc._pair_key(sym[i], sym[j]), (1.0,))[0]
    assert ("O", "O") in seen and len(seen) >= 5
    # the same seed gives the same frames
    np.testing.assert_array_equal(cc.close_frame(glasses[0], np.random.default_rng(9), 2).positions,
                                  cc.close_frame(glasses[0], np.random.default_rng(9), 2).positions)


def test_dataset_with_base_and_force_ceiling(cc, glasses, test_data, tmp_path, teacher_script):
    """generate.py --to-h5 --base B --max-force F: B's systems and split stay as they are, the
    labelled frames with a force component above F are left out."""
    from glassjax.calculator import GlassJaxCalculator
    from glassjax.data.dataset import Dataset

    label, gen = teacher_script("label"), teacher_script("generate")
    # LB80 and Li2O-2B2O3 frames within the stand-in's elements (Li, B, O) and sel
    lb = [glasses[k] for k in (0, 1, 2, 3, 4, 6, 21, 22, 23, 27)]
    configs, labels = tmp_path / "configs", tmp_path / "labels"
    configs.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(1)
    frames = []
    for a in lb[:4]:
        f = cc.close_frame(a, rng, 2)
        f.info = dict(segment="close", temperature=0.0)
        frames.append(f)
    under = lb[0].copy()                                     # a B-O pair inside the teacher's floor
    cc.push_pair(under, *cc.choose_pair(under, ("B", "O"), rng, n_nearest=1), 0.7)
    under.info = dict(segment="close", temperature=0.0)
    assert cc.below_floor(under.get_chemical_symbols(), under.positions, under.cell[:]) == ["B-O 0.70"]
    assert all(cc.below_floor(f.get_chemical_symbols(), f.positions, f.cell[:]) == [] for f in frames)
    frames.append(under)
    ase.io.write(configs / "cc_LB.extxyz", frames, format="extxyz")
    teacher = GlassJaxCalculator(str(test_data / "md_models" / "teter_distilled_lb.dp"))
    for name, part in (("base_LB80", lb[4:6]), ("base_LB67", lb[6:])):   # one composition per file
        base_frames = [a.copy() for a in part]
        for f in base_frames:
            f.info = dict(segment="glass", temperature=300.0)
        ase.io.write(configs / f"{name}.extxyz", base_frames, format="extxyz")
        label.label_file(configs / f"{name}.extxyz", teacher, labels)
    gen.to_dataset([labels], tmp_path / "base.h5")
    label.label_file(configs / "cc_LB.extxyz", teacher, labels)
    fmax = np.abs(np.load(labels / "cc_LB.npz")["forces"]).max(axis=(1, 2))[:4]
    ceiling = float(np.sort(fmax)[1] + np.sort(fmax)[2]) / 2        # keeps the two frames with the smallest
    for p in labels.glob("base_*.npz"):
        p.unlink()
    gen.to_dataset([labels], tmp_path / "merged.h5", base=tmp_path / "base.h5", max_force=ceiling, pair_floor=True)
    base, merged = Dataset(tmp_path / "base.h5"), Dataset(tmp_path / "merged.h5")
    assert set(merged.systems) == set(base.systems) | {"cc_LB_close"}
    for s in base.systems:
        np.testing.assert_array_equal(merged.frames(s).positions, base.frames(s).positions)
        np.testing.assert_array_equal(merged.split_indices(s, "val"), base.split_indices(s, "val"))
    kept = merged.frames("cc_LB_close")
    assert kept.nframes == 2
    assert np.abs(kept.forces).max() <= ceiling
    np.testing.assert_allclose(np.sort(np.abs(kept.forces).max(axis=(1, 2))), np.sort(fmax)[:2], rtol=1e-6)

    # the floor alone: every frame but the one with B-O at 0.7 Å
    gen.to_dataset([labels], tmp_path / "floor.h5", pair_floor=True)
    np.testing.assert_array_equal(Dataset(tmp_path / "floor.h5").frames("cc_LB_close").positions,
                                  np.load(labels / "cc_LB.npz")["positions"][:4])
