"""``glassjax model info|convert``: conversions keep every array; info reports sel problems."""

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from glassjax.cli import main
from glassjax.model import dpfile

TEST_DATA = Path(__file__).resolve().parent / "data"

REF = TEST_DATA / "deepmd_models"
pytestmark = pytest.mark.skipif(not (REF / "index.json").is_file(), reason="no DeePMD-kit reference data")


def test_convert_dp_to_checkpoint_and_back_keeps_arrays(tmp_path, capsys):
    src = REF / "lbs_pair_nordt.dp"
    assert main(["--x64", "model", "convert", str(src), str(tmp_path / "m.h5")]) == 0
    assert main(["--x64", "model", "convert", str(tmp_path / "m.h5"), str(tmp_path / "m.dp")]) == 0
    a = dpfile.load_dp(src)
    b = dpfile.load_dp(tmp_path / "m.dp")
    assert a[0] == b[0]

    def flat(t, p=""):
        for k, v in t.items():
            yield from (flat(v, f"{p}/{k}") if isinstance(v, dict) else [(f"{p}/{k}", np.asarray(v))])

    fa, fb = dict(flat(a[1])), dict(flat(b[1]))
    assert fa.keys() == fb.keys() and all(np.array_equal(fa[k], fb[k]) for k in fa)


def test_info_reports_sel_against_a_structure(tmp_path, capsys):
    z = np.load(REF / "lbs_pair_smallsel__lbs_small_cubic.npz")
    write(tmp_path / "s.extxyz", Atoms([str(s) for s in z["species"]], positions=z["positions"], cell=z["cell"], pbc=True))
    rc = main(["--x64", "model", "info", str(REF / "lbs_pair_smallsel.dp"), "--structure", str(tmp_path / "s.extxyz")])
    out = capsys.readouterr().out
    assert rc == 1 and "TOO SMALL" in out and "['Li', 'B', 'Si', 'O']" in out
    assert main(["--x64", "model", "info", str(tmp_path / "missing.dp")]) == 2
    assert "not found" in capsys.readouterr().err
