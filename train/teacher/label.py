"""Label configurations with the teacher: energy (eV), forces (eV/Å) and virial (eV).

Reads the extxyz files written by ``sample_teter.py`` (one per task; frames carry ``segment``
and ``temperature`` in ``info``) and writes one compressed ``.npz`` per file in the format of
``generate.py`` (so ``generate.py --to-h5`` turns them into glassjax datasets).  Files already
labelled are skipped; ``--watch`` keeps labelling as the sampler writes new files.

    python train/teacher/label.py teacher_configs --out teacher_labels --teacher sevennet-0
    python train/teacher/generate.py --to-h5 default_potential.h5 teacher_labels
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import Recorder, make_teacher  # noqa: E402


def label_file(path: Path, calc, out_dir: Path) -> int:
    import ase.io
    frames = ase.io.read(path, index=":", format="extxyz")
    if not frames:  # explore.py writes an empty file for a run without candidates
        return 0
    rec = Recorder()
    for a in frames:
        info = dict(a.info)
        a.calc = calc
        rec.take(a, float(info.get("temperature", 0.0)), str(info.get("segment", "unknown")))
    arrays = rec.arrays(frames[0].get_chemical_symbols())
    dest = out_dir / f"{path.stem}.npz"
    tmp = out_dir / f"{path.stem}.tmp.npz"
    np.savez_compressed(tmp, name=np.asarray(path.stem), **arrays)
    os.replace(tmp, dest)
    return len(frames)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("configs", type=Path)
    ap.add_argument("--out", type=Path, default=Path("teacher_labels"))
    ap.add_argument("--teacher", default="sevennet-0")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--part", default="0/1", help="label only the files k, k+n, ... of 'k/n' (parallel runs)")
    ap.add_argument("--reverse", action="store_true", help="take the files in reverse order (a second labeller)")
    ap.add_argument("--watch", type=float, default=0.0, help="keep polling for new files for this many seconds")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    calc = make_teacher(a.teacher, a.device)
    last_new = time.time()
    k, nparts = (int(x) for x in a.part.split("/"))
    empty = set()  # files with no frames: nothing to label, never retried
    while True:
        todo = [p for p in sorted(a.configs.glob("*.extxyz"))
                if zlib.crc32(p.stem.encode()) % nparts == k and not p.name.endswith(".tmp.extxyz")
                and not (a.out / f"{p.stem}.npz").exists() and p not in empty]
        if a.reverse:
            todo = todo[::-1]
        for p in todo:
            lock = a.out / f"{p.stem}.lock"
            try:  # several labellers can share one folder: each file is taken by one of them
                os.close(os.open(lock, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            if (a.out / f"{p.stem}.npz").exists():
                os.unlink(lock)
                continue
            t0 = time.time()
            n = label_file(p, calc, a.out)
            os.unlink(lock)
            if n == 0:
                empty.add(p)
                print(f"{p.stem}: no frames, nothing to label", flush=True)
                continue
            print(f"{p.stem}: labelled {n} frames in {time.time() - t0:.0f} s", flush=True)
            last_new = time.time()
        if not [p for p in todo if not (a.out / f"{p.stem}.lock").exists()]:
            if time.time() - last_new > a.watch:
                break
            time.sleep(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
