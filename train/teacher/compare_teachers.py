#!/usr/bin/env python
"""Compare candidate teacher potentials with DFT frames (issue #8: choose the teacher by measurement).

glassjax's default DeepPot-SE potential is distilled from a universal potential whose weights
ship inside its wheel (so it works offline).  This script measures the candidates against
real DFT labels and prints one table (plus a JSON file with every number):

* energy, forces and stress of each candidate on a subset of frames of each DFT system,
  read in place with :mod:`glassjax.data.readers` (nothing is copied anywhere);
* per system: force RMSE / MAE (eV/Å), the correlation of force components, the energy error
  per atom after removing the mean offset of that system (meV/atom), the mean offset itself,
  the stress RMSE over the six independent components (GPa), the mean pressure error (GPa)
  and the wall time per energy+forces+stress call (s); ``--timing-rounds`` adds a fairer
  timing pass with the models interleaved.

Energies: the CP2K B2O3 set holds absolute CP2K total energies (GTH pseudopotentials,
about -294 eV/atom) that share no reference with the teachers' VASP-PBE energies, so only
energy *differences within a system* are compared (the per-system mean offset is removed).
Systems of one composition and one level of theory share the DFT zero, so the summary also
gives the energy error with a single offset for all of them (errors in the relative energies
of glass, liquid and crystals) and the force RMSE pooled over them.

Levels of theory differ: the B2O3 set is revPBE-D3 (CP2K, GTH pseudopotentials), while
every candidate here was trained on PBE / PBE+U (Materials Project, VASP PAW); no Hubbard U
applies to Li, B, Si or O.  None of the candidates includes a D3 dispersion term.

Usage (in an environment with the ``teacher`` extra installed, see README.md here)::

    python train/teacher/compare_teachers.py --out teacher_comparison.json
    python train/teacher/compare_teachers.py --models chgnet-0.3.0 sevennet-0 \\
        --frames-per-system 2 --data ../shared/fixtures/deepmd_npy/b2o3_boroxol_jncasr

The metric functions at the top of this file need numpy only; torch, chgnet and sevenn are
imported only when a candidate is evaluated.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[2]
try:  # the teacher venv may not have glassjax installed: use this checkout
    import glassjax  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(REPO))

from glassjax.atomic_write import write_text_atomic  # noqa: E402
from glassjax.data.frames import Frames  # noqa: E402
from glassjax.errors import ConfigError, DataError, GlassJaxError  # noqa: E402
from glassjax.units import EV_PER_A3_TO_GPA  # noqa: E402

SHARED_FIXTURES = Path(os.environ.get("GLASSJAX_FIXTURES", REPO.parent / "shared" / "fixtures"))
B2O3_DIR = SHARED_FIXTURES / "deepmd_npy" / "b2o3_boroxol_jncasr"
B8O6_OUTCAR = REPO / "tests" / "data" / "vasp" / "dpdata_6362_BO_isif3_relax" / "6362_OUTCAR"

# Level of theory of the data sets this project knows (by system name); others: "unknown".
KNOWN_THEORY = {
    "glass_300K_1GPa_NPT": "CP2K revPBE-D3 (GTH, 1200 Ry)",
    "liquid_3000K_1GPa_NPT": "CP2K revPBE-D3 (GTH, 1200 Ry)",
    "beta_crystal_NPT_aniso": "CP2K revPBE-D3 (GTH, 1200 Ry)",
    "alpha_crystal_NVT": "CP2K revPBE-D3 (GTH, 1200 Ry)",
    "6362_OUTCAR": "VASP PBE (PAW, 400 eV)",
}
# Only energies computed with the teachers' own reference (VASP PBE PAW) have a meaningful
# absolute offset; for the others the offset is reported but says nothing about accuracy.
ABSOLUTE_ENERGY_COMPARABLE = {"6362_OUTCAR"}

_SPLIT_SUFFIX = re.compile(r"_(train|training|val|valid|validation|test)$", re.I)


# ============================================================================ pure functions
def select_frames(nframes: int, k: int) -> np.ndarray:
    """Indices of ``k`` frames spread evenly over ``nframes`` (first and last included).

    Returns a sorted int array of ``min(k, nframes)`` distinct indices; ``k <= 0`` means all.
    """
    if nframes <= 0:
        raise ValueError("nframes must be positive")
    if k <= 0 or k >= nframes:
        return np.arange(nframes)
    idx = np.unique(np.round(np.linspace(0.0, nframes - 1, k)).astype(np.int64))
    # rounding cannot merge two points when k < nframes (spacing >= 1), but stay safe
    return idx


def system_key(name: str) -> str:
    """Group name of a system: its name without a trailing ``_train`` / ``_val`` split tag."""
    return _SPLIT_SUFFIX.sub("", name)


def merge_systems(systems: Sequence[Frames]) -> Dict[str, Frames]:
    """Concatenate the train/val splits of one system (same species in the same order).

    Args:
        systems: Frames as returned by the readers (one per system folder or file).
    Returns:
        ``{group name: Frames}`` in first-seen order.  Splits whose species differ are kept
        apart under their own names.
    """
    groups: Dict[str, List[Frames]] = {}
    for fr in systems:
        key = system_key(fr.name)
        if key in groups and not np.array_equal(groups[key][0].species, fr.species):
            key = fr.name
        groups.setdefault(key, []).append(fr)
    out: Dict[str, Frames] = {}
    for key, parts in groups.items():
        if len(parts) == 1:
            fr = parts[0]
            out[key] = Frames(species=fr.species, positions=fr.positions, cells=fr.cells,
                              energy=fr.energy, forces=fr.forces, virial=fr.virial,
                              source=fr.source, name=key, meta=dict(fr.meta))
            continue

        def cat(attr):
            arrs = [getattr(p, attr) for p in parts]
            return None if any(a is None for a in arrs) else np.concatenate(arrs, axis=0)

        out[key] = Frames(species=parts[0].species, positions=cat("positions"), cells=cat("cells"),
                          energy=cat("energy"), forces=cat("forces"), virial=cat("virial"),
                          source=[s for p in parts for s in p.source], name=key,
                          meta={"merged_from": [p.name for p in parts]})
    return out


def force_metrics(pred: np.ndarray, ref: np.ndarray) -> Dict[str, float]:
    """Errors of predicted forces.

    Args:
        pred, ref: (F, N, 3) forces, eV/Å.
    Returns:
        rmse, mae and max_abs of the component errors (eV/Å), the Pearson correlation ``r``
        of all force components pooled, and ``ref_rms`` (RMS of the reference components).
    """
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape:
        raise ValueError(f"force shapes differ: {pred.shape} vs {ref.shape}")
    d = (pred - ref).ravel()
    p, r = pred.ravel() - pred.mean(), ref.ravel() - ref.mean()
    corr = float(np.sum(p * r) / np.sqrt(np.sum(p * p) * np.sum(r * r)))
    return {"rmse": float(np.sqrt(np.mean(d * d))), "mae": float(np.mean(np.abs(d))),
            "max_abs": float(np.max(np.abs(d))), "r": corr,
            "ref_rms": float(np.sqrt(np.mean(ref * ref)))}


def energy_metrics(pred: np.ndarray, ref: np.ndarray, natoms: int) -> Dict[str, float]:
    """Energy errors per atom within one system (fixed atoms), with the mean offset removed.

    With ``d_f = (E_pred,f - E_ref,f) / N``: ``offset = mean_f d_f`` (eV/atom) and
    ``rmse_centered = sqrt(mean_f (d_f - offset)^2)`` (eV/atom), i.e. the error of energy
    *differences* between frames, which is what matters when the reference energies use
    another zero (CP2K absolute energies).  ``ref_std`` is the spread of E_ref/N.

    Args:
        pred, ref: (F,) total energies, eV.  natoms: N.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    ref = np.asarray(ref, dtype=np.float64).reshape(-1)
    if pred.shape != ref.shape:
        raise ValueError(f"energy shapes differ: {pred.shape} vs {ref.shape}")
    d = (pred - ref) / natoms
    off = float(np.mean(d))
    return {"rmse_centered": float(np.sqrt(np.mean((d - off) ** 2))), "offset": off,
            "ref_std": float(np.std(ref / natoms))}


