"""Force histograms on B along the deformation axis, split by 3B/4B."""

from __future__ import annotations

import numpy as np
import pytest

from glassjax.analysis import force_hist
from glassjax.data.frames import Frames


def test_histograms_match_numpy_per_class_and_frame():
    rng = np.random.default_rng(0)
    nf, n = 4, 50
    forces = rng.normal(scale=1.5, size=(nf, n, 3))
    classes = rng.integers(-1, 2, size=(nf, n))  # per-frame classes (3B may turn into 4B)
    edges = np.linspace(0, 4, 17)
    out = force_hist.force_histograms(forces, classes, axis="y", edges=edges)
    for f in range(nf):
        for c in range(2):
            vals = np.abs(forces[f, classes[f] == c, 1])
            h, _ = np.histogram(vals, bins=edges)
            np.testing.assert_array_equal(out["counts"][f, c], h)
            assert out["n"][f, c] == vals.size
            assert out["mean"][f, c] == pytest.approx(vals.mean())
    # signed component along an oblique axis
    ax = np.array([1.0, 1.0, 0.0])
    edges2 = np.linspace(-5, 5, 21)
    out2 = force_hist.force_histograms(forces, classes[0], axis=ax, edges=edges2, absolute=False)
    comp = forces @ (ax / np.sqrt(2))
    for f in range(nf):
        h, _ = np.histogram(comp[f, classes[0] == 1], bins=edges2)
        np.testing.assert_array_equal(out2["counts"][f, 1], h)


def _unit(rng, k):
    v = rng.normal(size=(k, 3))
    return v / np.linalg.norm(v, axis=1)[:, None]


def test_boron_classes_from_coordination_on_built_units():
    # isolated BO3 and BO4 units far apart in a big cell: 3B / 4B by construction
    species, pos = [], []
    centres = np.array([[3, 3, 3], [3, 10, 3], [10, 3, 10], [10, 10, 10]], float)
    ncoord = [3, 4, 4, 3]
    for c, k in zip(centres, ncoord):
        species.append("B")
        pos.append(c)
        dirs = np.array([[1, 0, 0], [-0.5, 0.866, 0], [-0.5, -0.866, 0]]) if k == 3 else \
            np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
        for d in dirs:
            species.append("O")
            pos.append(c + (1.37 if k == 3 else 1.47) * d)
    species.append("Li")
    pos.append([6.5, 6.5, 6.5])
    pos = np.array(pos)
    cell = np.eye(3) * 14.0
    frames = Frames(species=species, positions=np.stack([pos, pos + 0.01]), cells=np.stack([cell, cell]))
    cls = force_hist.boron_classes(frames)
    expect = np.full(len(species), -1)
    b_idx = [i for i, s in enumerate(species) if s == "B"]
    expect[b_idx] = [0, 1, 1, 0]
    np.testing.assert_array_equal(cls, np.stack([expect, expect]))


def test_bad_axis_is_config_error():
    from glassjax.errors import ConfigError

    with pytest.raises(ConfigError, match="axis"):
        force_hist.axis_vector("w")
    with pytest.raises(ConfigError, match="zero"):
        force_hist.axis_vector([0, 0, 0])


def test_b2o3_glass_fixture_all_boron_trigonal_and_dft_force_histograms(b2o3_dir):
    """Real CP2K B2O3 glass (read in place, never copied): every B is 3B by an independent ASE
    neighbour count, and the histograms of the DFT forces match numpy's."""
    from ase import Atoms
    from ase.neighborlist import neighbor_list

    d = b2o3_dir / "glass_300K_1GPa_NPT" / "val"
    type_map = (d / "type_map.raw").read_text().split()
    types = np.loadtxt(d / "type.raw", dtype=int)
    n = types.size
    pos = np.load(d / "set.000" / "coord.npy").reshape(-1, n, 3)
    box = np.load(d / "set.000" / "box.npy").reshape(-1, 3, 3)
    forces = np.load(d / "set.000" / "force.npy").reshape(-1, n, 3)
    species = np.array(type_map)[types]
    frames = Frames(species=species, positions=pos, cells=box, forces=forces)
    cls = force_hist.boron_classes(frames)
    for f in range(frames.nframes):
        atoms = Atoms(symbols=list(species), positions=pos[f], cell=box[f], pbc=True)
        i, j = neighbor_list("ij", atoms, 2.0)
        cn = np.bincount(i[(species[i] == "B") & (species[j] == "O")], minlength=n)
        ref = np.where((species == "B") & (cn == 3), 0, np.where((species == "B") & (cn == 4), 1, -1))
        np.testing.assert_array_equal(cls[f], ref)
    assert np.all(cls[:, species == "B"] == 0)  # B2O3 glass at 1 GPa: all trigonal
    out = force_hist.force_histograms(forces, cls, axis="z")
    h, _ = np.histogram(np.abs(forces[0, cls[0] == 0, 2]), bins=out["edges"])
    np.testing.assert_array_equal(out["counts"][0, 0], h)
    assert out["counts"][:, 1].sum() == 0


def test_cli_force_hist_per_frame_means(tmp_path):
    import csv

    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    from glassjax.cli import main

    rng = np.random.default_rng(2)
    # one BO3 and one BO4 unit
    species = ["B", "O", "O", "O", "B", "O", "O", "O", "O"]
    pos = [[3, 3, 3], [4.37, 3, 3], [2.315, 4.186, 3], [2.315, 1.814, 3], [9, 9, 9]]
    pos += list(np.array([9, 9, 9]) + 1.47 * np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3))
    pos = np.array(pos, float)
    images, forces = [], rng.normal(size=(3, 9, 3))
    for f in range(3):
        at = Atoms(symbols=species, positions=pos, cell=np.eye(3) * 13, pbc=True)
        at.calc = SinglePointCalculator(at, forces=forces[f], energy=0.0)
        images.append(at)
    write(tmp_path / "t.extxyz", images)
    assert main(["analyze", "force-hist", str(tmp_path / "t.extxyz"), "--axis", "x", "-o", str(tmp_path / "fh"),
                 "--no-progress"]) == 0
    rows = list(csv.DictReader(line for line in (tmp_path / "fh.csv").read_text().splitlines()
                               if not line.startswith("#")))
    for f, r in enumerate(rows):
        assert (int(r["n_3B"]), int(r["n_4B"])) == (1, 1)
        assert float(r["mean_3B_eV_A"]) == pytest.approx(abs(forces[f, 0, 0]), rel=1e-6)
        assert float(r["mean_4B_eV_A"]) == pytest.approx(abs(forces[f, 4, 0]), rel=1e-6)
    assert (tmp_path / "fh_hist.csv").exists() and (tmp_path / "fh.png").exists()
