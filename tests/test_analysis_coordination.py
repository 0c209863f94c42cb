"""Coordination kernels against ASE's neighbour list, crystals of known coordination, finite differences."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list

from glassjax import neighbors
from glassjax.analysis import bonds
from glassjax.analysis.coordination import (atom_masses, coordination_numbers, coordination_trajectory,
                                            network_properties, smooth_boron_n4, smooth_coordination_numbers)
from glassjax.analysis.io import read_trajectory
from glassjax.data.frames import Frames
from glassjax.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
FIX = Path(os.environ.get("GLASSJAX_FIXTURES", REPO.parent / "shared" / "fixtures"))
GLASS_561 = FIX / "structures" / "b2o3_glass_lammps" / "561.data"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"fixture {path} not found")
    return path


def ase_counts(atoms: Atoms, cutoffs: dict, type_map):
    """Reference (N, T) coordination from ASE's neighbour list with per-pair cutoffs."""
    cut = {}
    for (a, b), rc in cutoffs.items():
        if rc > 0:
            cut[(a, b)] = rc
            cut[(b, a)] = rc
    i, j = neighbor_list("ij", atoms, cut)
    sym = np.array(atoms.get_chemical_symbols())
    out = np.zeros((len(atoms), len(type_map)), int)
    for t, el in enumerate(type_map):
        np.add.at(out[:, t], i[sym[j] == el], 1)
    return out


def test_quartz_si4_all_bridging():
    frames = read_trajectory(_need(FIX / "structures" / "pymatgen" / "SiO2.json"))
    res = coordination_trajectory(frames, per_atom=True)
    assert res["frac_Si4"][0] == 1.0 and res["mean_cn_Si"][0] == 4.0
    assert res["frac_BO"][0] == 1.0 and res["frac_NBO"][0] == 0.0
    assert res["connectivity"][0] == 4.0  # Q4 everywhere
    atoms = frames.to_atoms(0)
    expected = atoms.get_masses().sum() / atoms.get_volume() * 1.66053906660
    assert res["density"][0] == pytest.approx(expected, rel=1e-10)
    ref = ase_counts(atoms, dict(bonds.DEFAULT_CUTOFFS), frames.elements)
    np.testing.assert_array_equal(res["cn"][0], ref)


def test_li2o_antifluorite_thin_cell():
    # 3-atom primitive cell, much thinner than twice the Li-O cutoff: Li has 4 O, O has 8 Li
    frames = read_trajectory(_need(FIX / "structures" / "pymatgen" / "Li2O.json"))
    res = coordination_trajectory(frames, per_atom=True)
    counts, tm = res["cn"][0], frames.elements
    li, o = tm.index("Li"), tm.index("O")
    sym = frames.species
    assert np.all(counts[sym == "Li", o] == 4)
    assert np.all(counts[sym == "O", li] == 8)
    ref = ase_counts(frames.to_atoms(0), dict(bonds.DEFAULT_CUTOFFS), tm)
    np.testing.assert_array_equal(counts, ref)
    assert res["mean_cn_Li"][0] == 4.0 and res["frac_O_free"][0] == 1.0


def test_glass_561_all_3b_and_matches_ase():
    frames = read_trajectory(_need(GLASS_561))
    res = coordination_trajectory(frames, per_atom=True)
    assert res["n_B"][0] == 680 and res["frac_B3"][0] == 1.0 and res["frac_B4"][0] == 0.0
    atoms = frames.to_atoms(0)
    assert res["density"][0] == pytest.approx(1.834, abs=1e-3)  # SOURCES.md
    ref = ase_counts(atoms, dict(bonds.DEFAULT_CUTOFFS), frames.elements)
    np.testing.assert_array_equal(res["cn"][0], ref)
    o = frames.elements.index("O")
    np.testing.assert_array_equal(res["n_formers"][0][frames.species == "O"], ref[frames.species == "O", 0])
    assert np.all(res["cn"][0][frames.species == "B", o] == 3)