def virial_to_stress_gpa(virial: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """DeePMD extensive virial (eV, positive = compressed) to stress in GPa with ASE's sign.

    ``stress = -virial / V`` (negative = compressive), V = |det(cell)|.
    Shapes: virial (F, 3, 3), cells (F, 3, 3) -> (F, 3, 3).
    """
    virial = np.asarray(virial, dtype=np.float64).reshape(-1, 3, 3)
    vol = np.abs(np.linalg.det(np.asarray(cells, dtype=np.float64).reshape(-1, 3, 3)))
    return -virial / vol[:, None, None] * EV_PER_A3_TO_GPA


def voigt_to_matrix(voigt: np.ndarray) -> np.ndarray:
    """ASE Voigt stress ``(xx, yy, zz, yz, xz, xy)`` (..., 6) to a symmetric (..., 3, 3)."""
    v = np.asarray(voigt, dtype=np.float64)
    xx, yy, zz, yz, xz, xy = (v[..., i] for i in range(6))
    return np.stack([np.stack([xx, xy, xz], -1), np.stack([xy, yy, yz], -1),
                     np.stack([xz, yz, zz], -1)], -2)


def stress_metrics(pred_gpa: np.ndarray, ref_gpa: np.ndarray) -> Dict[str, float]:
    """Stress errors, both (F, 3, 3) in GPa with the same sign convention.

    ``rmse``: over the six independent components (xx, yy, zz, yz, xz, xy) of all frames;
    ``pressure_bias``: mean of P_pred - P_ref with P = -tr(stress)/3 (ASE sign), GPa;
    ``pressure_rmse``: RMS of P_pred - P_ref, GPa.
    """
    pred = np.asarray(pred_gpa, dtype=np.float64).reshape(-1, 3, 3)
    ref = np.asarray(ref_gpa, dtype=np.float64).reshape(-1, 3, 3)
    if pred.shape != ref.shape:
        raise ValueError(f"stress shapes differ: {pred.shape} vs {ref.shape}")
    i, j = np.array([0, 1, 2, 1, 0, 0]), np.array([0, 1, 2, 2, 2, 1])
    d = pred[:, i, j] - ref[:, i, j]
    dp = -(np.trace(pred, axis1=1, axis2=2) - np.trace(ref, axis1=1, axis2=2)) / 3.0
    return {"rmse": float(np.sqrt(np.mean(d * d))), "pressure_bias": float(np.mean(dp)),
            "pressure_rmse": float(np.sqrt(np.mean(dp * dp)))}


def pooled_energy_rmse(rmse_centered: Sequence[float], offsets: Sequence[float],
                       nframes: Sequence[int]) -> Dict[str, float]:
    """Energy error per atom over several systems that share one energy zero, one offset.

    Systems of the same composition computed with the same DFT setup (the B2O3 glass, liquid
    and crystals) share the reference's zero, so a teacher should need *one* offset for all
    of them; differences between their offsets are errors in the relative energies of the
    phases.  From each system's ``rmse_centered`` r_s, ``offset`` o_s and frame count n_s:
    ``m = sum n_s o_s / sum n_s`` and
    ``rmse = sqrt(sum n_s (r_s^2 + (o_s - m)^2) / sum n_s)``, which equals the RMSE of all
    frames' per-atom errors after removing their common mean.  Returns rmse and
    ``offset_spread`` (max - min of o_s), eV/atom.
    """
    r = np.asarray(rmse_centered, dtype=np.float64)
    o = np.asarray(offsets, dtype=np.float64)
    n = np.asarray(nframes, dtype=np.float64)
    m = np.sum(n * o) / np.sum(n)
    return {"rmse": float(np.sqrt(np.sum(n * (r ** 2 + (o - m) ** 2)) / np.sum(n))),
            "offset_spread": float(o.max() - o.min())}


def reduced_formula(species: Sequence[str]) -> str:
    """Composition with counts divided by their gcd, elements sorted: 'B2O3' for B106O159."""
    elems, counts = np.unique(np.asarray(species, dtype=str), return_counts=True)
    g = np.gcd.reduce(counts)
    return "".join(f"{e}{c // g}" for e, c in zip(elems.tolist(), counts.tolist()))


# ============================================================================ candidates
@dataclass
class Candidate:
    """A teacher potential: how to build its ASE calculator and what it was trained on."""

    name: str
    package: str
    description: str
    training: str
    make: Callable[[], object] = field(repr=False)


def _chgnet(version: str) -> Callable[[], object]:
    def make():
        from chgnet.model import CHGNet
        from chgnet.model.dynamics import CHGNetCalculator

        model = CHGNet.load(model_name=version, use_device="cpu", verbose=False)
        return CHGNetCalculator(model, use_device="cpu")
    return make


def _sevennet(model: str, modal: Optional[str] = None) -> Callable[[], object]:
    def make():
        from sevenn.calculator import SevenNetCalculator

        return SevenNetCalculator(model, device="cpu", modal=modal)
    return make


CANDIDATES: Dict[str, Candidate] = {c.name: c for c in [
    Candidate("chgnet-0.3.0", "chgnet", "CHGNet 0.3.0 (default CHGNet weights)",
              "MPtrj, PBE/PBE+U", _chgnet("0.3.0")),
    Candidate("chgnet-0.2.0", "chgnet", "CHGNet 0.2.0", "MPtrj, PBE/PBE+U", _chgnet("0.2.0")),
    Candidate("sevennet-0", "sevenn", "SevenNet-0 (11Jul2024, '7net-0')", "MPtrj, PBE/PBE+U",
              _sevennet("7net-0")),
    Candidate("sevennet-l3i5", "sevenn", "SevenNet-l3i5 ('7net-l3i5', lmax 3, 5 layers)",
              "MPtrj, PBE/PBE+U", _sevennet("7net-l3i5")),
    Candidate("sevennet-mf-0-pbe", "sevenn", "SevenNet-MF-0, PBE head ('7net-mf-0', modal PBE)",
              "MPtrj + MP r2SCAN (multi-fidelity), PBE head used", _sevennet("7net-mf-0", "PBE")),
]}
DEFAULT_MODELS = ["chgnet-0.3.0", "chgnet-0.2.0", "sevennet-0", "sevennet-mf-0-pbe", "sevennet-l3i5"]


def _versions() -> Dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("torch", "chgnet", "sevenn", "ase", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def _loadavg() -> Optional[float]:
    """1-minute load average (timings on a shared machine depend on it), or None."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ============================================================================ evaluation
def evaluate(calc, fr: Frames, idx: np.ndarray, progress=None) -> Dict[str, np.ndarray]:
    """Energy (F,), forces (F, N, 3), stress (F, 3, 3, GPa, ASE sign) and wall time (F,) s."""
    energies, forces, stresses, times = [], [], [], []
    for i in idx:
        atoms = fr.to_atoms(int(i))
        if hasattr(calc, "reset"):
            calc.reset()  # ASE calculators reuse results for identical atoms: force a new call
        atoms.calc = calc
        t0 = time.perf_counter()
        e = atoms.get_potential_energy()
        f = atoms.get_forces()
        s = atoms.get_stress(voigt=True)
        times.append(time.perf_counter() - t0)
        energies.append(float(e))
        forces.append(np.asarray(f, dtype=np.float64))
        stresses.append(voigt_to_matrix(s) * EV_PER_A3_TO_GPA)
        if progress is not None:
            progress.update(1)
    return {"energy": np.array(energies), "forces": np.stack(forces),
            "stress": np.stack(stresses), "time": np.array(times)}


def system_report(fr: Frames, idx: np.ndarray, pred: Dict[str, np.ndarray]) -> dict:
    """All metrics of one candidate on frames ``idx`` of one system (see module docstring)."""
    t = float(np.median(pred["time"]))
    rep = {"time_per_frame_s": t, "time_per_atom_ms": t / fr.natoms * 1e3,
           "times_s": [float(x) for x in pred["time"]]}
    if fr.forces is not None:
        rep["forces"] = force_metrics(pred["forces"], fr.forces[idx])
    if fr.energy is not None:
        rep["energy"] = energy_metrics(pred["energy"], fr.energy[idx], fr.natoms)
    if fr.virial is not None:
        rep["stress"] = stress_metrics(pred["stress"], virial_to_stress_gpa(fr.virial[idx],
                                                                            fr.cells[idx]))
    return rep


def interleaved_timing(calcs: Dict[str, object], systems: Dict[str, Frames],
                       rounds: int) -> Dict[str, dict]:
    """Time every candidate on the middle frame of every system, models interleaved.

    On a shared machine the load drifts; cycling through the models inside each round and
    keeping the fastest of ``rounds`` calls makes their times comparable with each other.
    Returns ``{model: {system: {"min_s", "all_s", "ms_per_atom"}}}``.
    """
    from tqdm import tqdm

    out: Dict[str, dict] = {m: {} for m in calcs}
    with tqdm(total=rounds * len(systems) * len(calcs), desc="timing", unit="call") as bar:
        for _ in range(rounds):
            for sname, fr in systems.items():
                mid = np.array([fr.nframes // 2])
                for mname, calc in calcs.items():
                    t = float(evaluate(calc, fr, mid)["time"][0])
                    out[mname].setdefault(sname, {"all_s": []})["all_s"].append(t)
                    bar.update(1)
    for mname, per in out.items():
        for sname, rec in per.items():
            rec["min_s"] = min(rec["all_s"])
            rec["ms_per_atom"] = rec["min_s"] / systems[sname].natoms * 1e3
    return out


def format_timing(timing: Dict[str, dict], systems: dict) -> str:
    """Markdown table of the interleaved timing: s per E+F+S call, one column per system."""
    names = list(systems)
    lines = ["| model | " + " | ".join(f"{n} ({systems[n]['natoms']})" for n in names) + " |",
             "|" + "---|" * (len(names) + 1)]
    for mname, per in timing.items():
        lines.append(f"| {mname} | " + " | ".join(
            _fmt(per.get(n, {}).get("min_s"), ".2f") for n in names) + " |")
    return "\n".join(lines)


def load_systems(paths: Sequence[Path]) -> Dict[str, Frames]:
    from glassjax.data.readers import read_any

    systems: List[Frames] = []
    for p in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DataNotice: skipped duplicate OUTCARs etc.
            systems += read_any(p)
    return merge_systems(systems)


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def format_table(results: dict, systems: dict) -> str:
    """Markdown table: one row per (system, candidate)."""
    head = ("| system (atoms, frames) | model | F RMSE | F MAE | F r | ΔE/atom RMSE (meV) "
            "| E offset (eV/atom) | stress RMSE (GPa) | ΔP bias (GPa) | s/frame |")
    lines = [head, "|" + "---|" * 10]
    for sname, sinfo in systems.items():
        for mname, per_sys in results.items():
            rep = per_sys.get(sname)
            if rep is None:
                continue
            f, e, s = rep.get("forces", {}), rep.get("energy", {}), rep.get("stress", {})
            lines.append(
                f"| {sname} ({sinfo['natoms']}, {len(sinfo['frames'])}) | {mname} "
                f"| {_fmt(f.get('rmse'), '.3f')} | {_fmt(f.get('mae'), '.3f')} "
                f"| {_fmt(f.get('r'), '.3f')} "
                f"| {_fmt(None if not e else e['rmse_centered'] * 1e3, '.1f')} "
                f"| {_fmt(e.get('offset'), '.3f')} "
                f"| {_fmt(s.get('rmse'), '.2f')} | {_fmt(s.get('pressure_bias'), '+.2f')} "
                f"| {rep['time_per_frame_s']:.2f} |")
    return "\n".join(lines)


def summary_rows(results: dict, systems: dict) -> Dict[str, dict]:
    """Per model, per group of systems with the same composition and level of theory.

    Returns ``{model: {"time_per_atom_ms_mean": ..., "groups": {group: {...}}}}`` where each
    group holds ``force_rmse_pooled`` (root of the component-weighted mean of the systems'
    squared force RMSEs, eV/Å), its ``systems`` and, when it has two or more systems with
    energies, ``energy_common_offset`` (:func:`pooled_energy_rmse`, eV/atom).  Systems of one
    group share the DFT energy zero; mixing groups would mix levels of theory.
    """
    out: Dict[str, dict] = {}
    for mname, per_sys in results.items():
        groups: Dict[str, List[str]] = {}
        for sname in per_sys:
            info = systems[sname]
            groups.setdefault(f"{info['reduced_formula']} / {info['theory']}", []).append(sname)
        times = [rep["time_per_atom_ms"] for rep in per_sys.values()]
        entry: dict = {"time_per_atom_ms_mean": float(np.mean(times)) if times else None,
                       "groups": {}}
        for gname, members in groups.items():
            g: dict = {"systems": members}
            fm = [m for m in members if "forces" in per_sys[m]]
            if fm:
                n = np.array([len(systems[m]["frames"]) * systems[m]["natoms"] * 3 for m in fm],
                             dtype=np.float64)
                r = np.array([per_sys[m]["forces"]["rmse"] for m in fm])
                g["force_rmse_pooled"] = float(np.sqrt(np.sum(n * r ** 2) / np.sum(n)))
            em = [m for m in members if "energy" in per_sys[m]]
            if len(em) >= 2:
                g["energy_common_offset"] = pooled_energy_rmse(
                    [per_sys[m]["energy"]["rmse_centered"] for m in em],
                    [per_sys[m]["energy"]["offset"] for m in em],
                    [len(systems[m]["frames"]) for m in em])
            entry["groups"][gname] = g
        out[mname] = entry
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="compare_teachers.py",
        description="Compare candidate teacher potentials (CHGNet, SevenNet) with DFT frames: "
                    "force/energy/stress errors and time per frame, per system.")
    p.add_argument("--data", nargs="+", type=Path, default=None,
                   help=f"DFT inputs (any glassjax reader input). Default: {B2O3_DIR} and "
                        f"{B8O6_OUTCAR.relative_to(REPO)}")
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS,
                   help=f"candidates to run, from: {', '.join(CANDIDATES)} (default: all)")
    p.add_argument("--frames-per-system", type=int, default=4,
                   help="frames per system, spread evenly over its trajectory (0 = all)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--timing-rounds", type=int, default=0,
                   help="after the accuracy pass, time every model on the middle frame of every "
                        "system this many times, models interleaved, keeping the fastest "
                        "(fair timings on a loaded machine; default 0 = off)")
    p.add_argument("--timing-only", action="store_true",
                   help="skip the accuracy pass (use with --timing-rounds)")
    p.add_argument("--out", type=Path, default=None, help="JSON file for all numbers (atomic write)")
    return p


def run(args) -> dict:
    unknown = [m for m in args.models if m not in CANDIDATES]
    if unknown:
        raise ConfigError(f"--models: unknown candidate(s) {unknown}; choose from {list(CANDIDATES)}")
    if args.frames_per_system < 0:
        raise ConfigError("--frames-per-system must be >= 0 (0 = all frames)")
    if args.timing_rounds < 0 or (args.timing_only and args.timing_rounds == 0):
        raise ConfigError("--timing-rounds must be >= 0, and > 0 with --timing-only")
    paths = args.data or [p for p in (B2O3_DIR, B8O6_OUTCAR) if p.exists()]
    if not paths:
        raise DataError(B2O3_DIR, "default DFT inputs not found", hint="pass --data")
    for p in paths:
        if not Path(p).exists():
            raise DataError(p, "does not exist", hint="pass existing DFT inputs with --data")
    systems = load_systems(paths)
    picks = {n: select_frames(fr.nframes, args.frames_per_system) for n, fr in systems.items()}
    sys_info = {n: {"natoms": fr.natoms, "formula": fr.formula, "nframes_total": fr.nframes,
                    "reduced_formula": reduced_formula(fr.species),
                    "frames": picks[n].tolist(), "sources": [fr.source[i] for i in picks[n]],
                    "theory": KNOWN_THEORY.get(n, "unknown"),
                    "absolute_energy_comparable": n in ABSOLUTE_ENERGY_COMPARABLE,
                    "labels": fr.labels}
                for n, fr in systems.items()}

    try:
        import torch
    except ImportError as exc:
        raise ConfigError(f"the teacher potentials need PyTorch ({exc}); install the teacher extra: "
                          "pip install torch==2.13.0, then pip install -e '.[teacher]' "
                          "(see train/teacher/README.md)") from None
    from tqdm import tqdm

    load_start = _loadavg()
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

    torch.set_num_threads(args.threads)
    results: Dict[str, dict] = {}
    models_meta: Dict[str, dict] = {}
    calcs: Dict[str, object] = {}  # kept only for the timing pass
    keep = args.timing_rounds > 0
    nacc = 0 if args.timing_only else sum(len(v) for v in picks.values())
    with tqdm(total=nacc * len(args.models), desc="teacher frames", unit="frame") as bar:
        for mname in args.models:
            cand = CANDIDATES[mname]
            t0 = time.perf_counter()
            try:
                calc = cand.make()
            except ImportError as exc:
                print(f"[skip] {mname}: package {cand.package!r} not importable ({exc})",
                      file=sys.stderr)
                bar.update(nacc)
                continue
            load_s = time.perf_counter() - t0
            # one untimed call so lazy initialisation is not charged to the first system
            first = next(iter(systems))
            evaluate(calc, systems[first], picks[first][:1])
            models_meta[mname] = {"description": cand.description, "training": cand.training,
                                  "package": cand.package, "load_s": load_s}
            if not args.timing_only:
                results[mname] = {}
                for sname, fr in systems.items():
                    pred = evaluate(calc, fr, picks[sname], progress=bar)
                    results[mname][sname] = system_report(fr, picks[sname], pred)
            if keep:
                calcs[mname] = calc
            del calc
            gc.collect()
    timing = interleaved_timing(calcs, systems, args.timing_rounds) if keep else {}
    calcs.clear()
    return {
        "meta": {"started_utc": started,
                 "finished_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                 "host": platform.node(), "cpu": _cpu_name(), "cpu_count": os.cpu_count(),
                 "torch_threads": args.threads, "device": "cpu", "python": platform.python_version(),
                 "loadavg_1min_start_end": [load_start, _loadavg()],
                 "versions": _versions(), "frames_per_system": args.frames_per_system,
                 "data": [str(p) for p in paths],
                 "units": {"forces": "eV/Å", "energy": "eV/atom", "stress": "GPa (ASE sign)",
                           "time": "s per energy+forces+stress call (median over frames)"}},
        "systems": sys_info, "models": models_meta, "results": results,
        "summary": summary_rows(results, sys_info), "timing": timing,
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = run(args)
    except GlassJaxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    if report["results"]:
        print(format_table(report["results"], report["systems"]))
        print()
    if report["timing"]:
        print(f"Interleaved timing, fastest of {args.timing_rounds} E+F+S calls (s):")
        print(format_timing(report["timing"], report["systems"]))
        print()
    for mname, s in report["summary"].items():
        print(f"{mname}: {s['time_per_atom_ms_mean']:.2f} ms/atom per E+F+S call "
              f"({report['meta']['torch_threads']} thread(s), mean over systems)")
        for gname, g in s["groups"].items():
            line = f"    {gname} ({len(g['systems'])} systems):"
            if "force_rmse_pooled" in g:
                line += f" pooled force RMSE {g['force_rmse_pooled']:.3f} eV/Å"
            if "energy_common_offset" in g:
                e = g["energy_common_offset"]
                line += (f"; ΔE/atom RMSE with one offset {e['rmse'] * 1e3:.1f} meV "
                         f"(offsets spread {e['offset_spread'] * 1e3:.1f} meV)")
            print(line)
    print("\nLevels of theory: " + "; ".join(f"{n}: {v['theory']}" for n, v in report["systems"].items()))
    print("Teachers: PBE/PBE+U (Materials Project); no D3. Energies: mean offset per system removed.")
    if args.out is not None:
        write_text_atomic(args.out, json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
