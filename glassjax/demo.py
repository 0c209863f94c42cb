"""The main job, ``glassjax demo``: a Li2O·2B2O3 glass made, melt-quenched and compressed.

One command that goes from nothing to the 2024 paper's Fig. 10 experiment (triaxial
compression of the LB67 glass, 4B fraction and 3-ring count versus strain) on a laptop CPU:

1. **build** a random Li2O·2B2O3 (LB67, 33.3 Li2O - 66.7 B2O3 mol%) configuration of about
   ``n_atoms`` atoms (:func:`glassjax.md.builder.build_glass`).  LB67 is not one of Table II's
   glasses: it is built at 2.22 g/cm^3 (:data:`LB67_DENSITY`);
2. **melt-quench** it on the potential (default: the shipped DeepPot-SE,
   :mod:`glassjax.pretrained`), then **NPT** at 300 K and 0 GPa, recording the density: the
   stages of a simulation recipe (:func:`glassjax.md.recipe.run_stages`; the recipe is
   written to ``OUT/recipe.toml``, so ``glassjax simulate OUT/recipe.toml`` is the same run);
3. **compress** it triaxially (all three axes ``L(t) = L0 (1 + rate t)``, NVT at 300 K) with
   the jit-compiled strain loop :func:`glassjax.md.deform.run_deformation`, recording on the
   fly the pressure, the density, the fraction of four-coordinated boron (B-O bonds shorter
   than ``bo_cutoff`` = 2.0 Å, :func:`glassjax.analysis.coordination.network_properties`) and
   the number of T3O3 rings (:func:`glassjax.analysis.rings.three_rings`);
4. **report**: ``compression.csv``, ``compression.png``, ``glass_vs_experiment.csv`` and
   ``summary.txt``.

Schedules (:class:`Schedule`): :data:`LAPTOP` (the default: a few minutes on 2 CPU cores for
300 atoms with a fast model), :data:`QUICK` (60 atoms, a few hundred steps per stage: the CI
test) and :data:`FULL` (the papers' protocol: Teter/Du pre-melt at 3500 K quenched at 1 K/ps,
then on the potential 2000 K for 200 ps, 10 K/ps to 1000 K, 200 ps there, 2 K/ps to 300 K,
300 ps NPT; triaxial compression at -1e-3 per ps to -0.25; 1000 atoms).

Every stage is resumable: running the demo again with the same settings and output folder
skips the finished stages (saying so) and continues an interrupted one from its checkpoint.
Units: Å, ps, K, GPa, g/cm^3; strain rates in 1/ps (negative = compression).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from glassjax.atomic_write import atomic_path, write_text_atomic
from glassjax.errors import ConfigError, DataError

DEMO_COMPOSITION = "Li2O-2B2O3"
#: Build density of Li2O·2B2O3 (g/cm^3).  LB67 is not in Table II; 2.22 g/cm^3 is the Table II
#: experimental density of the nearest tabulated lithium borate, LB70 (30 mol% Li2O).  The
#: experimental reference reported beside the simulation (:func:`experimental_reference`) is
#: the linear interpolation LB70-LB60 at 33.3 mol% Li2O: 2.233 g/cm^3, N4 = 0.418.
LB67_DENSITY = 2.22
BO_CUTOFF = 2.0  # Å, the papers' B-O bond cutoff for 4B and 3-rings

# (name, type, ensemble, segments) of a stage list; segments as glassjax.md.schedule
Segments = Tuple[Tuple, ...]


@dataclass(frozen=True)
class Schedule:
    """One demo protocol (times ps, temperatures K, rates K/ps or 1/ps, strains signed).

    Attributes:
        name: ``"laptop"``, ``"quick"`` or ``"full"``.
        n_atoms: default atom target (``--atoms`` overrides).
        dt: MD time step, ps (all stages).
        relax_steps: FIRE steps on the potential before melting (0: none); fmax ``relax_fmax``.
        premelt: the papers' classical preparation on Teter/Du (2024 paper: a random start
            melted at 3500 K and quenched at 1 K/ps, NVT at the experimental density):
            ``premelt_melt`` and ``premelt_quench`` segments, after a Teter FIRE relaxation.
        melt, quench: temperature segments (:func:`glassjax.md.schedule.temperature_schedule`)
            of the melt and quench stages on the potential, in ``melt_ensemble`` /
            ``quench_ensemble`` (``"nvt"`` at the built density or ``"npt"`` at 0 GPa).
        npt_ps: NPT equilibration at 300 K and 0 GPa (density and N4 averaged over its second half).
        couple: NPT cell coupling (``"iso"`` or ``"aniso"``).
        strain_rate: triaxial engineering strain rate, 1/ps (negative).
        max_strain: final strain (negative).
        record_every, snapshot_every: strain between CSV rows / H5MD snapshots.
        chunk, every: steps per jitted chunk / between frames of the melt-quench stages.
    """

    name: str
    n_atoms: int
    dt: float
    relax_steps: int
    melt: Segments
    quench: Segments
    npt_ps: float
    strain_rate: float
    max_strain: float
    record_every: float
    snapshot_every: float
    chunk: int
    every: int
    relax_fmax: float = 0.2
    melt_ensemble: str = "nvt"
    quench_ensemble: str = "nvt"
    couple: str = "iso"
    tau_t: float = 0.1
    tau_p: float = 1.0
    premelt: bool = False
    premelt_melt: Segments = ()
    premelt_quench: Segments = ()

    def md_steps(self) -> Dict[str, int]:
        """MD steps of each stage (for the summary and the time estimate)."""
        from glassjax.md.schedule import temperature_schedule

        out = {}
        if self.premelt:
            out["teter_melt"] = len(temperature_schedule(list(self.premelt_melt), self.dt))
            out["teter_quench"] = len(temperature_schedule(list(self.premelt_quench), self.dt))
        out["melt"] = len(temperature_schedule(list(self.melt), self.dt))
        out["quench"] = len(temperature_schedule(list(self.quench), self.dt))
        out["npt_300K"] = int(round(self.npt_ps / self.dt))
        out["compression"] = int(math.ceil(abs(self.max_strain / self.strain_rate) / self.dt - 1e-9))
        return out


#: Default: a few minutes on a 2-core CPU for ~300 atoms with a fast DeepPot-SE model.  Melt at
#: 2500 K for 3 ps (NVT, built density), quench to 300 K in 5 ps (440 K/ps, NVT), 4 ps NPT at
#: 300 K / 0 GPa, triaxial compression at -0.05 per ps (50x the paper's rate) to -0.15.
LAPTOP = Schedule(name="laptop", n_atoms=300, dt=0.001, relax_steps=200,
                  melt=(("hold", 2500.0, 3.0),), quench=(("ramp", 2500.0, 300.0, 5.0),),
                  npt_ps=4.0, tau_p=0.5, strain_rate=-0.05, max_strain=-0.15, record_every=0.005,
                  snapshot_every=0.025, chunk=500, every=100)

#: CI size: ~60 atoms and a few hundred steps per stage (not a glass; it exercises every stage).
QUICK = Schedule(name="quick", n_atoms=60, dt=0.001, relax_steps=0,
                 melt=(("hold", 2500.0, 0.2),), quench=(("ramp", 2500.0, 300.0, 0.3),),
                 npt_ps=0.2, tau_p=0.2, strain_rate=-0.5, max_strain=-0.15, record_every=0.01,
                 snapshot_every=0.05, chunk=100, every=50)

#: The papers' protocol (2024 paper, Sec. II; 2022 paper for the MLP melt): Teter/Du melt at
#: 3500 K (500 ps; the length is not given in the paper) and quench at 1 K/ps (NVT, built
#: density), then on the potential (NPT, 0 GPa): 10 K/ps to 2000 K, 200 ps there, 10 K/ps to
#: 1000 K, 200 ps there, 2 K/ps to 300 K, 300 ps NPT at 300 K (anisotropic cell), triaxial
#: compression at -1e-3 per ps to -0.25; 1000 atoms.  Days on a CPU: use a GPU.
FULL = Schedule(name="full", n_atoms=1000, dt=0.001, relax_steps=0,
                premelt=True, premelt_melt=(("hold", 3500.0, 500.0),),
                premelt_quench=(("rate", 3500.0, 300.0, 1.0),),
                melt=(("rate", 300.0, 2000.0, 10.0), ("hold", 2000.0, 200.0)),
                quench=(("rate", 2000.0, 1000.0, 10.0), ("hold", 1000.0, 200.0), ("rate", 1000.0, 300.0, 2.0)),
                melt_ensemble="npt", quench_ensemble="npt", couple="aniso", npt_ps=300.0, tau_p=1.0,
                strain_rate=-1e-3, max_strain=-0.25, record_every=0.001, snapshot_every=0.01,
                chunk=1000, every=1000)

SCHEDULES = {"laptop": LAPTOP, "quick": QUICK, "full": FULL}


# ----------------------------------------------------------------------------- experiment

def experimental_reference(composition) -> Optional[Dict]:
    """Experimental density (g/cm^3) and N4 (fraction) for a composition, with their source.

    A Table II glass (:mod:`glassjax.md.compositions`) gives its row; a binary lithium borate
    between two Table II LB glasses gives the linear interpolation in mol% Li2O between them
    (Li2O·2B2O3: LB70 and LB60, 2.233 g/cm^3 and N4 = 0.418).  None otherwise.
    """
    from glassjax.md.builder import parse_composition
    from glassjax.md.compositions import TABLE_II, find_glass

    fr = parse_composition(composition)
    row = find_glass(fr)
    cite = "Table II of Urata et al., Phys. Rev. Materials 8, 033602 (2024)"
    if row is not None:
        return {"density": row.density, "n4": row.b4 / 100.0, "source": f"{row.name} in {cite}"}
    if set(fr) <= {"B2O3", "Li2O"}:
        x = 100.0 * fr.get("Li2O", 0.0)
        lb = sorted((r for r in TABLE_II.values() if r.sio2 == 0), key=lambda r: r.li2o)
        for lo, hi in zip(lb[:-1], lb[1:]):
            if lo.li2o <= x <= hi.li2o:
                w = (x - lo.li2o) / (hi.li2o - lo.li2o)
                return {"density": (1 - w) * lo.density + w * hi.density,
                        "n4": ((1 - w) * lo.b4 + w * hi.b4) / 100.0,
                        "source": f"linear interpolation at {x:.1f} mol% Li2O between {lo.name} "
                                  f"({lo.li2o:g} mol%) and {hi.name} ({hi.li2o:g} mol%) of {cite}"}
    return None


def build_density(composition, density: Optional[float] = None) -> Tuple[float, str]:
    """The density (g/cm^3) the glass is built at, and where it comes from."""
    from glassjax.md.builder import parse_composition
    from glassjax.md.compositions import find_glass

    if density is not None:
        if not (density > 0 and math.isfinite(density)):
            raise ConfigError(f"--density must be a positive number (g/cm^3), got {density}")
        return float(density), "given"
    fr = parse_composition(composition)
    row = find_glass(fr)
    if row is not None:
        return row.density, f"experimental, {row.name} of Table II (2024 paper)"
    if abs(fr.get("Li2O", 0.0) - 1 / 3) < 0.005 and abs(fr.get("B2O3", 0.0) - 2 / 3) < 0.005 and len(fr) == 2:
        return LB67_DENSITY, ("LB67 is not in Table II: 2.22 g/cm^3, the experimental density of the nearest "
                              "tabulated lithium borate LB70")
    ref = experimental_reference(composition)
    if ref is None:
        raise ConfigError(f"composition {composition!r} is not a Table II glass and no experimental density "
                          "is known for it: pass --density (g/cm^3)")
    return round(ref["density"], 3), "interpolated between Table II lithium borates"


# ----------------------------------------------------------------------------- recipe

def potential_entry(potential: str, strict: bool = True):
    """The recipe's potential for ``--potential`` (``"default"`` or a model file)."""
    if potential in (None, "", "default"):
        return {"type": "default", "strict": bool(strict)}
    p = Path(potential).expanduser()
    if not p.is_file():
        raise ConfigError(f"--potential {potential}: model file not found (give \"default\" or a .dp / "
                          "checkpoint file)")
    return {"type": "model", "model": str(p.resolve()), "strict": bool(strict)}


