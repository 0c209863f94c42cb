"""``glassjax data convert`` / ``glassjax data info`` through ``glassjax.cli.main``."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from glassjax.cli import main


def test_convert_every_format_then_info(tmp_path, test_data, capsys):
    out = tmp_path / "data.h5"
    rc = main(["data", "convert", str(test_data / "vasp"), str(test_data / "extxyz"),
               str(test_data / "deepmd"), "-o", str(out), "--val-fraction", "0.2", "--seed", "4"])
    assert rc == 0
    cap = capsys.readouterr()
    assert "6 systems, 205 frames" in cap.out
    assert "note:" in cap.err and "atomic_dipole.npy" in cap.err  # notices, not tracebacks
    # frame counts straight from the source files
    n_deepmd = sum(np.load(p).shape[0] for p in (test_data / "deepmd").rglob("energy.npy"))
    with h5py.File(out) as f:
        nframes = sum(g.attrs["nframes"] for g in f["systems"].values())
        assert f.attrs["seed"] == 4 and f.attrs["val_fraction"] == 0.2
    assert nframes == n_deepmd + 10 + 1 + 2 + 2 == 205

    assert main(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "total: 6 systems, 205 frames" in text
    for formula in ("H128O64", "H256O128", "B8O6", "H4O2", "O2Ti6", "O8Hf4"):
        assert formula in text
    e = np.load(test_data / "deepmd" / "water_deepmdkit_dplr_virial" / "set.000" / "energy.npy") / 384
    assert f"{e.min():.4f} .. {e.max():.4f}" in text

    assert main(["data", "info", str(out), "--json"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["total"]["nframes"] == 205 and len(js["systems"]) == 6


def test_convert_append_and_b2o3(tmp_path, b2o3_dir, capsys):
    out = tmp_path / "b.h5"
    assert main(["data", "convert", str(b2o3_dir / "glass_300K_1GPa_NPT"), "-o", str(out), "-q"]) == 0
    assert main(["data", "convert", str(b2o3_dir / "alpha_crystal_NVT"), "-o", str(out), "--append"]) == 0
    assert "appended" in capsys.readouterr().out
    with h5py.File(out) as f:
        names = sorted(f["systems"])
        assert names == ["alpha_crystal_NVT_train", "alpha_crystal_NVT_val",
                         "glass_300K_1GPa_NPT_train", "glass_300K_1GPa_NPT_val"]
        g = f["systems"]["alpha_crystal_NVT_val"]
        types = np.loadtxt(b2o3_dir / "alpha_crystal_NVT" / "val" / "type.raw", dtype=int)
        assert list(g["species"].asstr()[()]) == [["O", "B"][t] for t in types]
        np.testing.assert_array_equal(
            g["virial"][()].reshape(-1, 9), np.load(b2o3_dir / "alpha_crystal_NVT" / "val" / "set.000" / "virial.npy"))


def test_bad_input_exit_2_one_line_and_output_kept(tmp_path, test_data, capsys):
    out = tmp_path / "data.h5"
    assert main(["data", "convert", str(test_data / "extxyz"), "-o", str(out), "-q"]) == 0
    before = out.read_bytes()
    bad = tmp_path / "sys"
    shutil.copytree(test_data / "deepmd" / "water_deepmdkit_dplr_virial", bad)
    (bad / "type_map.raw").chmod(0o644)
    (bad / "type_map.raw").unlink()
    capsys.readouterr()
    rc = main(["data", "convert", str(test_data / "vasp"), str(bad), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("glassjax data: error")]
    assert len(lines) == 1 and "type_map.raw: is missing" in lines[0] and "Traceback" not in err
    assert out.read_bytes() == before
    # the hint works: --type-map fills in the missing type map
    assert main(["data", "convert", str(bad), "-o", str(out), "--type-map", "O,H", "-q"]) == 0
    with h5py.File(out) as f:
        (g,) = f["systems"].values()
        assert (g["species"].asstr()[()] == "O").sum() == 128


@pytest.mark.parametrize("argv", [["data", "info", "missing.h5"], ["data", "convert", "nowhere", "-o", "x.h5"]])
def test_missing_files(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_convert_whole_b2o3_set_in_place(tmp_path, b2o3_dir, capsys):
    out = tmp_path / "b2o3.h5"
    assert main(["data", "convert", str(b2o3_dir), "-o", str(out), "-q"]) == 0
    systems = sorted(p.parent for p in b2o3_dir.rglob("type.raw"))
    assert len(systems) == 8
    with h5py.File(out) as f:
        assert len(f["systems"]) == 8
        for sysdir in systems:
            name = f"{sysdir.parent.name}_{sysdir.name}"
            g = f["systems"][name]
            energy = np.concatenate([np.load(s / "energy.npy") for s in sorted(sysdir.glob("set.*"))])
            np.testing.assert_array_equal(g["energy"][()], energy)
            tmap = (sysdir / "type_map.raw").read_text().split()
            types = np.loadtxt(sysdir / "type.raw", dtype=int)
            assert list(g["species"].asstr()[()]) == [tmap[t] for t in types]
    assert main(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    n = sum(np.load(p).shape[0] for p in b2o3_dir.rglob("energy.npy"))
    assert f"total: 8 systems, {n} frames" in text and "elements B O" in text