def test_b2o3_dft_frames_vmapped_match_ase(b2o3_dir):
    d = b2o3_dir / "glass_300K_1GPa_NPT" / "train"
    tmap = (d / "type_map.raw").read_text().split()
    types = np.loadtxt(d / "type.raw", dtype=int)
    coord = np.load(d / "set.000" / "coord.npy")[:6].reshape(6, -1, 3)
    box = np.load(d / "set.000" / "box.npy")[:6].reshape(6, 3, 3)
    frames = Frames(species=np.array(tmap)[types], positions=coord, cells=box)
    res = coordination_trajectory(frames, cutoffs={"B-O": 1.9}, chunk=4)  # two chunks
    for k in range(6):
        atoms = frames.to_atoms(k)
        ref = ase_counts(atoms, {("B", "O"): 1.9}, ["B", "O"])
        bsel = frames.species == "B"
        osel = frames.species == "O"
        assert res["frac_B4"][k] == pytest.approx(np.mean(ref[bsel, 1] == 4))
        assert res["frac_B3"][k] == pytest.approx(np.mean(ref[bsel, 1] == 3))
        assert res["frac_NBO"][k] == pytest.approx(np.mean(ref[osel, 0] == 1))
        assert res["frac_O_tri"][k] == pytest.approx(np.mean(ref[osel, 0] >= 3))


def _tetra_b(extra_r):
    """One B with four O at 1.47 Å and a fifth at ``extra_r`` in a 12 Å box."""
    d = 1.47 / np.sqrt(3)
    pos = [[6, 6, 6], [6 + d, 6 + d, 6 + d], [6 - d, 6 - d, 6 + d], [6 - d, 6 + d, 6 - d], [6 + d, 6 - d, 6 - d],
           [6, 6, 6 + extra_r]]
    return Frames(species=["B", "O", "O", "O", "O", "O"], positions=np.array(pos)[None], cells=np.eye(3)[None] * 12)


def test_cutoffs_are_configurable():
    f = _tetra_b(2.1)
    assert coordination_trajectory(f)["frac_B4"][0] == 1.0  # fifth O beyond 2.0 Å
    # the cutoff matrix is a traced argument: one compiled kernel, several cutoff tables
    tm = f.elements
    sp = bonds.SpeciesIndex.from_type_map(tm)
    pos, cell = jnp.asarray(f.positions[0]), jnp.asarray(f.cells[0])
    nl = neighbors.build(pos, cell, bonds.neighbor_spec(pos, f.cells[0], 2.5))
    kernel = jax.jit(lambda cut: network_properties(pos, cell, jnp.asarray(f.types(tm)), nl, cut, sp,
                                                    jnp.asarray(atom_masses(f.species))))
    assert kernel(bonds.cutoff_matrix(tm, bonds.parse_cutoffs(["B-O=2.2"])))["frac_B_other"] == 1.0  # 5-fold
    assert kernel(bonds.cutoff_matrix(tm, bonds.parse_cutoffs({"O-B": 1.4})))["mean_cn_B"] == 0.0
    assert kernel(bonds.cutoff_matrix(tm, bonds.parse_cutoffs({("B", "O"): 1.5})))["mean_cn_B"] == 4.0
    with pytest.raises(ConfigError):
        bonds.parse_cutoffs(["B-O"])
    with pytest.raises(ConfigError):
        bonds.parse_cutoffs(["B-Q=2.0"])
    with pytest.raises(ConfigError):
        bonds.parse_cutoffs({"B-O": -1})


def _smooth_setup():
    rng = np.random.default_rng(3)
    f = _tetra_b(1.98)
    pos = f.positions[0] + rng.normal(0, 0.05, f.positions[0].shape)
    cell = f.cells[0]
    tm = ["B", "O"]
    cut = bonds.cutoff_matrix(tm)
    spec = bonds.neighbor_spec(pos, cell, 2.0 + 0.6)
    nl = neighbors.build(jnp.asarray(pos), jnp.asarray(cell), spec)
    return jnp.asarray(pos), jnp.asarray(cell), jnp.asarray(f.types(tm)), nl, cut, bonds.SpeciesIndex.from_type_map(tm)


