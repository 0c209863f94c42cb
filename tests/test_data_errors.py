"""Bad input: each case gives one DataError naming the file (and frame) and the problem,
and a failed conversion never damages an existing dataset."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from glassjax.data import (DataNotice, read_any, read_ase, read_deepmd, read_vasp, write_dataset,
                           Dataset)
from glassjax.errors import DataError


@pytest.fixture
def water_copy(tmp_path, test_data) -> Path:
    """A writable copy of the float32 two-set DeePMD water system."""
    dst = tmp_path / "water"
    shutil.copytree(test_data / "deepmd" / "water_deepmdkit_example" / "data_1", dst)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def _raises(fn, *args, match, path=None, frame=None, **kw) -> DataError:
    with pytest.raises(DataError, match=match) as info:
        fn(*args, **kw)
    err = info.value
    if path is not None:
        assert str(path) in str(err), f"message does not name {path}: {err}"
    if frame is not None:
        assert err.frame == frame and f"frame {frame}" in str(err)
    return err


# ------------------------------------------------------------------ truncated VASP files
def test_outcar_cut_inside_force_block(tmp_path, test_data):
    src = test_data / "vasp" / "dpdata_h2o_md10" / "OUTCAR.h2o.md.10"
    lines = src.read_text().splitlines(keepends=True)
    starts = [i for i, ln in enumerate(lines) if "TOTAL-FORCE (eV/Angst)" in ln]
    cut = tmp_path / "OUTCAR"
    cut.write_text("".join(lines[: starts[3] + 4]))  # three full steps, then half a force block
    _raises(read_vasp, cut, match="truncated inside an ionic step", path=cut, frame=3)
    # cut before any ionic step finished
    cut.write_text("".join(lines[: starts[0] - 5]))
    _raises(read_any, cut, match="no complete ionic step", path=cut)


def test_outcar_stopped_between_steps_keeps_complete_steps(tmp_path, test_data):
    src = test_data / "vasp" / "dpdata_h2o_md10" / "OUTCAR.h2o.md.10"
    text = src.read_text()
    lines = text.splitlines(keepends=True)
    starts = [i for i, ln in enumerate(lines) if "TOTAL-FORCE (eV/Angst)" in ln]
    cut = tmp_path / "OUTCAR"
    cut.write_text("".join(lines[: starts[4] - 30]))  # inside the electronic steps of step 5
    with pytest.warns(DataNotice, match="did not finish"):
        (fr,) = read_vasp(cut)
    (full,) = read_vasp(src)
    assert fr.nframes == 4
    np.testing.assert_array_equal(fr.energy, full.energy[:4])


def test_truncated_vasprun_xml(tmp_path, test_data):
    src = test_data / "vasp" / "dpdata_h2o_md10" / "vasprun.h2o.md.10.xml"
    cut = tmp_path / "vasprun.xml"
    cut.write_bytes(src.read_bytes()[:5000])  # before the first ionic step
    _raises(read_vasp, cut, match="VASP vasprun.xml", path=cut)


@pytest.mark.parametrize("name", ["OUTCAR.h2o.md.10", "vasprun.h2o.md.10.xml"])
def test_unconverged_electronic_steps_dropped(tmp_path, test_data, name):
    src = test_data / "vasp" / "dpdata_h2o_md10" / name
    text = src.read_text()
    # reference: electronic iterations per ionic step, counted from the OUTCAR's text
    outcar = (test_data / "vasp" / "dpdata_h2o_md10" / "OUTCAR.h2o.md.10").read_text()
    segments = outcar.split("TOTAL-FORCE (eV/Angst)")[:-1]
    n_iter = [len(re.findall(r"Iteration\s+\d+\(", seg)) for seg in segments]  # headers per step
    nelm = 10
    expect_kept = [k for k, n in enumerate(n_iter) if n < nelm]
    assert 0 < len(expect_kept) < 10
    if name.startswith("OUTCAR"):
        mod = re.sub(r"NELM   =\s+60;", f"NELM   =     {nelm};", text, count=1)
    else:
        mod = re.sub(r'name="NELM">\s+60<', f'name="NELM">    {nelm}<', text)
    assert mod != text
    f = tmp_path / name
    f.write_text(mod)
    with pytest.warns(DataNotice, match=f"dropped {10 - len(expect_kept)} ionic step"):
        (fr,) = read_vasp(f)
    (full,) = read_vasp(src)
    np.testing.assert_array_equal(fr.energy, full.energy[expect_kept])
    assert [int(s.rsplit("@", 1)[1]) for s in fr.source] == expect_kept
    (kept,) = read_vasp(f, keep_unconverged=True)
    assert kept.nframes == 10


# ------------------------------------------------------------------ NaN / inf labels
def test_nan_force_names_file_and_frame(water_copy):
    f = water_copy / "set.001" / "force.npy"
    arr = np.load(f)
    arr[7, 11] = np.nan
    np.save(f, arr)
    _raises(read_deepmd, water_copy, match="force contains NaN or inf", path=f, frame=7)


def test_inf_energy_in_extxyz(tmp_path, test_data):
    lines = (test_data / "extxyz" / "sevennet_hfo2.extxyz").read_text().splitlines(keepends=True)
    n = int(lines[0])
    k = n + 3  # header line of frame 1
    lines[k] = re.sub(r"\b(free_energy|energy)=\S+", r"\1=inf", lines[k])
    assert lines[k].count("=inf") == 2
    bad = tmp_path / "bad.extxyz"
    bad.write_text("".join(lines))
    _raises(read_ase, bad, match="energy contains NaN or inf", path=bad, frame=1)


# ------------------------------------------------------------------ shape mismatches
def test_coord_and_force_frame_counts_differ(water_copy):
    f = water_copy / "set.000" / "force.npy"
    np.save(f, np.load(f)[:-1])
    _raises(read_deepmd, water_copy, match="holds 79 frames but coord.npy holds 80", path=f)


def test_natoms_mismatch_type_raw(water_copy):
    (water_copy / "type.raw").write_text("\n".join(["0"] * 191) + "\n")
    _raises(read_deepmd, water_copy, match="type.raw lists 191 atoms", path=water_copy / "set.000" / "coord.npy")


def test_sets_with_different_labels(water_copy):
    (water_copy / "set.001" / "energy.npy").unlink()
    _raises(read_deepmd, water_copy, match="carries labels", path=water_copy / "set.001")


# ------------------------------------------------------------------ type maps
def test_unknown_element_in_type_map(water_copy):
    (water_copy / "type_map.raw").write_text("O\nXx\n")
    _raises(read_deepmd, water_copy, match="unknown element 'Xx'", path=water_copy / "type_map.raw")


def test_missing_type_map(water_copy):
    (water_copy / "type_map.raw").unlink()
    _raises(read_deepmd, water_copy, match="is missing, so the integer types", path="type_map.raw")
    # the documented way out gives the same species as the original file did
    (fr,) = read_deepmd(water_copy, type_map=["O", "H"])
    assert (fr.species == "O").sum() == 64


def test_type_index_beyond_type_map(water_copy):
    (water_copy / "type_map.raw").write_text("O\n")
    _raises(read_deepmd, water_copy, match="uses atom type 1", path="type.raw")


# ------------------------------------------------------------------ empty and mislabelled
def test_empty_set_folder(water_copy):
    (water_copy / "set.002").mkdir()
    _raises(read_deepmd, water_copy, match="empty set", path=water_copy / "set.002")


def test_zero_frame_set(water_copy):
    for k in ("box", "coord", "energy", "force"):
        f = water_copy / "set.001" / f"{k}.npy"
        np.save(f, np.load(f)[:0])
    _raises(read_deepmd, water_copy, match="empty set", path="set.001")


def test_garbage_named_outcar(tmp_path):
    f = tmp_path / "OUTCAR"
    f.write_text("this is not a VASP file\n" * 20)
    _raises(read_any, f, match="not a VASP OUTCAR or vasprun.xml", path=f)


def test_garbage_named_npy(water_copy):
    f = water_copy / "set.000" / "coord.npy"
    f.write_text("1 2 3\n")
    _raises(read_deepmd, water_copy, match="not a readable .npy", path=f)


def test_outcar_named_extxyz(tmp_path, test_data):
    f = tmp_path / "data.extxyz"
    shutil.copyfile(test_data / "vasp" / "dpdata_Ti-O-Ti-v6" / "OUTCAR", f)
    _raises(read_any, f, match="cannot be read", path=f)


def test_structure_without_labels(tmp_path):
    f = tmp_path / "s.extxyz"
    f.write_text('1\nLattice="3 0 0 0 3 0 0 0 3" Properties=species:S:1:pos:R:3 pbc="T T T"\nSi 0 0 0\n')
    _raises(read_ase, f, match="neither energies nor forces", path=f)


def test_not_a_dataset(tmp_path):
    f = tmp_path / "x.h5"
    f.write_text("no hdf5")
    _raises(Dataset, f, match="not a readable HDF5", path=f)


# ------------------------------------------------------------------ atomic output
def test_failed_convert_leaves_existing_output_intact(tmp_path, test_data, water_copy):
    out = tmp_path / "data.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataNotice)
        good = read_any(test_data / "vasp" / "dpdata_h2o_md10" / "vasprun.h2o.md.10.xml")
    write_dataset(out, good)
    before = out.read_bytes()
    # a valid system followed by one with NaN labels: nothing may be written
    fr = read_deepmd(water_copy)[0]
    fr.forces[3, 0, 0] = np.inf
    with pytest.raises(DataError, match="frame 3"):
        write_dataset(out, good + [fr])
    with pytest.raises(DataError, match="frame 3"):
        write_dataset(out, [fr], append=True)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".data.h5")] == []
    # an error raised while writing (bad split fraction) also leaves it intact
    with pytest.raises(Exception):
        write_dataset(out, good, val_fraction=1.5)
    assert out.read_bytes() == before
    assert Dataset(out).nframes == 10


def test_crash_while_writing_leaves_no_partial_file(tmp_path, test_data, monkeypatch):
    import glassjax.data.dataset as dsmod

    out = tmp_path / "data.h5"
    systems = read_ase(test_data / "extxyz" / "sevennet_hfo2.extxyz")
    write_dataset(out, systems)
    before = out.read_bytes()
    real = dsmod._write_system
    calls = []

    def crash_after_first(grp, *args):
        calls.append(grp.name)
        real(grp, *args)
        if len(calls) == 2:
            raise KeyboardInterrupt  # e.g. Ctrl-C halfway through
    monkeypatch.setattr(dsmod, "_write_system", crash_after_first)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataNotice)
        vasp = read_any(test_data / "vasp")
    for append in (True, False):
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            write_dataset(out, vasp, append=append)
        assert out.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["data.h5"]
    new = tmp_path / "new.h5"
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        write_dataset(new, vasp)
    assert not new.exists()
