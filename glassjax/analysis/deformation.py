"""Aggregate a batch of deformation runs: stress-strain, 4B fraction and 3-ring count versus
strain, batch mean ± standard deviation with every run kept (the 2024 paper's Figs. 7, 10, 12:
thin coloured lines for the individual runs, a bold black line for their average).

One *run* is a folder written by :func:`glassjax.md.deform.run_deformation` (or by a
deformation recipe, ``glassjax simulate``): a CSV of records (one row per recorded step:
``step``, ``strain``, the stress tensor in GPa, ...) and an H5MD trajectory of snapshots.
Optionally ``run.json`` beside them (written by the recipe driver) names the mode, loading
direction, rate and replica.

Per run (:func:`analyse_run`):

* stress-strain: the engineering strain and the stress along the loading direction, GPa, ASE
  sign (negative = compressive): ``sigma_aa`` for uniaxial loading along a, the mean normal
  stress ``-P = tr(sigma)/3`` for triaxial loading, ``sigma_ij`` for shear in the ij plane,
  ``(sigma_ii - sigma_jj)/2`` for pure shear;
* per snapshot: the fraction of four-coordinated boron ``N4 = #4B / #B`` (B-O bond cutoff,
  default 2.0 Å, :func:`glassjax.analysis.coordination.coordination_trajectory`) and the
  number of T3O3 three-membered rings (:func:`glassjax.analysis.rings.three_rings_trajectory`,
  T = B and Si by default); the snapshot strain is interpolated from the records by step.

Batch (:func:`aggregate`): every run is interpolated linearly onto a common strain grid (the
first run's strains inside the range all runs cover; exact when the runs share the grid, as
runs of one recipe do), then mean and standard deviation (ddof = 0) over the runs.

:func:`deformation_report` writes the CSV tables and PNG figures (atomically).  CLI:
``glassjax analyze deformation RUN_DIR [RUN_DIR ...] -o OUT_DIR``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from glassjax.errors import ConfigError, DataError

AXIS_NAMES = "xyz"
#: Record columns read as the 4B fraction / 3-ring count when a run has no snapshots.
ON_THE_FLY_B4 = ("frac_B4", "n4", "N4", "smooth_n4")
ON_THE_FLY_RINGS = ("n_3rings", "three_rings", "count_3rings")
_STRESS_KEYS = {(0, 0): "xx", (1, 1): "yy", (2, 2): "zz", (1, 2): "yz", (0, 2): "xz", (0, 1): "xy"}


# ----------------------------------------------------------------------------- reading one run

def _find_file(folder: Path, patterns: Sequence[str], what: str) -> Path:
    for pat in patterns:
        hits = sorted(folder.glob(pat))
        if hits:
            return hits[0]
    raise DataError(folder, f"no {what} found (looked for {', '.join(patterns)})",
                    hint="pass the folder of one deformation run (its CSV records and trajectory.h5)")


def read_records(path) -> Dict[str, np.ndarray]:
    """The records CSV of a run as a dict column -> (R,) float array (header row required)."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc})") from None
    if len(rows) < 2:
        raise DataError(path, "holds no records", hint="the run wrote no rows yet")
    header = [h.strip() for h in rows[0]]
    data = np.full((len(rows) - 1, len(header)), np.nan)
    for i, row in enumerate(rows[1:]):
        for j, v in enumerate(row[:len(header)]):
            try:
                data[i, j] = float(v)
            except ValueError:
                pass
    return {h: data[:, j] for j, h in enumerate(header)}


def _column(rec: Mapping[str, np.ndarray], names: Sequence[str], path, what: str) -> np.ndarray:
    for n in names:
        if n in rec:
            return rec[n]
    raise DataError(path, f"records have no {what} column (looked for {list(names)}; columns: {list(rec)})")


def _stress_component(rec, i: int, j: int, path) -> np.ndarray:
    ab = _STRESS_KEYS[(min(i, j), max(i, j))]
    names = [f"s{ab}_GPa", f"stress_{ab}_GPa", f"stress_{ab}", f"sigma_{ab}_GPa", f"s{ab}", f"sigma_{ab}"]
    return _column(rec, names, path, f"stress {ab}")