def recipe_dict(schedule: Schedule, composition: str, n_atoms: int, density: float, potential: Dict,
                seed: int) -> Dict:
    """The simulation recipe (:mod:`glassjax.md.recipe` layout) of the build-melt-quench-NPT part."""
    stages: List[Dict] = []
    md = {"dt": schedule.dt, "tau_t": schedule.tau_t}
    if schedule.premelt:
        stages.append({"name": "teter_relax", "type": "minimize", "potential": "teter", "fmax": 0.1,
                       "max_steps": 2000})
        t0 = schedule.premelt_melt[0][1]
        stages.append(dict(md, name="teter_melt", potential="teter", ensemble="nvt",
                           temperature=[list(s) for s in schedule.premelt_melt], initial_temperature=t0))
        stages.append(dict(md, name="teter_quench", potential="teter", ensemble="nvt",
                           temperature=[list(s) for s in schedule.premelt_quench]))
    if schedule.relax_steps > 0:
        stages.append({"name": "relax", "type": "minimize", "fmax": schedule.relax_fmax,
                       "max_steps": int(schedule.relax_steps)})

    def md_stage(name, ensemble, segments, **kw):
        st = dict(md, name=name, ensemble=ensemble, temperature=[list(s) for s in segments], **kw)
        if ensemble == "npt":
            st.update(tau_p=schedule.tau_p, pressure=0.0, couple=schedule.couple)
        return st

    first = {} if schedule.premelt else {"initial_temperature": float(schedule.melt[0][1])}
    if schedule.melt_ensemble == schedule.quench_ensemble:
        # one stage: one compiled loop and one start-up (a stage boundary costs a compile)
        stages.append(md_stage("melt_quench", schedule.melt_ensemble, schedule.melt + schedule.quench, **first))
    else:
        stages.append(md_stage("melt", schedule.melt_ensemble, schedule.melt, **first))
        stages.append(md_stage("quench", schedule.quench_ensemble, schedule.quench))
    stages.append(md_stage("npt_300K", "npt", (("hold", 300.0, schedule.npt_ps),)))
    return {"potential": potential,
            "system": {"composition": composition, "n_atoms": int(n_atoms), "density": float(density),
                       "seed": int(seed)},
            "run": {"output": ".", "chunk": int(schedule.chunk), "every": int(schedule.every), "seed": int(seed)},
            "stage": stages}


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ConfigError(f"cannot write {v!r} to TOML")