def test_smooth_coordination_limit_and_gradients():
    pos, cell, types, nl, cut, sp = _smooth_setup()
    hard, soft = jax.jit(lambda p: (coordination_numbers(p, cell, types, nl, cut, 2),
                                    smooth_coordination_numbers(p, cell, types, nl, cut, 2, width=1e-3)))(pos)
    np.testing.assert_allclose(soft, hard, atol=1e-6)

    def n4(p, strain):
        f = jnp.eye(3) + strain
        return smooth_boron_n4(p @ f, cell @ f, types, nl, cut, sp, width=0.05)

    @jax.jit
    def f(p, strain):
        # smooth CN of the B atom plus a soft N4 with a wide step: both depend on the 5th O
        g = jnp.eye(3) + strain
        cn = smooth_coordination_numbers(p @ g, cell @ g, types, nl, cut, 2, width=0.05)
        return cn[0, 1] + smooth_boron_n4(p @ g, cell @ g, types, nl, cut, sp, width=0.05, cn_width=1.0)

    zero = jnp.zeros((3, 3))
    g_pos, g_eps = jax.jit(jax.grad(f, (0, 1)))(pos, zero)
    h = 1e-5
    for idx in [(5, 2), (1, 0), (0, 2)]:
        dp = jnp.zeros_like(pos).at[idx].set(h)
        fd = (f(pos + dp, zero) - f(pos - dp, zero)) / (2 * h)
        assert float(g_pos[idx]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9)
    for idx in [(2, 2), (0, 1)]:
        de = jnp.zeros((3, 3)).at[idx].set(h)
        fd = (f(pos, de) - f(pos, -de)) / (2 * h)
        assert float(g_eps[idx]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9)
    assert abs(float(g_pos[5, 2])) > 1e-2  # the 5th O near the cutoff matters


def test_padded_batch_vmap_equals_single():
    rng = np.random.default_rng(5)
    tm = ["B", "O"]
    cut = bonds.cutoff_matrix(tm)
    sp = bonds.SpeciesIndex.from_type_map(tm)
    a = _tetra_b(2.1)
    b = _tetra_b(1.9)
    pos_b = b.positions[0][:5] + rng.normal(0, 0.02, (5, 3))
    # batch of 2 padded to 6 atoms
    P = np.stack([a.positions[0], np.concatenate([pos_b, [[0.0, 0.0, 0.0]]])])
    C = np.stack([a.cells[0], b.cells[0] * 1.1])
    T = np.array([[0, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 0]])
    M = np.array([[True] * 6, [True] * 5 + [False]])
    spec = neighbors.NeighborSpec(2.0, 0.0, 8, (1, 1, 1))
    masses = jnp.asarray(np.where(T == 0, atom_masses(["B"])[0], atom_masses(["O"])[0]))

    def one(p, c, t, m, ms):
        nl = neighbors.build(p, c, spec, m)
        return network_properties(p, c, t, nl, cut, sp, ms, m)

    batch = jax.jit(jax.vmap(one))(jnp.asarray(P), jnp.asarray(C), jnp.asarray(T), jnp.asarray(M), masses)
    single = coordination_trajectory(Frames(species=["B", "O", "O", "O", "O"], positions=pos_b[None],
                                            cells=C[1][None]))
    for k in ("frac_B4", "mean_cn_B", "frac_NBO", "density"):
        assert float(batch[k][1]) == pytest.approx(float(single[k][0]), rel=1e-12)
    expect_density = a.to_atoms(0).get_masses().sum() / np.linalg.det(C[0]) * 1.66053906660
    assert float(batch["density"][0]) == pytest.approx(expect_density, rel=1e-12)
    assert masses.shape == (2, 6) and atom_masses(["B"])[0] == pytest.approx(10.811, abs=1e-3)