def _read_meta(folder: Path) -> Dict:
    p = folder / "run.json"
    if p.is_file():
        try:
            return json.loads(p.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(p, f"not valid JSON ({exc})") from None
    return {}


def _infer_loading(cells: np.ndarray) -> Tuple[str, Optional[int]]:
    """Mode and axis from the change of the cell between the first and last snapshot."""
    l0 = np.linalg.norm(cells[0], axis=1)
    l1 = np.linalg.norm(cells[-1], axis=1)
    rel = l1 / l0 - 1.0
    if np.ptp(rel) < 0.1 * np.max(np.abs(rel)) and np.max(np.abs(rel)) > 0:
        return "triaxial", None
    return "uniaxial", int(np.argmax(np.abs(rel)))


def read_run(folder) -> Dict:
    """Read one run: records, metadata, snapshots; the stress along the loading direction.

    Returns the dict of :func:`analyse_run` without the structure keys, plus ``frames``
    (:class:`~glassjax.data.Frames` of the snapshots, or None without a trajectory).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "not a folder", hint="pass the folder of one deformation run")
    csv_path = _find_file(folder, ("records.csv", "deform*.csv", "*.csv"), "records CSV")
    rec = read_records(csv_path)
    meta = _read_meta(folder)
    strain = _column(rec, ("strain", "strain_eng", "engineering_strain"), csv_path, "strain")
    step = _column(rec, ("step",), csv_path, "step")
    traj = None
    for pat in ("trajectory.h5", "*.h5", "*.h5md"):
        hits = sorted(folder.glob(pat))
        if hits:
            traj = hits[0]
            break
    frames = None
    if traj is not None:
        from glassjax.analysis.io import read_trajectory

        frames = read_trajectory(traj)
    mode = meta.get("mode")
    axis = meta.get("axis")
    plane = meta.get("plane")
    if mode is None:
        if frames is None:
            raise DataError(folder, "no run.json and no trajectory: cannot tell the loading direction")
        mode, axis = _infer_loading(frames.cells)

    def loading(get):
        if mode == "uniaxial":
            if axis is None:
                raise DataError(folder / "run.json", "uniaxial run without an axis")
            return get(int(axis), int(axis))
        if mode == "triaxial":
            return (get(0, 0) + get(1, 1) + get(2, 2)) / 3.0
        if mode == "shear":
            if plane is None:
                raise DataError(folder / "run.json", "shear run without a plane")
            return get(int(plane[0]), int(plane[1]))
        if mode == "pure_shear":  # shear stress of the pure shear: (sigma_ii - sigma_jj) / 2
            if plane is None:
                raise DataError(folder / "run.json", "pure_shear run without a plane")
            return (get(int(plane[0]), int(plane[0])) - get(int(plane[1]), int(plane[1]))) / 2.0
        raise DataError(folder / "run.json", f"unknown mode {mode!r}")

    stress = loading(lambda i, j: _stress_component(rec, i, j, csv_path))
    out = {"name": meta.get("name", folder.name), "folder": str(folder), "meta": dict(meta, mode=mode, axis=axis),
           "strain": strain, "stress": stress, "records": rec, "frames": frames}
    if frames is None:
        # no snapshots: use on-the-fly observables of the records when the run logged them
        b4 = next((rec[k] for k in ON_THE_FLY_B4 if k in rec), None)
        rings = next((rec[k] for k in ON_THE_FLY_RINGS if k in rec), None)
        if b4 is not None and rings is not None:
            out.update(snap_strain=strain, snap_step=step, snap_stress=stress, frac_B4=b4, n_3rings=rings,
                       n_3rings_B_only=rec.get("n_3rings_B_only", np.full(len(strain), np.nan)))
    if frames is not None:
        import h5py

        with h5py.File(traj, "r") as f:
            snap_step = np.asarray(f["particles/all/position/step"][:], dtype=float)
            snap_strain = (np.asarray(f["observables/strain/value"][:], dtype=float)
                           if "observables/strain" in f else None)
            snap_sigma = (np.asarray(f["observables/stress/value"][:], dtype=float)
                          if "observables/stress" in f else None)
        if snap_strain is None or len(snap_strain) != len(snap_step):
            # strain 0 at step 0, then the records' strain interpolated by step
            order = np.argsort(step)
            snap_strain = np.interp(snap_step, np.concatenate([[0.0], step[order]]),
                                    np.concatenate([[0.0], strain[order]]))
        out["snap_step"] = snap_step
        out["snap_strain"] = snap_strain
        if snap_sigma is not None and len(snap_sigma) == len(snap_step):
            out["snap_stress"] = loading(lambda i, j: snap_sigma[:, i, j])
            # the undeformed snapshot opens the stress-strain curve when the records start later
            first = int(np.argmin(snap_step))
            if len(step) and snap_step[first] < np.min(step):
                out["strain"] = np.concatenate([[snap_strain[first]], strain])
                out["stress"] = np.concatenate([[out["snap_stress"][first]], stress])
    return out


def analyse_run(folder, bo_cutoff: float = 2.0, formers: Sequence[str] = ("B", "Si"),
                progress: bool = False, structure: bool = True) -> Dict:
    """Stress-strain records and per-snapshot 4B fraction / 3-ring count of one run.

    Args:
        folder: the run's folder (records CSV + ``trajectory.h5``; ``run.json`` optional).
        bo_cutoff: B-O bond cutoff, Å (the Si-O cutoff stays at its default 2.3 Å).
        formers: network formers of the 3-rings.
        structure: False skips the snapshot analyses (stress-strain only).

    Returns:
        dict with ``name``, ``meta``, ``strain`` (R,), ``stress`` (R,) GPa along the loading
        direction (the strain-0 snapshot first when the trajectory has it), ``records`` (all
        CSV columns), and, with snapshots, ``snap_strain`` (S,), ``snap_step`` (S,),
        ``snap_stress`` (S,), ``frac_B4`` (S,), ``n_3rings`` (S,), ``n_3rings_B_only`` (S,).
    """
    out = read_run(folder)
    frames = out.pop("frames")
    if frames is not None and structure:
        out.update(structure_per_snapshot(frames, bo_cutoff=bo_cutoff, formers=formers, progress=progress))
    return out


def analyse_runs(folders: Sequence, bo_cutoff: float = 2.0, formers: Sequence[str] = ("B", "Si"),
                 progress: bool = False, structure: bool = True) -> List[Dict]:
    """:func:`analyse_run` for many runs, with the snapshots of runs of the same system (same
    species in the same order) analysed together (one compiled kernel for the batch)."""
    from glassjax.data.frames import Frames

    results = [read_run(f) for f in folders]
    if not structure:
        for r in results:
            r.pop("frames")
            for key in ("frac_B4", "n_3rings", "n_3rings_B_only"):
                r.pop(key, None)
        return results
    groups: Dict[Tuple[str, ...], List[int]] = {}
    for k, r in enumerate(results):
        if r["frames"] is not None and "frac_B4" not in r:
            groups.setdefault(tuple(r["frames"].species), []).append(k)
    for species, members in groups.items():
        parts = [results[k]["frames"] for k in members]
        joined = Frames(species=np.asarray(species), positions=np.concatenate([f.positions for f in parts]),
                        cells=np.concatenate([f.cells for f in parts]), name="batch")
        res = structure_per_snapshot(joined, bo_cutoff=bo_cutoff, formers=formers, progress=progress)
        start = 0
        for k, f in zip(members, parts):
            for key, v in res.items():
                results[k][key] = v[start:start + f.nframes]
            start += f.nframes
    for r in results:
        r.pop("frames")
    return results


def structure_per_snapshot(frames, bo_cutoff: float = 2.0, formers: Sequence[str] = ("B", "Si"),
                           progress: bool = False, chunk: int = 16) -> Dict[str, np.ndarray]:
    """``frac_B4`` (S,), ``n_3rings`` (S,) and ``n_3rings_B_only`` (S,) of every frame.

    The frames are padded (last frame repeated) to a multiple of ``chunk`` so that every
    vmapped call has the same shape and the kernels compile once per system.
    """
    from glassjax.analysis.coordination import coordination_trajectory
    from glassjax.analysis.rings import three_rings_trajectory
    from glassjax.data.frames import Frames

    n = frames.nframes
    chunk = max(1, int(chunk))
    pad = (-n) % chunk
    if pad:
        idx = np.concatenate([np.arange(n), np.full(pad, n - 1)])
        frames = Frames(species=frames.species, positions=frames.positions[idx], cells=frames.cells[idx],
                        name=frames.name)
    cut = {"B-O": float(bo_cutoff)}
    coord = coordination_trajectory(frames, cutoffs=cut, progress=progress, chunk=chunk)
    out = {"frac_B4": np.asarray(coord["frac_B4"], dtype=float)[:n]}
    formers = [f for f in formers if f in frames.elements]
    if "O" in frames.elements and formers:
        rings = three_rings_trajectory(frames, cutoffs=cut, formers=formers, progress=progress, chunk=chunk)
        out["n_3rings"] = np.asarray(rings["n_3rings"], dtype=float)[:n]
        out["n_3rings_B_only"] = np.asarray(rings["n_3rings_B_only"], dtype=float)[:n]
    else:
        out["n_3rings"] = out["n_3rings_B_only"] = np.zeros(n)
    return out


# ----------------------------------------------------------------------------- batch statistics

def common_grid(strains: Sequence[np.ndarray]) -> np.ndarray:
    """The first run's strains inside the |strain| range that every run covers."""
    if not strains:
        raise ConfigError("deformation: no runs to aggregate")
    lo = max(float(np.min(np.abs(s))) for s in strains)
    hi = min(float(np.max(np.abs(s))) for s in strains)
    s0 = np.asarray(strains[0], dtype=float)
    keep = (np.abs(s0) >= lo - 1e-12) & (np.abs(s0) <= hi + 1e-12)
    return s0[keep]


def interpolate(grid: np.ndarray, strain: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values(strain)`` at ``grid`` by linear interpolation in |strain| (strain monotonic)."""
    a = np.abs(np.asarray(strain, dtype=float))
    order = np.argsort(a, kind="stable")
    return np.interp(np.abs(grid), a[order], np.asarray(values, dtype=float)[order])


def aggregate(curves: Sequence[Tuple[np.ndarray, np.ndarray]], grid: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Mean and standard deviation over runs of curves ``(strain, value)`` on a common grid.

    Returns ``strain`` (G,), ``runs`` (B, G), ``mean`` (G,), ``std`` (G,) (ddof 0).
    """
    if grid is None:
        grid = common_grid([c[0] for c in curves])
    runs = np.stack([interpolate(grid, s, v) for s, v in curves]) if len(grid) else np.zeros((len(curves), 0))
    return {"strain": np.asarray(grid, dtype=float), "runs": runs, "mean": np.mean(runs, axis=0),
            "std": np.std(runs, axis=0)}


def group_runs(results: Sequence[Dict]) -> Dict[str, List[Dict]]:
    """Split runs into ``tension`` and ``compression`` (by the sign of their final strain)."""
    groups: Dict[str, List[Dict]] = {}
    for r in results:
        s = np.asarray(r["strain"])
        sign = np.sign(s[np.argmax(np.abs(s))]) if len(s) else 0.0
        groups.setdefault("tension" if sign > 0 else "compression", []).append(r)
    return groups


# ----------------------------------------------------------------------------- report

def _fmt(v) -> str:
    v = float(v)
    return "nan" if math.isnan(v) else repr(v)


def _write_table(path: Path, header: Sequence[str], columns: Sequence[np.ndarray]) -> None:
    from glassjax.atomic_write import atomic_path

    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for row in zip(*columns):
                w.writerow([_fmt(v) for v in row])




def _save(fig, path: Path) -> None:
    from glassjax.atomic_write import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def _plot_panels(panels: Sequence[Tuple[str, Dict[str, Dict[str, np.ndarray]], Sequence[str]]], path: Path,
                 title: str) -> None:
    """One figure with a panel per quantity; in each, every group's runs thin and coloured, means bold black."""
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(5.0 * len(panels), 4.0))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (ylabel, groups, names) in zip(axes[0], panels):
        colours = matplotlib.colormaps['tab10'](np.linspace(0, 1, 10))
        for gname, agg in groups.items():
            for k, row in enumerate(agg["runs"]):
                ax.plot(agg["strain"], row, lw=0.8, alpha=0.8, color=colours[k % 10],
                        label=names[k] if gname == next(iter(groups)) else None)
            ax.plot(agg["strain"], agg["mean"], lw=2.5, color="black",
                    label="mean" if gname == next(iter(groups)) else None)
        ax.set_xlabel("strain")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.axvline(0.0, color="0.8", lw=0.5)
    axes[0][0].legend(fontsize=6, ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def deformation_report(runs: Sequence, out_dir, bo_cutoff: float = 2.0, formers: Sequence[str] = ("B", "Si"),
                       title: str = "", progress: bool = False, structure: bool = True) -> Dict[str, Path]:
    """Analyse runs (folders or :func:`analyse_run` results) and write tables and figures.

    Writes into ``out_dir``:

    * ``runs.csv``: every run's snapshots: run, group, strain, stress (GPa), frac_B4,
      n_3rings, n_3rings_B_only;
    * ``<group>_stress_strain.csv``: strain, mean and std of the stress (GPa), one column per run
      (all record rows); ``group`` is ``tension`` or ``compression``;
    * ``<group>_structure.csv``: strain, mean/std of frac_B4 and n_3rings, per-run columns;
    * ``stress_strain.png`` and ``structure.png`` (4B fraction and 3-ring count): all groups on
      one strain axis, runs thin and coloured, means bold black.

    Returns a dict name -> path of what was written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folders = [r for r in runs if not isinstance(r, dict)]
    done = iter(analyse_runs(folders, bo_cutoff, formers, progress, structure))
    results = [r if isinstance(r, dict) else next(done) for r in runs]
    if not results:
        raise ConfigError("deformation report: no runs given")
    groups = group_runs(results)
    written: Dict[str, Path] = {}
    stress_aggs, b4_aggs, ring_aggs = {}, {}, {}
    names: List[str] = []
    has_structure = all("frac_B4" in r for r in results)
    for gname, members in groups.items():
        names = [r["name"] for r in members]
        agg = aggregate([(r["strain"], r["stress"]) for r in members])
        stress_aggs[gname] = agg
        p = out_dir / f"{gname}_stress_strain.csv"
        _write_table(p, ["strain", "stress_mean_GPa", "stress_std_GPa"] + [f"stress_GPa[{n}]" for n in names],
                     [agg["strain"], agg["mean"], agg["std"], *agg["runs"]])
        written[p.stem] = p
        if has_structure:
            b4 = aggregate([(r["snap_strain"], r["frac_B4"]) for r in members])
            rings = aggregate([(r["snap_strain"], r["n_3rings"]) for r in members], grid=b4["strain"])
            b4_aggs[gname], ring_aggs[gname] = b4, rings
            p = out_dir / f"{gname}_structure.csv"
            _write_table(p, ["strain", "frac_B4_mean", "frac_B4_std", "n_3rings_mean", "n_3rings_std"]
                         + [f"frac_B4[{n}]" for n in names] + [f"n_3rings[{n}]" for n in names],
                         [b4["strain"], b4["mean"], b4["std"], rings["mean"], rings["std"], *b4["runs"],
                          *rings["runs"]])
            written[p.stem] = p
    # per-run snapshot table
    if has_structure:
        rows: List[List] = []
        for gname, members in groups.items():
            for r in members:
                st = r["snap_stress"] if "snap_stress" in r else interpolate(r["snap_strain"], r["strain"], r["stress"])
                for k in range(len(r["snap_strain"])):
                    rows.append([r["name"], gname, r["snap_strain"][k], st[k], r["frac_B4"][k], r["n_3rings"][k],
                                 r["n_3rings_B_only"][k]])
        from glassjax.atomic_write import atomic_path

        p = out_dir / "runs.csv"
        with atomic_path(p, suffix=".csv") as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["run", "group", "strain", "stress_GPa", "frac_B4", "n_3rings", "n_3rings_B_only"])
                for row in rows:
                    w.writerow(row[:2] + [_fmt(v) for v in row[2:]])
        written["runs"] = p
    # legend: one colour per run index, the same glass/direction in every group
    gname0, members0 = next(iter(groups.items()))
    run_names = [r["name"].replace(f"_{gname0}", "") for r in members0]
    p = out_dir / "stress_strain.png"
    _plot_panels([("stress along the loading direction (GPa)", stress_aggs, run_names)], p,
                 title or "stress-strain")
    written["stress_strain_png"] = p
    if has_structure:
        p = out_dir / "structure.png"
        _plot_panels([("4B fraction", b4_aggs, run_names), ("number of 3-rings", ring_aggs, run_names)], p,
                     title or "4B fraction and 3-rings")
        written["structure_png"] = p
    return written