def to_toml(recipe: Dict, header: str = "") -> str:
    """A recipe dict (tables of scalars/lists, a list of ``stage`` tables) as TOML text."""
    lines = [f"# {h}" if h else "#" for h in header.splitlines()]
    tables = []
    for key, val in recipe.items():
        if isinstance(val, dict):
            tables.append((key, val))
        elif key != "stage":
            lines.append(f"{key} = {_toml_value(val)}")
    for key, val in tables:
        lines += ["", f"[{key}]"] + [f"{k} = {_toml_value(x)}" for k, x in val.items()]
    for st in recipe.get("stage", []):
        lines += ["", "[[stage]]"] + [f"{k} = {_toml_value(x)}" for k, x in st.items()]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- observables

def compression_observables(symbols: Sequence[str], bo_cutoff: float = BO_CUTOFF, max_rings: int = 512):
    """``observables(state) -> {"frac_B4", "n_3rings", "rings_incomplete"}`` for the strain loop.

    ``frac_B4``: fraction of B with exactly four O closer than ``bo_cutoff`` (Å);
    ``n_3rings``: number of T3O3 rings (T = B, Si) of that bond network;
    ``rings_incomplete``: 1 when the ring search hit a static capacity (more than 6 O on a T,
    4 T on an O, or ``max_rings`` rings), then the count is a lower bound.
    Evaluated inside the jitted loop over the MD neighbour list (its cutoff, the model's rcut,
    is far beyond ``bo_cutoff``).
    """
    import jax.numpy as jnp

    from glassjax.analysis.bonds import SpeciesIndex, cutoff_matrix, parse_cutoffs
    from glassjax.analysis.coordination import network_properties
    from glassjax.analysis.rings import three_rings

    type_map = sorted(set(symbols))
    species = SpeciesIndex.from_type_map(type_map)
    cut = cutoff_matrix(type_map, parse_cutoffs({"B-O": float(bo_cutoff)}))
    types_np = np.array([type_map.index(s) for s in symbols], dtype=np.int32)

    def observables(st):
        types = jnp.asarray(types_np)
        c = jnp.asarray(cut, st.positions.dtype)
        props = network_properties(st.positions, st.cell, types, st.nl, c, species, st.masses)
        rings = three_rings(st.positions, st.cell, types, st.nl, c, species, max_t_o=6, max_o_t=4,
                            max_rings=int(max_rings))
        return {"frac_B4": props["frac_B4"], "n_3rings": rings["count"].astype(st.positions.dtype),
                "rings_incomplete": rings["overflow"].astype(st.positions.dtype)}

    return observables


