"""Package a trained ensemble as glassjax's default potential and report its held-out errors.

    python train/teacher/package_default.py train/runs/default_potential \\
        --heldout default_potential.heldout.h5 --train-data default_potential.h5

Before anything is written, every member must relax random starts of the 18 Table II
glasses without pulling atoms closer than 1 Å (:func:`glassjax.md.stability.relax_check`,
two seeds) and pass a hot-melt check (:func:`glassjax.md.stability.hot_melt_check`: a
random 300-atom Li2O-2B2O3 glass, relaxed, then 2 ps of NVT at 3000 K; the MD member also
on LBS-20-40-40): a candidate that collapses or blows up is refused (``--no-gate`` skips
the checks, for experiments only).  ``--zbl RMIN RMAX``
first turns every member into a DP + ZBL model (DeePMD-kit's "zbl" type,
:mod:`glassjax.model.pairtab`), identical to the trained member wherever no atom is
closer to a neighbour than RMAX.

Writes (atomically) ``glassjax/potentials/default/member_{k}.dp`` and ``info.json`` (teacher,
data, training settings, held-out errors per system group: melt, glass, strained, ...,
the issue's target group "LBS melts and glasses" (strained frames included) and the same
without the strained frames,
energy/atom in eV, forces in eV/Å, virial/atom in eV), prints the error table, and writes
a small sample of held-out frames with the teacher's labels to
``tests/data/default_potential/heldout.extxyz`` for the tests.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _group(name: str) -> str:
    """System group of a dataset system name ``<composition>_<segment kind>``."""
    kind = name.rsplit("_", 1)[-1]
    comp = name.rsplit("_", 1)[0]
    family = "LBS" if comp.startswith("LBS") else ("crystal" if kind.startswith("crystal") else "LB")
    if kind in ("melt", "hot"):
        phase = "melt"
    elif kind in ("quench", "glass", "warm"):
        phase = "glass"
    elif kind.startswith("strain"):
        phase = "strained glass"
    else:
        phase = kind
    return f"{family} {phase}"


def heldout_errors(model_paths, heldout_h5):
    from glassjax.data.dataset import Dataset
    from glassjax.model import load_model
    from glassjax.train.evaluate import predict_frames

    model, v = load_model(model_paths[0])
    ds = Dataset(heldout_h5)
    acc = {}
    for name in ds.systems:
        fr = ds.frames(name)
        pred = predict_frames(model, v, fr)
        de = (pred["energy"] - fr.energy) / fr.natoms
        df = (pred["forces"] - fr.forces).ravel()
        dv = ((pred["virial"] - fr.virial) / fr.natoms).ravel()
        group, lbs = _group(name), name.startswith("LBS")
        unstrained = lbs and not group.endswith("strained glass")
        for key in (group, "LBS melts and glasses" if lbs else None,
                    "LBS melts and glasses, unstrained" if unstrained else None, "all"):
            if key is None:
                continue
            a = acc.setdefault(key, {"de": [], "df": [], "dv": [], "frames": 0})
            a["de"].append(de), a["df"].append(df), a["dv"].append(dv)
            a["frames"] += fr.nframes
    out = {}
    for key, a in sorted(acc.items()):
        de, df, dv = (np.concatenate(a[k]) for k in ("de", "df", "dv"))
        out[key] = {"frames": a["frames"], "energy_rmse_per_atom": float(np.sqrt(np.mean(de ** 2))),
                    "force_rmse": float(np.sqrt(np.mean(df ** 2))), "force_mae": float(np.mean(np.abs(df))),
                    "virial_rmse_per_atom": float(np.sqrt(np.mean(dv ** 2)))}
    return out


def write_test_sample(heldout_h5, dest: Path, per_system: int = 1, seed: int = 0):
    """A few held-out frames (one per system) with the teacher's labels, as extxyz."""
    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    from glassjax.atomic_write import atomic_path
    from glassjax.data.dataset import Dataset
    rng = np.random.default_rng(seed)
    ds = Dataset(heldout_h5)
    frames = []
    for name in ds.systems:
        fr = ds.frames(name)
        for i in rng.choice(fr.nframes, min(per_system, fr.nframes), replace=False):
            a = Atoms(list(fr.species), positions=fr.positions[i], cell=fr.cells[i], pbc=True)
            vol = abs(np.linalg.det(fr.cells[i]))
            stress = -fr.virial[i] / vol
            a.calc = SinglePointCalculator(a, energy=float(fr.energy[i]), forces=fr.forces[i],
                                           stress=stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]])
            a.info["system"] = name
            frames.append(a)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest, suffix=".extxyz") as tmp:
        ase.io.write(tmp, frames, format="extxyz")
    return len(frames)


