"""The HDF5 dataset (layout, split, append) and the padded batch loader.

Stored arrays are read back with plain h5py and compared with the fixture files loaded by
numpy (and, for VASP, with ASE's reader), so the references do not go through glassjax.
"""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

from glassjax.data import (BatchLoader, DataNotice, Dataset, read_any, read_dataset, read_frames, split_mask,
                           summarize, write_dataset)


def _quiet_read(*paths):
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataNotice)
        for p in paths:
            out += read_any(p)
    return out


@pytest.fixture(scope="module")
def all_fixture_systems(test_data):
    return _quiet_read(test_data / "deepmd", test_data / "vasp", test_data / "extxyz")


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory, all_fixture_systems):
    out = tmp_path_factory.mktemp("ds") / "data.h5"
    write_dataset(out, all_fixture_systems, val_fraction=0.1, seed=0)
    return out


def _find_group(f, source_substring):
    hits = [g for g in f["systems"].values()
            if any(source_substring in s for s in g["source"].asstr()[()][:1])]
    assert len(hits) == 1, source_substring
    return hits[0]


def test_every_format_in_one_file_equals_source_arrays(dataset_file, test_data):
    import ase.io

    with h5py.File(dataset_file, "r") as f:
        assert f.attrs["format"] == "glassjax-dataset" and f.attrs["format_version"] == 1
        assert len(f["systems"]) == 6
        # DeePMD npy, two float32 sets, no virial
        d = test_data / "deepmd" / "water_deepmdkit_example" / "data_1"
        g = _find_group(f, "data_1/set.000@")
        coord = np.concatenate([np.load(d / s / "coord.npy") for s in ("set.000", "set.001")])
        energy = np.concatenate([np.load(d / s / "energy.npy") for s in ("set.000", "set.001")])
        np.testing.assert_array_equal(g["positions"][()].reshape(160, -1), coord.astype(np.float64))
        np.testing.assert_array_equal(g["energy"][()], energy.astype(np.float64))
        assert "virial" not in g and g.attrs["labels"] == "energy,forces"
        tmap = (d / "type_map.raw").read_text().split()
        assert list(g["species"].asstr()[()]) == [tmap[t] for t in np.loadtxt(d / "type.raw", dtype=int)]
        # DeePMD with virial
        d = test_data / "deepmd" / "water_deepmdkit_dplr_virial"
        g = _find_group(f, "water_deepmdkit_dplr_virial/set.000@")
        np.testing.assert_array_equal(g["virial"][()].reshape(30, 9),
                                      np.load(d / "set.000" / "virial.npy").astype(np.float64))
        np.testing.assert_array_equal(g["forces"][()].reshape(30, -1),
                                      np.load(d / "set.000" / "force.npy").astype(np.float64))
        # VASP (vasprun.xml chosen over the OUTCAR of the same run) against ASE directly
        x = test_data / "vasp" / "dpdata_h2o_md10" / "vasprun.h2o.md.10.xml"
        g = _find_group(f, "vasprun.h2o.md.10.xml@")
        images = ase.io.read(x, index=":")
        np.testing.assert_array_equal(g["energy"][()], [a.get_potential_energy(force_consistent=True) for a in images])
        np.testing.assert_array_equal(g["forces"][()], [a.get_forces(apply_constraint=False) for a in images])
        assert g.attrs["vasp_energy"] == "free energy TOTEN"
        # extxyz
        g = _find_group(f, "sevennet_hfo2.extxyz@")
        images = ase.io.read(test_data / "extxyz" / "sevennet_hfo2.extxyz", index=":")
        np.testing.assert_array_equal(g["positions"][()], [a.positions for a in images])
        assert g.attrs["formula"] == "O8Hf4" and g.attrs["natoms"] == 12 and g.attrs["nframes"] == 2
        # per-frame provenance and units
        for g in f["systems"].values():
            assert len(g["source"]) == g.attrs["nframes"] == g["positions"].shape[0]
        assert '"forces": "eV/' in f.attrs["units"]


def test_dataset_roundtrip_to_frames(dataset_file, all_fixture_systems):
    back = read_dataset(dataset_file)
    assert [fr.name for fr in back] == Dataset(dataset_file).systems
    by_formula = {fr.formula: fr for fr in back}
    for fr in all_fixture_systems:
        b = by_formula[fr.formula]
        for key in ("positions", "cells", "energy", "forces", "virial"):
            a, c = getattr(fr, key), getattr(b, key)
            assert (a is None) == (c is None)
            if a is not None:
                np.testing.assert_array_equal(a, c)
        assert list(b.species) == list(fr.species) and b.source == fr.source
        one = read_frames(dataset_file, b.name, split="val")
        np.testing.assert_array_equal(one.positions, fr.positions[Dataset(dataset_file).split_indices(b.name, "val")])