# ----------------------------------------------------------------------------- outputs

COMPRESSION_COLUMNS = ("step", "time_ps", "strain", "pressure_GPa", "density_g_cm3", "frac_B4", "n_3rings",
                       "temperature_K")


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    def fmt(v):
        if isinstance(v, (str, int, np.integer)):
            return str(v)
        return repr(float(v))

    text = ",".join(header) + "\n" + "".join(",".join(fmt(v) for v in row) + "\n" for row in rows)
    write_text_atomic(path, text)


def read_csv(path) -> Dict[str, np.ndarray]:
    """A demo CSV as column -> array (numbers as float, other text kept)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise DataError(path, "empty file")
    out = {}
    for j, name in enumerate(rows[0]):
        col = [r[j] for r in rows[1:]]
        try:
            out[name] = np.array([float(x) for x in col])
        except ValueError:
            out[name] = np.array(col)
    return out


def compression_table(run_dir: Path) -> Dict[str, np.ndarray]:
    """The compression records of ``run_dir`` (strain 0 from the trajectory's first frame, then
    every row of ``deform.csv``), keyed by :data:`COMPRESSION_COLUMNS`."""
    import h5py

    from glassjax.md.deform import read_deformation_log

    log = read_deformation_log(run_dir / "deform.csv")
    with h5py.File(run_dir / "trajectory.h5", "r") as f:
        obs = f["observables"]
        first = {k: float(obs[k]["value"][0]) for k in ("strain", "pressure", "density", "frac_B4", "n_3rings",
                                                          "temperature")}
        step0 = int(obs["strain"]["step"][0])
        t0 = float(obs["strain"]["time"][0])
    table = {"step": np.concatenate([[step0], log["step"]]),
             "time_ps": np.concatenate([[t0], log["time_ps"]]),
             "strain": np.concatenate([[first["strain"]], log["strain"]]),
             "pressure_GPa": np.concatenate([[first["pressure"]], log["P_GPa"]]),
             "density_g_cm3": np.concatenate([[first["density"]], log["density_g_cm3"]]),
             "frac_B4": np.concatenate([[first["frac_B4"]], log["frac_B4"]]),
             "n_3rings": np.concatenate([[first["n_3rings"]], log["n_3rings"]]),
             "temperature_K": np.concatenate([[first["temperature"]], log["T_K"]])}
    return table


def plot_compression(table: Dict[str, np.ndarray], path: Path, title: str) -> None:
    """Three panels versus strain: 4B fraction, 3-ring count, pressure (PNG, atomic)."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone
    from matplotlib.ticker import MaxNLocator

    s = table["strain"]
    fig = Figure(figsize=(12, 3.8))
    axes = fig.subplots(1, 3)
    for ax, key, label in ((axes[0], "frac_B4", "4B fraction"), (axes[1], "n_3rings", "number of 3-rings"),
                           (axes[2], "pressure_GPa", "pressure (GPa)")):
        ax.plot(s, table[key], "o-", ms=3)
        ax.set_xlabel("triaxial strain")
        ax.set_ylabel(label)
        ax.invert_xaxis()
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def glass_properties(npt_dir: Path, bo_cutoff: float = BO_CUTOFF) -> Dict[str, float]:
    """Density and N4 of the glass: means (and standard deviations) over the second half of
    the NPT stage (thermo log rows and trajectory frames)."""
    from glassjax.analysis.coordination import coordination_trajectory
    from glassjax.analysis.io import read_trajectory

    th = read_csv(npt_dir / "thermo.csv")
    dens = th["density_g_cm3"]
    half = dens[len(dens) // 2:]
    frames = read_trajectory(npt_dir / "trajectory.h5")
    props = coordination_trajectory(frames, {"B-O": float(bo_cutoff)})
    n4 = np.asarray(props["frac_B4"])
    n4h = n4[len(n4) // 2:]
    return {"density": float(np.mean(half)), "density_std": float(np.std(half)), "density_rows": int(len(half)),
            "n4": float(np.mean(n4h)), "n4_std": float(np.std(n4h)), "n4_frames": int(len(n4h))}


# ----------------------------------------------------------------------------- driver

@dataclass
class DemoResult:
    out: Path
    files: Dict[str, Path] = field(default_factory=dict)
    skipped: List[str] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)


def _settings(schedule: Schedule, composition, n_atoms, density, potential, seed, precision) -> Dict:
    return {"schedule": asdict(schedule), "composition": composition, "n_atoms": int(n_atoms),
            "density": float(density), "potential": potential, "seed": int(seed), "precision": precision}


def _norm(obj):
    return json.loads(json.dumps(obj))


def run_demo(out="demo_out", n_atoms: Optional[int] = None, composition: str = DEMO_COMPOSITION,
             potential: str = "default", schedule: Schedule = LAPTOP, seed: int = 0,
             density: Optional[float] = None, strict: bool = True, max_strain: Optional[float] = None,
             progress: bool = True, log: Callable[[str], None] = print) -> DemoResult:
    """Build, melt-quench, equilibrate and triaxially compress a glass; write the report.

    Args:
        out: output folder (created; a folder holding a demo with other settings is refused).
        n_atoms: atom target (default: the schedule's: 300 laptop, 60 quick, 1000 full).
        composition: any form :func:`glassjax.md.builder.parse_composition` reads.
        potential: ``"default"`` (the shipped DeepPot-SE) or a model file (.dp or checkpoint).
        schedule: :data:`LAPTOP`, :data:`QUICK` or :data:`FULL` (or your own :class:`Schedule`).
        seed: builder and velocity seed.
        density: build density, g/cm^3 (default: :func:`build_density`).
        strict: stop when an atom has more neighbours than the model's ``sel`` (False: truncate
            as DeePMD-kit does, needed for models whose sel is too small for compressed glass).
        max_strain: final triaxial strain (negative; default the schedule's).
        progress: tqdm bars; log: one-line messages.

    Returns a :class:`DemoResult` (folder, written files, skipped stages, wall times in s).
    Precision: JAX's default float (float32, or float64 after ``glassjax.precision.enable_x64()``).
    """
    from glassjax.md import deform as D
    from glassjax.md import integrators as I
    from glassjax.md import recipe as R
    from glassjax.md.trajectory import load_checkpoint
    from glassjax.precision import default_float

    t_start = time.time()
    out = Path(out)
    if max_strain is not None:
        if not (-1 < max_strain < 0):
            raise ConfigError(f"--strain must be a negative strain in (-1, 0) (compression), got {max_strain}")
        schedule = replace(schedule, max_strain=float(max_strain))
    n_atoms = int(n_atoms if n_atoms is not None else schedule.n_atoms)
    if n_atoms < 20:
        raise ConfigError(f"--atoms must be at least 20, got {n_atoms}")
    rho, rho_src = build_density(composition, density)
    pot = potential_entry(potential, strict)
    precision = np.dtype(default_float()).name
    settings = _norm(_settings(schedule, composition, n_atoms, rho, pot, seed, precision))
    out.mkdir(parents=True, exist_ok=True)
    state_file = out / "demo.json"
    result = DemoResult(out=out)
    if state_file.is_file():
        old = json.loads(state_file.read_text())
        if old.get("settings") != settings:
            diff = sorted(k for k in set(settings) | set(old.get("settings", {}))
                          if settings.get(k) != old.get("settings", {}).get(k))
            raise ConfigError(f"{out} holds a demo run with other settings ({', '.join(diff)} differ): "
                              "use another output folder (-o) or delete it")
        timings = dict(old.get("timings", {}))
    else:
        timings = {}

    def save_state():
        write_text_atomic(state_file, json.dumps({"settings": settings, "timings": timings}, indent=1))

    save_state()
    recipe_path = out / "recipe.toml"
    recipe = recipe_dict(schedule, composition, n_atoms, rho, pot, seed)
    write_text_atomic(recipe_path, to_toml(recipe, header=(
        f"glassjax demo ({schedule.name} schedule): build, melt-quench and NPT of {composition}.\n"
        "Written by glassjax.demo; `glassjax simulate` on this file runs the same stages.")))
    rec = R.load_recipe(recipe_path)
    n_stages = len(rec["stage"])

    # 1. build
    atoms, comp = R.make_system(rec)
    symbols = atoms.get_chemical_symbols()
    log(f"[demo 1/4] build: {atoms.get_chemical_formula()} ({len(atoms)} atoms, target {n_atoms}), cubic "
        f"{atoms.cell.lengths()[0]:.3f} Å at {rho:.3f} g/cm^3 ({rho_src}); potential "
        f"{pot.get('model', 'default (glassjax.pretrained)')}; {precision}; {schedule.name} schedule")
    start_file = out / "start.extxyz"
    if not start_file.is_file():
        import ase.io

        with atomic_path(start_file, suffix=".extxyz") as tmp:
            ase.io.write(tmp, atoms, format="extxyz")

    # 2. melt-quench + NPT (the recipe's stages; finished ones are skipped by run_stages)
    steps = schedule.md_steps()
    log(f"[demo 2/4] melt-quench and NPT at 300 K: {n_stages} stages, "
        f"{sum(v for k, v in steps.items() if k != 'compression')} MD steps of {schedule.dt * 1000:g} fs")
    last = [time.time()]

    def stage_log(msg: str):
        now = time.time()
        name = msg.split("(", 1)[1].split(")", 1)[0] if "(" in msg else msg
        if "already done" in msg:
            result.skipped.append(name)
            log(f"  {msg}")
        elif "resuming" in msg:
            log(f"  {msg}")
            return
        else:
            timings[name] = round(now - last[0], 1)
            save_state()
            log(f"  {msg} [{now - last[0]:.0f} s]")
        last[0] = now

    R.run_stages(rec, 0, progress=progress, log=stage_log)
    npt_dir = out / f"{n_stages}_npt_300K"

    # 3. triaxial compression
    comp_dir = out / f"{n_stages + 1}_compression"
    done_flag = comp_dir / "done.json"
    if done_flag.is_file():
        result.skipped.append("compression")
        log(f"[demo 3/4] triaxial compression: already done ({done_flag}), skipped")
    else:
        log(f"[demo 3/4] triaxial compression at {schedule.strain_rate:g} /ps to strain {schedule.max_strain:g} "
            f"(NVT 300 K, {steps['compression']} steps), 4B and 3-rings on the fly")
        t0 = time.time()
        dtype = default_float()
        state, spec, _ = load_checkpoint(npt_dir / "checkpoint.npz")
        energy_fn, _, _ = R.make_potential(rec["potential"], atoms, comp, dtype)
        ens = I.nvt(schedule.dt, schedule.tau_t)
        params = D.deform_params(rate=schedule.strain_rate, temperature=300.0, dtype=dtype)
        D.run_deformation(energy_fn, state, spec, ens, D.Deformation("triaxial"), params,
                          target_strain=schedule.max_strain, record_strain_interval=schedule.record_every,
                          snapshot_strain_interval=schedule.snapshot_every, out_dir=comp_dir, symbols=symbols,
                          observables=compression_observables(symbols), progress=progress)
        write_text_atomic(done_flag, json.dumps({"stage": "compression"}))
        timings["compression"] = round(time.time() - t0, 1)
        save_state()

    # 4. report
    table = compression_table(comp_dir)
    files = result.files
    files["compression.csv"] = out / "compression.csv"
    _write_csv(files["compression.csv"], COMPRESSION_COLUMNS,
               list(zip(*(table[k].astype(int) if k == "step" else table[k] for k in COMPRESSION_COLUMNS))))
    files["compression.png"] = out / "compression.png"
    plot_compression(table, files["compression.png"],
                     f"{composition}, {len(atoms)} atoms: triaxial compression at {schedule.strain_rate:g}/ps, "
                     f"300 K ({Path(pot.get('model', 'default potential')).name})")
    glass = glass_properties(npt_dir)
    ref = experimental_reference(composition)
    nan = float("nan")
    rows = [("density_g_cm3", glass["density"], glass["density_std"], ref["density"] if ref else nan),
            ("N4", glass["n4"], glass["n4_std"], ref["n4"] if ref else nan)]
    files["glass_vs_experiment.csv"] = out / "glass_vs_experiment.csv"
    _write_csv(files["glass_vs_experiment.csv"], ("property", "simulation", "simulation_std", "experiment",
                                                  "difference"),
               [(k, s, e, x, s - x) for k, s, e, x in rows])
    end = {k: table[k][-1] for k in COMPRESSION_COLUMNS}
    i0 = 0
    total = sum(timings.values())
    lines = [
        f"glassjax demo: {composition}, {len(atoms)} atoms ({atoms.get_chemical_formula()}), {schedule.name} schedule, "
        f"{precision}",
        f"potential: {pot.get('model', 'default (glassjax.pretrained.default_model_path())')}"
        + ("" if pot["strict"] else " (sel truncation allowed)"),
        f"built at {rho:.3f} g/cm^3 ({rho_src})",
        "",
        "stages (MD steps of %g fs): " % (schedule.dt * 1000) + ", ".join(f"{k} {v}" for k, v in steps.items()),
        "melt: " + json.dumps([list(s) for s in schedule.melt]) + f" ({schedule.melt_ensemble}); quench: "
        + json.dumps([list(s) for s in schedule.quench]) + f" ({schedule.quench_ensemble}); NPT 300 K 0 GPa "
        f"{schedule.npt_ps:g} ps ({schedule.couple})",
        f"compression: triaxial, {schedule.strain_rate:g} /ps to {schedule.max_strain:g}, NVT 300 K, B-O cutoff "
        f"{BO_CUTOFF} Å",
        "",
        "glass (second half of the NPT stage) vs experiment:",
        f"  density {glass['density']:.4f} ± {glass['density_std']:.4f} g/cm^3 "
        f"(experiment {rows[0][3]:.3f}, difference {glass['density'] - rows[0][3]:+.3f})",
        f"  N4      {glass['n4']:.3f} ± {glass['n4_std']:.3f} over {glass['n4_frames']} frames "
        f"(experiment {rows[1][3]:.3f}, difference {glass['n4'] - rows[1][3]:+.3f})",
        f"  experimental source: {ref['source'] if ref else 'none known for this composition'}",
        "",
        f"compression from strain {table['strain'][i0]:.3f} to {end['strain']:.3f}:",
        f"  pressure {table['pressure_GPa'][i0]:.2f} -> {end['pressure_GPa']:.2f} GPa, density "
        f"{table['density_g_cm3'][i0]:.3f} -> {end['density_g_cm3']:.3f} g/cm^3",
        f"  4B fraction {table['frac_B4'][i0]:.3f} -> {end['frac_B4']:.3f}, 3-rings {table['n_3rings'][i0]:.0f} -> "
        f"{end['n_3rings']:.0f}",
        "",
        "wall time per stage (s, when it ran): " + ", ".join(f"{k} {v:g}" for k, v in timings.items())
        + f"; total {total:.0f} s",
        "",
        "files: compression.csv, compression.png, glass_vs_experiment.csv, recipe.toml, start.extxyz, "
        f"<k>_<stage>/ (trajectory.h5 H5MD, thermo.csv, checkpoint.npz, final.extxyz), "
        f"{comp_dir.name}/ (trajectory.h5, deform.csv, checkpoint.npz)",
    ]
    files["summary.txt"] = out / "summary.txt"
    write_text_atomic(files["summary.txt"], "\n".join(lines) + "\n")
    result.timings = dict(timings)
    log(f"[demo 4/4] report: density {glass['density']:.3f} g/cm^3 (exp. {rows[0][3]:.3f}), N4 {glass['n4']:.3f} "
        f"(exp. {rows[1][3]:.3f}); at strain {end['strain']:.3f}: P {end['pressure_GPa']:.2f} GPa, 4B "
        f"{end['frac_B4']:.3f}, {end['n_3rings']:.0f} 3-rings; wrote {', '.join(files)} in {out} "
        f"({time.time() - t_start:.0f} s this run)")
    return result