def _add_zbl(src: Path, dst: Path, sw_rmin: float, sw_rmax: float) -> None:
    """Write member ``src`` as a DP + ZBL model ``dst`` (DeePMD-kit's "zbl" type)."""
    from glassjax.model import DeepPot, load_model, save_dp
    from glassjax.model.pairtab import add_pair_table
    from glassjax.model.zbl import zbl_table

    model, v = load_model(src)
    cfg, v2 = add_pair_table(model.config, v, zbl_table(model.type_map), sw_rmin, sw_rmax)
    save_dp(dst, DeepPot(cfg, model.dtype), v2)


def melt_gate(members, ps: float = 2.0, md_member: int = 0, relax_seeds=(0, 18)):
    """The gate: every member relaxes random starts of the 18 Table II glasses without
    collapsing pairs (:func:`glassjax.md.stability.relax_check`, builder seeds
    ``relax_seeds``), then hot-melt checks (3000 K, random 300-atom glasses): every member
    on Li2O-2B2O3, the MD member also on LBS-20-40-40.  Stops at the first failure.  Returns
    one dict per check (member, composition, ok, message)."""
    from glassjax.md.stability import hot_melt_check, relax_check

    out = []
    for k in range(len(members)):
        for seed in relax_seeds:
            r = relax_check(members[k], seed=seed)
            out.append({"member": f"member_{k}", "composition": f"Table II relaxation, seed {seed}",
                        "ok": r.ok, "message": r.message})
            if not r.ok:
                return out
    runs = [(k, "Li2O-2B2O3") for k in range(len(members))] + [(md_member, "LBS-20-40-40")]
    for k, comp in runs:
        r = hot_melt_check(members[k], comp, n_atoms=300, temperature=3000.0, ps=ps, seed=0)
        out.append({"member": f"member_{k}", "composition": comp, "temperature_K": 3000.0, "ps": ps,
                    "ok": r.ok, "message": r.message})
        if not r.ok:
            break
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--heldout", type=Path, required=True)
    ap.add_argument("--train-data", type=Path, required=True)
    ap.add_argument("--config", type=Path, default=ROOT / "train" / "default_potential.toml")
    ap.add_argument("--dest", type=Path, default=ROOT / "glassjax" / "potentials" / "default")
    ap.add_argument("--note", default="", help="how the run was made, if not plainly from --config (stored in info.json)")
    ap.add_argument("--sample", type=Path, default=ROOT / "tests" / "data" / "default_potential" / "heldout.extxyz")
    ap.add_argument("--zbl", nargs=2, type=float, metavar=("SW_RMIN", "SW_RMAX"),
                    help="add the ZBL pair repulsion to every member, switched between these distances (Å)")
    ap.add_argument("--no-gate", action="store_true", help="skip the hot-melt check (experiments only)")
    ap.add_argument("--gate-ps", type=float, default=2.0, help="length of the hot-melt check, ps (default 2)")
    a = ap.parse_args(argv)
    from glassjax.atomic_write import atomic_path
    from glassjax.data.dataset import Dataset
    from glassjax.precision import enable_x64
    enable_x64()
    members = sorted(a.run_dir.glob("member_*/model.dp"), key=lambda p: int(p.parent.name.split("_")[1]))
    if not members:
        raise SystemExit(f"{a.run_dir}: no member_*/model.dp found (train with ensemble >= 2 first)")
    if a.zbl:  # the pair table must not touch what the networks were fitted to
        from glassjax.train.trainer import neighbor_counts
        ds = Dataset(a.train_data)
        closest = neighbor_counts(ds.all_frames(), ds.elements, max(a.zbl[1], 1.0) + 0.5)["min_distance"]
        if closest < a.zbl[1]:
            raise SystemExit(f"--zbl: sw_rmax = {a.zbl[1]} Å but {a.train_data} holds atoms {closest:.3f} Å apart; "
                             f"the pair table would replace the model on training frames (lower sw_rmax)")
        print(f"closest pair in {a.train_data}: {closest:.3f} Å (ZBL switched off above {a.zbl[1]} Å)")
    import tempfile

    stage = Path(tempfile.mkdtemp(prefix="glassjax_package_"))
    try:
        staged = []
        for k, p in enumerate(members):
            out = stage / f"member_{k}.dp"
            if a.zbl:
                _add_zbl(p, out, *a.zbl)
            else:
                shutil.copyfile(p, out)
            staged.append(out)
        gate = [] if a.no_gate else melt_gate(staged, ps=a.gate_ps)
        failed = [g for g in gate if not g["ok"]]
        for g in gate:
            print(f"gate {g['member']} {g['composition']}: {'PASS' if g['ok'] else 'FAIL'} ({g['message']})")
        if failed:
            raise SystemExit(f"{a.run_dir}: {len(failed)} gate check(s) failed; nothing was written to "
                             f"{a.dest} (add close-contact data, or a pair table: --zbl 0.7 1.0)")
        a.dest.mkdir(parents=True, exist_ok=True)
        for k, p in enumerate(staged):
            shutil.copyfile(p, a.dest / f"member_{k}.tmp")
            (a.dest / f"member_{k}.tmp").replace(a.dest / f"member_{k}.dp")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    errs = heldout_errors([a.dest / "member_0.dp"], a.heldout)
    # the other members, summarised (member 0 drives MD; all of them give the deviation)
    member_errs = [errs] + [heldout_errors([a.dest / f"member_{k}.dp"], a.heldout) for k in range(1, len(members))]
    member_summary = {f"member_{k}": {g: round(e[g]["force_rmse"], 4) for g in ("LBS melts and glasses", "all")}
                      for k, e in enumerate(member_errs)}
    tr = Dataset(a.train_data)
    n_train = tr.nframes
    info = {
        "name": "glassjax default Li-B-Si-O potential",
        "teacher": "SevenNet-0 (11Jul2024), sevenn 0.13.0, PBE/PBE+U trained (MPtrj)",
        "not_the_papers_potential": True,
        "ensemble": len(members),
        "md_member": 0,
        "training_config": (a.config.read_text() if a.config.exists() else ""),
        **({"training_note": a.note} if a.note else {}),
        "training_frames": n_train,
        "training_systems": len(tr),
        "heldout_data": "an independent seed of Li2O-2B2O3, LB80, LBS-10-50-40, LBS-20-40-40 (melt, glass, strained)",
        **({"pair_table": {"type": "ZBL (glassjax.model.zbl.zbl_table)", "sw_rmin": a.zbl[0], "sw_rmax": a.zbl[1],
                           "smin_alpha": 0.1}} if a.zbl else {}),
        "hot_melt_check": gate,
        "heldout_errors": errs,
        "heldout_force_rmse_per_member": member_summary,
        "units": {"energy": "eV/atom", "force": "eV/Å", "virial": "eV/atom"},
        "made": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    with atomic_path(a.dest / "info.json") as tmp:
        Path(tmp).write_text(json.dumps(info, indent=1, ensure_ascii=False))
    n = write_test_sample(a.heldout, a.sample)
    print(f"{'group':28s} {'frames':>6s} {'E rmse meV/at':>14s} {'F rmse eV/Å':>12s} {'F mae':>8s} {'W rmse meV/at':>14s}")
    for k, e in errs.items():
        print(f"{k:28s} {e['frames']:6d} {1e3 * e['energy_rmse_per_atom']:14.2f} {e['force_rmse']:12.3f} "
              f"{e['force_mae']:8.3f} {1e3 * e['virial_rmse_per_atom']:14.2f}")
    for k, v in member_summary.items():
        print(f"{k}: force RMSE LBS melts and glasses {v['LBS melts and glasses']:.3f}, all {v['all']:.3f} eV/Å")
    print(f"wrote {len(members)} members and info.json to {a.dest}; {n} test frames to {a.sample}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
