"""Simulation recipes: a TOML file describing a system, a potential and a list of stages
(MD with a temperature schedule, or minimisation), run by ``glassjax simulate recipe.toml``.

Layout (times ps, temperatures K, pressures GPa, lengths Å; see ``simulate/*.toml``)::

    [system]
    composition = "LBS-10-50-40"   # or: structure = "start.extxyz" (any ASE-readable file)
    n_atoms = 300                  # atom target for the glass builder
    density = 2.30                 # g/cm^3 (default: the papers' Table II value)
    seed = 0

    [potential]
    type = "teter"                 # Teter/Du + DSF Coulomb (glassjax.md.classical)
    cutoff = 8.0                   # optional: rc (Å) for both terms; alpha = 0.25; n4; a_bo
    skin = 1.0

    [run]
    output = "out"                 # folder, relative to the recipe file
    chunk = 1000                   # steps per jitted chunk
    every = 100                    # steps between frames / log rows
    seed = 0                       # velocity seed

    [[stage]]
    name = "melt"
    type = "md"                    # "md" or "minimize"
    ensemble = "nvt"               # "nve", "nvt" or "npt"
    dt = 0.001
    tau_t = 0.1
    tau_p = 1.0                    # npt only
    couple = "iso"                 # npt: "iso", "aniso", "tri"
    pressure = 0.0
    temperature = [["hold", 3000, 10], ["rate", 3000, 300, 10]]   # or a number with steps = N

    [[stage]]
    name = "minimise"
    type = "minimize"
    relax_cell = true
    fmax = 0.01
    max_steps = 5000

Each stage writes ``<output>/<k>_<name>/`` with ``trajectory.h5`` (H5MD), ``thermo.csv``,
``checkpoint.npz`` and ``final.extxyz``.  Running the recipe again skips finished stages and
resumes an interrupted one from its checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np

from glassjax.errors import ConfigError

STAGE_KEYS = {"name", "type", "ensemble", "dt", "tau_t", "tau_p", "couple", "mask", "pressure", "temperature",
              "steps", "chain", "relax_cell", "fmax", "max_steps", "initial_temperature"}


def load_recipe(path) -> Dict[str, Any]:
    """Read and check a recipe TOML file (raises :class:`ConfigError` naming the key)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: recipe file not found")
    try:
        recipe = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    recipe["_path"] = str(path)
    system = recipe.get("system")
    if not isinstance(system, dict) or not ("composition" in system or "structure" in system):
        raise ConfigError(f"{path}: [system] needs composition = ... or structure = ...")
    pot = recipe.setdefault("potential", {"type": "teter"})
    if pot.get("type", "teter") != "teter":
        raise ConfigError(f"{path}: [potential] type {pot.get('type')!r} is not supported by recipes yet "
                          "(use \"teter\"; MLP potentials are run from Python with any energy_fn)")
    stages = recipe.get("stage")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{path}: add at least one [[stage]]")
    for k, st in enumerate(stages):
        where = f"{path}: stage {k + 1} ({st.get('name', '?')})"
        unknown = set(st) - STAGE_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(STAGE_KEYS)}")
        kind = st.setdefault("type", "md")
        st.setdefault("name", f"stage{k + 1}")
        if kind == "md":
            if st.get("ensemble", "nvt") not in ("nve", "nvt", "npt"):
                raise ConfigError(f"{where}: ensemble must be nve, nvt or npt")
            if "temperature" not in st:
                raise ConfigError(f"{where}: give temperature = <K> (with steps = N) or a schedule list")
            if not isinstance(st["temperature"], list) and "steps" not in st:
                raise ConfigError(f"{where}: a constant temperature needs steps = N")
        elif kind != "minimize":
            raise ConfigError(f"{where}: type must be md or minimize")
    return recipe


def stage_temperatures(stage: Dict[str, Any], dt: float) -> np.ndarray:
    """Per-step target temperatures of an MD stage."""
    from glassjax.md.schedule import temperature_schedule

    t = stage["temperature"]
    if isinstance(t, list):
        return temperature_schedule([tuple(seg) for seg in t], dt)
    return np.full(int(stage["steps"]), float(t))


def make_system(recipe: Dict[str, Any]):
    """The starting ``ase.Atoms`` (built glass or read structure) and its composition."""
    from glassjax.md.builder import build_glass, parse_composition

    system = recipe["system"]
    base = Path(recipe["_path"]).parent
    if "structure" in system:
        import ase.io

        atoms = ase.io.read(base / system["structure"])
        comp = parse_composition(system["composition"]) if "composition" in system else None
        return atoms, comp
    atoms = build_glass(system["composition"], n_atoms=system.get("n_atoms", 300), density=system.get("density"),
                        seed=int(system.get("seed", 0)))
    return atoms, atoms.info["composition"]


def make_potential(recipe: Dict[str, Any], atoms, composition):
    """``(energy_fn, cutoff, skin)`` for the recipe's potential."""
    from glassjax.md.classical import teter_du_energy_fn, teter_du_table

    pot = recipe["potential"]
    rc = float(pot.get("cutoff", 8.0))
    symbols = atoms.get_chemical_symbols()
    table = teter_du_table(symbols, composition=composition, n4=pot.get("n4"), a_bo=pot.get("a_bo"),
                           rc_sr=rc, rc_coul=rc, alpha=float(pot.get("alpha", 0.25)))
    return teter_du_energy_fn(symbols, table), table.cutoff, float(pot.get("skin", 1.0))