def test_split_reproducible_and_complete(dataset_file, tmp_path, all_fixture_systems):
    ds = Dataset(dataset_file)
    for name in ds.systems:
        n = ds.info(name)["nframes"]
        tr, va = ds.split_indices(name, "train"), ds.split_indices(name, "val")
        assert np.intersect1d(tr, va).size == 0 and np.union1d(tr, va).size == n
        expect = 0 if n == 1 else max(1, round(0.1 * n))
        assert va.size == expect
    # the same seed gives the same split, also when written alone
    water = [fr for fr in all_fixture_systems if fr.natoms == 192]
    other = tmp_path / "alone.h5"
    write_dataset(other, water, seed=0)
    with h5py.File(dataset_file) as f, h5py.File(other) as g:
        name = Dataset(other).systems[0]
        np.testing.assert_array_equal(f["systems"][name]["val_mask"][()], g["systems"][name]["val_mask"][()])
    write_dataset(other, water, seed=1)
    with h5py.File(dataset_file) as f, h5py.File(other) as g:
        assert not np.array_equal(f["systems"][name]["val_mask"][()], g["systems"][name]["val_mask"][()])
    m = split_mask(160, 0.25, 3, "x")
    assert m.sum() == 40 and np.array_equal(m, split_mask(160, 0.25, 3, "x"))


def test_append_never_duplicates_names_and_keeps_existing(tmp_path, all_fixture_systems):
    out = tmp_path / "d.h5"
    first = all_fixture_systems[:2]
    names1 = write_dataset(out, first, val_fraction=0.2, seed=5)
    with h5py.File(out) as f:
        before = {n: f["systems"][n]["positions"][()] for n in names1}
        masks = {n: f["systems"][n]["val_mask"][()] for n in names1}
    # same system names with other frames, one exact repeat, and one new system
    more = [first[0].select(slice(0, 5)), first[1].select([0, 2, 4]), first[0], all_fixture_systems[2]]
    with pytest.warns(DataNotice, match="same data as system"):
        names2 = write_dataset(out, more, append=True)
    assert len(names2) == 3 and not set(names1) & set(names2)
    assert names2[:2] == [names1[0] + "_1", names1[1] + "_1"]
    ds = Dataset(out)
    assert len(ds) == 5
    assert ds.nframes == sum(fr.nframes for fr in first) + 5 + 3 + all_fixture_systems[2].nframes
    with h5py.File(out) as f:
        assert f.attrs["val_fraction"] == 0.2 and f.attrs["seed"] == 5  # kept from the file
        for n in names1:
            np.testing.assert_array_equal(f["systems"][n]["positions"][()], before[n])
            np.testing.assert_array_equal(f["systems"][n]["val_mask"][()], masks[n])
        assert f["systems"][names2[2]].attrs["val_fraction"] == 0.2
        np.testing.assert_array_equal(f["systems"][names2[1]]["positions"][()], first[1].positions[[0, 2, 4]])


def test_summarize_ranges(dataset_file, test_data):
    s = summarize(dataset_file)
    row = [r for r in s["systems"] if r["formula"] == "H256O128"][0]
    f = np.load(test_data / "deepmd" / "water_deepmdkit_dplr_virial" / "set.000" / "force.npy").reshape(30, -1, 3)
    e = np.load(test_data / "deepmd" / "water_deepmdkit_dplr_virial" / "set.000" / "energy.npy") / 384
    fm = np.linalg.norm(f.astype(np.float64), axis=-1)
    assert row["fmag"] == pytest.approx((fm.min(), fm.max()))
    assert row["e_per_atom"] == pytest.approx((e.min(), e.max()))
    assert s["total"]["nframes"] == 160 + 30 + 10 + 1 + 2 + 2
    assert s["total"]["elements"] == ["H", "B", "O", "Ti", "Hf"]