def test_cli_coordination(tmp_path):
    import csv

    from glassjax.cli import main

    src = _need(FIX / "structures" / "pymatgen" / "SiO2.json")
    out = tmp_path / "coord.csv"
    assert main(["analyze", "coordination", str(src), "--cutoff", "Si-O=2.0", "-o", str(out)]) == 0
    row = next(csv.DictReader(open(out)))
    assert float(row["frac_Si4"]) == 1.0 and float(row["frac_BO"]) == 1.0 and int(row["n_Si"]) == 3
    assert (tmp_path / "coord.png").stat().st_size > 0
    assert main(["analyze", "coordination", str(src), "--cutoff", "Si-O", "-o", str(out)]) == 2


def test_recipe_runner_summary(tmp_path):
    """analysis/network/run_network.py: per-run CSVs and mean/std over runs (numpy reference)."""
    import csv
    import importlib.util

    import ase.io

    src = _need(FIX / "structures" / "pymatgen" / "SiO2.json")
    base = read_trajectory(src).to_atoms(0)
    densities = []
    for k, scale in enumerate((1.0, 1.05)):
        atoms = base.copy()
        atoms.set_cell(atoms.cell[:] * scale, scale_atoms=True)
        ase.io.write(tmp_path / f"q{k}.extxyz", atoms, format="extxyz")
        densities.append(atoms.get_masses().sum() / atoms.get_volume() * 1.66053906660)
    (tmp_path / "recipe.toml").write_text(
        '[cutoffs]\n"Si-O" = 2.0\n[coordination]\n'
        '[[run]]\nlabel = "a"\ntrajectory = "q0.extxyz"\n[[run]]\nlabel = "b"\ntrajectory = "q1.extxyz"\n')
    spec = importlib.util.spec_from_file_location("run_network", REPO / "analysis" / "network" / "run_network.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main([str(tmp_path / "recipe.toml"), "-o", str(tmp_path / "out")]) == 0
    rows = {r["quantity"]: r for r in csv.DictReader(open(tmp_path / "out" / "summary.csv"))}
    assert float(rows["density"]["mean"]) == pytest.approx(np.mean(densities), rel=1e-5)
    assert float(rows["density"]["std"]) == pytest.approx(np.std(densities, ddof=1), rel=1e-4)
    assert float(rows["frac_Si4"]["mean"]) == 1.0 and rows["frac_Si4"]["n_runs"] == "2"
    assert (tmp_path / "out" / "b_coordination.png").exists()


def test_cell_list_matches_ase_triclinic_with_padding():
    """The cell-list search returns exactly ASE's pairs and image vectors (triclinic cell, padding)."""
    rng = np.random.default_rng(11)
    cell = np.array([[13.0, 0.0, 0.0], [4.0, 12.0, 0.0], [-3.0, 2.5, 12.5]])
    n = 300
    pos = rng.uniform(0, 1, (n, 3)) @ cell + rng.normal(0, 0.5, (n, 3))  # some atoms outside the cell
    spec = bonds.cell_list_spec(cell, n, 2.5)
    assert spec is not None and min(spec.grid) >= 3
    mask = np.ones(n, bool)
    mask[-20:] = False  # padding atoms
    nl = bonds.build_cell_list(jnp.asarray(pos), jnp.asarray(cell), spec, jnp.asarray(mask))
    assert not bool(nl.overflow)
    idx, img = np.asarray(nl.idx), np.rint(np.asarray(nl.image)).astype(int)
    got = {(i, int(idx[i, k]), tuple(img[i, k])) for i in range(n) for k in range(idx.shape[1]) if idx[i, k] < n}
    atoms = Atoms("X" * (n - 20), positions=pos[:-20], cell=cell, pbc=True)
    ii, jj, ss = neighbor_list("ijS", atoms, 2.5)
    # ASE's shift S refers to the positions as given: r_ij = r_j + S.cell - r_i; ours to the same
    ref = {(int(a), int(b), tuple(int(v) for v in sv)) for a, b, sv in zip(ii, jj, ss)}
    assert got == ref and len(ref) > 100
    # a cell too thin for 3 bins of 2.5 Å falls back to the dense multi-image search
    assert bonds.cell_list_spec(np.eye(3) * 7.0, 10, 2.5) is None
    assert isinstance(bonds.analysis_spec(pos[:10], np.eye(3) * 7.0, 2.5), neighbors.NeighborSpec)