def _ensemble(stage):
    from glassjax.md import integrators as I

    dt = float(stage.get("dt", 0.001))
    kind = stage.get("ensemble", "nvt")
    if kind == "nve":
        return I.nve(dt)
    if kind == "nvt":
        return I.nvt(dt, float(stage.get("tau_t", 0.1)), chain=int(stage.get("chain", 3)))
    return I.npt(dt, float(stage.get("tau_t", 0.1)), float(stage.get("tau_p", 1.0)),
                 couple=stage.get("couple", "iso"), mask=stage.get("mask"), chain=int(stage.get("chain", 3)))


def run_recipe(path, progress: bool = True, log: Callable[[str], None] = print) -> Path:
    """Run (or resume) every stage of a recipe; returns the output folder."""
    import ase.io
    import jax
    import jax.numpy as jnp

    from glassjax import neighbors
    from glassjax.atomic_write import atomic_path
    from glassjax.md import integrators as I
    from glassjax.md.minimize import fire
    from glassjax.md.runner import resume, simulate
    from glassjax.md.trajectory import H5MDWriter, ThermoLog, load_checkpoint, save_checkpoint

    recipe = load_recipe(path)
    run = recipe.get("run", {})
    out = Path(recipe["_path"]).parent / run.get("output", "out")
    out.mkdir(parents=True, exist_ok=True)
    chunk, every = int(run.get("chunk", 1000)), int(run.get("every", 100))
    atoms, comp = make_system(recipe)
    symbols = atoms.get_chemical_symbols()
    energy_fn, cutoff, skin = make_potential(recipe, atoms, comp)
    masses = atoms.get_masses()
    positions = jnp.asarray(atoms.positions)
    cell = jnp.asarray(atoms.cell.array)
    momenta = None  # carried between MD stages (amu Å / t_ase)
    key = jax.random.PRNGKey(int(run.get("seed", 0)))

    for k, stage in enumerate(recipe["stage"]):
        folder = out / f"{k + 1}_{stage['name']}"
        folder.mkdir(exist_ok=True)
        ckpt = folder / "checkpoint.npz"
        done_flag = folder / "done.json"
        if done_flag.is_file():
            state, spec, meta = load_checkpoint(ckpt)
            positions, cell = state.positions, state.cell
            momenta = state.momenta if stage["type"] == "md" else None
            log(f"stage {k + 1} ({stage['name']}): already done, skipped")
            continue
        if stage["type"] == "minimize":
            nl, spec = neighbors.allocate(positions, np.asarray(cell), cutoff, skin, capacity_factor=1.5,
                                          image_margin=1.0)
            res = fire(energy_fn, positions, cell, nl, spec, relax_cell=bool(stage.get("relax_cell", False)),
                       couple=stage.get("couple", "tri"), pressure=float(stage.get("pressure", 0.0)),
                       fmax=float(stage.get("fmax", 0.01)), max_steps=int(stage.get("max_steps", 5000)))
            positions, cell, momenta = res.positions, res.cell, None
            state = I.init_state(energy_fn, positions, cell, masses, res.nl)
            save_checkpoint(ckpt, state, res.spec, res.steps, extra={"converged": res.converged, "fmax": res.fmax})
            log(f"stage {k + 1} ({stage['name']}): FIRE {res.steps} steps, fmax {res.fmax:.3g} eV/Å, "
                f"E {float(res.energy):.4f} eV, converged={res.converged}")
        else:
            ens = _ensemble(stage)
            temps = stage_temperatures(stage, ens.dt)
            press = np.full(len(temps), float(stage.get("pressure", 0.0)))
            if ckpt.is_file():
                state, spec, done, traj, tlog = resume(ckpt, folder / "trajectory.h5", folder / "thermo.csv",
                                                       symbols=symbols)
                log(f"stage {k + 1} ({stage['name']}): resuming at step {done}")
            else:
                nl, spec = neighbors.allocate(positions, np.asarray(cell), cutoff, skin, capacity_factor=1.5,
                                              image_margin=1.0)
                key, sub = jax.random.split(key)
                t0 = float(stage.get("initial_temperature", temps[0]))
                state = I.init_state(energy_fn, positions, cell, masses, nl, key=sub, temperature=t0,
                                     chain=ens.chain, momenta=momenta)
                done = 0
                traj = H5MDWriter(folder / "trajectory.h5", symbols, masses)
                tlog = ThermoLog(folder / "thermo.csv")
            try:
                state, spec, th = simulate(energy_fn, state, spec, ens, temps, press, chunk=chunk, every=every,
                                           progress=progress, start_step=done, trajectory=traj, log=tlog,
                                           checkpoint=ckpt)
            finally:
                traj.close()
                tlog.close()
            positions, cell, momenta = state.positions, state.cell, state.momenta
            log(f"stage {k + 1} ({stage['name']}): {len(temps)} steps, final T {th['temperature'][-1]:.1f} K, "
                f"P {th['pressure'][-1]:.3f} GPa, density {th['density'][-1]:.4f} g/cm^3")
        final = atoms.copy()
        final.set_cell(np.asarray(cell))
        final.set_positions(np.asarray(positions))
        if momenta is not None:
            final.set_momenta(np.asarray(momenta))  # amu Å / t_ase: ASE's own momentum unit
        with atomic_path(folder / "final.extxyz", suffix=".extxyz") as tmp:
            ase.io.write(tmp, final, format="extxyz")
        with atomic_path(done_flag) as tmp:
            tmp.write_text(json.dumps({"stage": stage["name"]}))
    return out