# ----------------------------------------------------------------------------- B2O3 (in place)
def test_b2o3_b_o_and_o_b_merge_into_one_type_map(b2o3_dir, tmp_path):
    glass = b2o3_dir / "glass_300K_1GPa_NPT" / "val"
    crystal = b2o3_dir / "alpha_crystal_NVT" / "val"
    out = tmp_path / "b2o3.h5"
    write_dataset(out, read_any(glass) + read_any(crystal), val_fraction=0.0)
    loader = BatchLoader(out, batch_size=8, split=None, shuffle=False)
    assert loader.type_map == ["B", "O"] and loader.nmax == 480
    batch = loader.next_batch()
    for k in range(batch["natoms"].size):
        if not batch["frame_mask"][k]:
            continue
        src = glass if loader.systems[batch["system"][k]].startswith("glass") else crystal
        tmap = (src / "type_map.raw").read_text().split()
        orig = np.array(tmap)[np.loadtxt(src / "type.raw", dtype=int)]
        n = batch["natoms"][k]
        assert list(np.array(loader.type_map)[batch["types"][k, :n]]) == list(orig)
        coord = np.load(src / "set.000" / "coord.npy")[batch["frame"][k]].reshape(-1, 3)
        np.testing.assert_array_equal(batch["positions"][k, :n], coord)
    assert set(batch["natoms"][batch["frame_mask"]]) == {265, 480}


# ----------------------------------------------------------------------------- loader
def test_loader_batches_equal_file_and_cover_split(dataset_file):
    loader = BatchLoader(dataset_file, batch_size=16, split="train", seed=3)
    ds = Dataset(dataset_file)
    assert loader.nmax == ds.max_natoms == 384
    seen = []
    shapes = set()
    with h5py.File(dataset_file) as f:
        for batch in loader:  # one epoch
            shapes.add(tuple(batch["positions"].shape))
            for k in np.flatnonzero(batch["frame_mask"]):
                name = loader.systems[batch["system"][k]]
                g = f["systems"][name]
                i = int(batch["frame"][k])
                assert not g["val_mask"][i]
                n = g.attrs["natoms"]
                assert batch["natoms"][k] == n and batch["atom_mask"][k].sum() == n
                np.testing.assert_array_equal(batch["positions"][k, :n], g["positions"][i])
                np.testing.assert_array_equal(batch["cells"][k], g["cells"][i])
                assert (batch["types"][k, n:] == -1).all() and (batch["types"][k, :n] >= 0).all()
                assert (batch["forces"][k, n:] == 0).all()
                assert batch["has_virial"][k] == ("virial" in g)
                if "virial" in g:
                    np.testing.assert_array_equal(batch["virial"][k], g["virial"][i])
                else:
                    assert (batch["virial"][k] == 0).all()
                assert batch["energy"][k] == g["energy"][i]
                species = g["species"].asstr()[()]
                assert list(np.array(loader.type_map)[batch["types"][k, :n]]) == list(species)
                seen.append((name, i))
    assert shapes == {(16, 384, 3)}
    assert loader.epoch == 1 and loader.step == 0
    expected = [(n, int(i)) for n in ds.systems for i in ds.split_indices(n, "train")]
    assert sorted(seen) == sorted(expected)  # each training frame exactly once


def test_loader_filler_frames_and_drop_last(dataset_file):
    loader = BatchLoader(dataset_file, batch_size=50, split="train", seed=0)
    batches = list(loader)
    n_train = Dataset(dataset_file).nframes - sum(
        Dataset(dataset_file).info(n)["n_val"] for n in Dataset(dataset_file).systems)
    assert len(batches) == -(-n_train // 50)
    last = batches[-1]
    n_real = n_train - 50 * (len(batches) - 1)
    assert last["frame_mask"].sum() == n_real
    for key in ("has_energy", "has_forces", "has_virial"):
        assert not last[key][~last["frame_mask"]].any()
    assert np.isfinite(last["positions"]).all() and (np.abs(np.linalg.det(last["cells"])) > 1).all()
    dropped = BatchLoader(dataset_file, batch_size=50, split="train", drop_last=True)
    assert dropped.steps_per_epoch() == n_train // 50
    assert all(b["frame_mask"].all() for b in dropped)


def test_loader_state_resume_gives_same_order(dataset_file):
    a = BatchLoader(dataset_file, batch_size=7, split="train", seed=11)
    ref = [a.next_batch() for _ in range(40)]  # spans several epochs
    b = BatchLoader(dataset_file, batch_size=7, split="train", seed=11)
    for _ in range(13):
        b.next_batch()
    state = b.state_dict()
    c = BatchLoader(dataset_file, batch_size=7, split="train", seed=11)
    c.load_state_dict(state)
    for k in range(13, 40):
        got = c.next_batch()
        for key in ("system", "frame", "positions", "energy"):
            np.testing.assert_array_equal(got[key], ref[k][key])
    e0 = [tuple(zip(x["system"], x["frame"])) for x in ref[: a.steps_per_epoch(0)]]
    other = BatchLoader(dataset_file, batch_size=7, split="train", seed=12)
    assert [tuple(zip(x["system"], x["frame"])) for x in list(other)] != e0


def test_loader_fixed_shapes_compile_once(dataset_file):
    import jax
    import jax.numpy as jnp

    traces = []

    @jax.jit
    def masked_force_sums(batch):
        traces.append(1)  # runs only while tracing
        w = batch["atom_mask"][..., None] * batch["has_forces"][:, None, None]
        return jnp.sum(w * batch["forces"] ** 2), 3 * jnp.sum(w[..., 0])

    loader = BatchLoader(dataset_file, batch_size=8, split="val")
    sums = [masked_force_sums({k: batch[k] for k in ("atom_mask", "has_forces", "forces")})
            for batch in loader]
    assert len(traces) == 1 and len(sums) == loader.steps_per_epoch(0) > 1
    # the masked sums over the val split equal numpy's over the stored forces
    fr = Dataset(dataset_file).all_frames("val")
    allf = np.concatenate([f.forces.reshape(-1) for f in fr if f.forces is not None])
    assert sum(float(a) for a, _ in sums) == pytest.approx(np.sum(allf ** 2), rel=1e-12)
    assert sum(float(b) for _, b in sums) == allf.size


def test_loader_bucket_mode(dataset_file):
    loader = BatchLoader(dataset_file, batch_size=4, split=None, bucket=True, seed=1)
    sizes = set()
    total = 0
    for batch in loader:
        real = batch["natoms"][batch["frame_mask"]]
        assert len(set(real)) == 1 and batch["positions"].shape[1] == real[0]
        sizes.add(int(real[0]))
        total += real.size
    assert sizes == {6, 8, 12, 14, 192, 384} and total == Dataset(dataset_file).nframes


def test_loader_composition_buckets_sort_atoms_with_their_labels(dataset_file):
    from dataclasses import replace

    ds = Dataset(dataset_file)
    frames = ds.all_frames(None)
    # a copy of the largest system with its atoms in a random order, so sorting has work to do
    big = max(frames, key=lambda f: f.natoms)
    perm = np.random.default_rng(0).permutation(big.natoms)
    shuffled = replace(big, species=big.species[perm], positions=big.positions[:, perm],
                       forces=None if big.forces is None else big.forces[:, perm], name=big.name + "_shuffled")
    frames = frames + [shuffled]
    loader = BatchLoader(frames, batch_size=3, bucket="composition", seed=2)
    tm = loader.type_map
    seen = []
    for batch in loader:
        real = np.flatnonzero(batch["frame_mask"])
        # one composition, sorted by type, unpadded: the same types row in every frame
        assert np.all(batch["types"] == batch["types"][0]) and np.all(np.diff(batch["types"][0]) >= 0)
        assert batch["atom_mask"].all() and batch["positions"].shape[1] == batch["natoms"][0]
        for k in real:
            s, i = int(batch["system"][k]), int(batch["frame"][k])
            fr = frames[s]
            seen.append((s, i))
            # each atom keeps its own position and force: compare the (type, x, F) rows as sets
            mine = np.column_stack([batch["types"][k], batch["positions"][k]] +
                                   ([batch["forces"][k]] if fr.forces is not None else []))
            ref = np.column_stack([fr.types(tm), fr.positions[i]] + ([fr.forces[i]] if fr.forces is not None else []))
            np.testing.assert_array_equal(mine[np.lexsort(mine.T[::-1])], ref[np.lexsort(ref.T[::-1])])
    assert sorted(seen) == sorted((s, i) for s, f in enumerate(frames) for i in range(f.nframes))
    from glassjax.errors import GlassJaxError

    with pytest.raises(GlassJaxError, match="bucket"):
        BatchLoader(frames, batch_size=3, bucket="by_size")


def test_loader_type_map_errors(dataset_file):
    from glassjax.errors import GlassJaxError

    with pytest.raises(GlassJaxError, match="not in the type map"):
        BatchLoader(dataset_file, batch_size=2, type_map=["O", "H"])
    with pytest.raises(GlassJaxError, match="nmax"):
        BatchLoader(dataset_file, batch_size=2, nmax=100)
    wide = BatchLoader(dataset_file, batch_size=2, type_map=["Li", "H", "B", "O", "Si", "Ti", "Hf"],
                       dtype=np.float32, shuffle=False)
    assert wide.type_map[0] == "Li"
    batch = wide.next_batch()
    assert batch["positions"].dtype == np.float32 and batch["types"].dtype == np.int32
    fr = read_frames(dataset_file, wide.systems[batch["system"][0]])
    n = fr.natoms
    i = batch["frame"][0]
    np.testing.assert_array_equal(batch["positions"][0, :n], fr.positions[i].astype(np.float32))
    assert list(np.array(wide.type_map)[batch["types"][0, :n]]) == list(fr.species)
