"""Simulation recipes: a TOML file describing a system, a potential and a list of stages
(MD with a temperature schedule, or minimisation), run by ``glassjax simulate recipe.toml``;
optionally followed by a deformation study (the 2024 paper's uniaxial / triaxial strain
runs of several glasses and directions) or replaced by a Table II sweep.

Layout (times ps, temperatures K, pressures GPa, lengths Å, strain rates 1/ps; see
``simulate/*.toml`` and ``docs/recipes.md``)::

    potential = "teter"            # top-level shorthand (must come before any [table]):
                                   #   "teter"   Teter/Du + DSF Coulomb (glassjax.md.classical)
                                   #   "default" the shipped DeepPot-SE (glassjax.pretrained)
                                   #   "path/model.dp" or ".ckpt"/".h5": a DeepPot-SE model file,
                                   #             relative to the recipe's folder

    [system]
    composition = "LBS-10-50-40"   # or: structure = "start.extxyz" (any ASE-readable file)
    n_atoms = 300                  # atom target for the glass builder
    density = 2.30                 # g/cm^3 (default: the papers' Table II value)
    seed = 0
    replicas = 1                   # independent glasses (builder/velocity seeds seed + r)

    [potential]                    # the long form of the same choice (instead of the shorthand)
    type = "teter"                 # "teter", "default" or "model" (then model = "file.dp")
    cutoff = 8.0                   # teter: rc (Å) for both terms; alpha = 0.25; n4; a_bo
    skin = 1.0                     # neighbour-list skin, Å (any potential)

    [run]
    output = "out"                 # folder, relative to the recipe file
    chunk = 1000                   # steps per jitted chunk
    every = 100                    # steps between frames / log rows
    seed = 0                       # velocity seed
    precision = "float64"          # or "float32" (default: JAX's current default float)

    [[stage]]
    name = "melt"
    type = "md"                    # "md" or "minimize"
    potential = "teter"            # optional: this stage's own potential (same forms as above)
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

    [deformation]                  # optional: strain runs from every replica's final structure
    mode = "uniaxial"              # "uniaxial", "triaxial", "shear" (simple) or "pure_shear"
    directions = ["x", "y", "z"]   # uniaxial: axes; (pure_)shear: planes "xy", "xz", "yz"; triaxial: ignored
    rates = [1e-3, -1e-3]          # engineering strain rates, 1/ps (+ tension, - compression)
    max_strain = 0.3               # |strain| reached by every run
    lateral = "barostat"           # uniaxial: "barostat" (stress-free lateral faces) or "fixed"
    lateral_pressure = 0.0         # GPa
    temperature = 300
    dt = 0.001
    tau_t = 0.1
    tau_p = 1.0
    record_every = 0.001           # strain between CSV rows
    snapshot_every = 0.01          # strain between H5MD snapshots (4B / 3-ring analysis)
    bo_cutoff = 2.0                # B-O bond cutoff for 4B and 3-rings, Å
    formers = ["B", "Si"]          # network formers of the counted T3O3 rings
    batch = true                   # all runs of one system in one vmapped program (else one by one)
    potential = "default"          # optional: the runs' own potential (default: the recipe's)

    [sweep]                        # instead of [system] and [[stage]]: the Table II sweep
    compositions = "all"           # or a list of Table II glass IDs
    n_atoms = 300                  # and the keys of glassjax.md.sweep.table2_sweep: seed, dt,
    t_melt = 2000                  # t_melt, melt_ps, rate, t_hold, hold_ps, t_final, npt_ps,
    rate = 2                       # average_ps, pressure, quench_ensemble, tau_t, tau_p,
                                   # chunk, every, bo_cutoff, density, relax_steps,
                                   # relax_fmax

    [quick]                        # optional overrides applied by `glassjax simulate --quick`
    "system.n_atoms" = 100         # dotted keys as for --set (stage.<name or number>.<key>)

Each stage writes ``<output>/<k>_<name>/`` (``<output>/glass_<r>/<k>_<name>/`` with
``replicas > 1``) with ``trajectory.h5`` (H5MD), ``thermo.csv``, ``checkpoint.npz`` and
``final.extxyz``.  Running the recipe again skips finished stages and resumes an interrupted
one from its checkpoint.  Any key can be overridden without editing the file:
``glassjax simulate recipe.toml --set system.n_atoms=100 --set stage.melt.temperature=2000``
(values are TOML: numbers, strings, lists).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from glassjax.errors import ConfigError, GlassJaxError, SimulationError

STAGE_KEYS = {"name", "type", "ensemble", "dt", "tau_t", "tau_p", "couple", "mask", "pressure", "temperature",
              "steps", "chain", "relax_cell", "fmax", "max_steps", "initial_temperature", "potential"}
SYSTEM_KEYS = {"composition", "structure", "n_atoms", "density", "seed", "replicas"}
RUN_KEYS = {"output", "chunk", "every", "seed", "precision"}
POTENTIAL_KEYS = {"type", "model", "cutoff", "skin", "alpha", "n4", "a_bo", "strict"}
DEFORM_KEYS = {"mode", "directions", "rates", "max_strain", "lateral", "lateral_pressure", "temperature", "dt",
               "tau_t", "tau_p", "chain", "record_every", "snapshot_every", "bo_cutoff", "potential",
               "formers", "initial_temperature", "batch"}
TOP_KEYS = {"system", "potential", "run", "stage", "deformation", "sweep", "quick", "description"}
MODEL_SUFFIXES = (".dp", ".ckpt", ".h5", ".hdf5", ".pb", ".pth")
AXES = {"x": 0, "y": 1, "z": 2}
PLANES = {"xy": (0, 1), "xz": (0, 2), "yz": (1, 2)}

Override = Union[str, Tuple[str, Any]]


# ----------------------------------------------------------------------------- overrides

def parse_value(text: str) -> Any:
    """A TOML value (``100``, ``1e-3``, ``true``, ``"x"``, ``[1, 2]``); anything else is a string."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _split_override(item: Override) -> Tuple[List[str], Any]:
    if isinstance(item, str):
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. system.n_atoms=100")
        key, value = item.split("=", 1)
        value = parse_value(value.strip())
    else:
        key, value = item
    parts = [p for p in str(key).strip().split(".")]
    if not parts or any(not p for p in parts):
        raise ConfigError(f"override key {key!r}: expected a dotted path like system.n_atoms or stage.melt.dt")
    return parts, value


def _stage_index(stages: list, ref: str, where: str) -> int:
    if ref.isdigit():
        k = int(ref)
        if not 1 <= k <= len(stages):
            raise ConfigError(f"{where}: stage number {k} is out of range (the recipe has {len(stages)} stages, "
                              "numbered from 1)")
        return k - 1
    names = [st.get("name", f"stage{i + 1}") for i, st in enumerate(stages)]
    if ref not in names:
        raise ConfigError(f"{where}: no stage named {ref!r} (stages: {names}; or use its number from 1)")
    return names.index(ref)


def apply_overrides(recipe: Dict[str, Any], overrides: Iterable[Override], where: str = "--set") -> Dict[str, Any]:
    """Set dotted keys in a recipe dict in place (``"stage.<name or number from 1>.<key>"`` for stages)."""
    for item in overrides:
        parts, value = _split_override(item)
        label = f"{where} {'.'.join(parts)}"
        node: Any = recipe
        for k, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                node = node[_stage_index(node, part, label)]
                continue
            nxt = node.get(part)
            if nxt is None:
                if part == "stage":
                    raise ConfigError(f"{label}: the recipe has no [[stage]]")
                nxt = node[part] = {}
            elif isinstance(nxt, str) and part == "potential":
                nxt = node[part] = {"type": nxt}
            elif not isinstance(nxt, (dict, list)):
                raise ConfigError(f"{label}: {'.'.join(parts[:k + 1])} is a value, not a table")
            node = nxt
        last = parts[-1]
        if isinstance(node, list):
            raise ConfigError(f"{label}: name a key inside the stage, e.g. stage.{last}.dt")
        node[last] = value
    return recipe


def _flatten_quick(table: Mapping[str, Any], prefix: str = "") -> List[Tuple[str, Any]]:
    out = []
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.extend(_flatten_quick(v, key + "."))
        else:
            out.append((key, v))
    return out


# ----------------------------------------------------------------------------- loading

def _read_toml(path: Path) -> Dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore
    if not path.is_file():
        raise ConfigError(f"{path}: recipe file not found")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _check_keys(table, allowed, where: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = set(table) - set(allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def potential_spec(value, base: Path, where: str) -> Dict[str, Any]:
    """Normalise a potential choice (string or table) to a dict with ``type`` teter/default/model.

    A model path is resolved against ``base`` (the recipe's folder) and must exist.
    """
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: potential must be \"teter\", \"default\", a model file path or a table")
    spec = dict(value)
    _check_keys(spec, POTENTIAL_KEYS, f"{where} [potential]")
    kind = spec.get("type")
    if kind is None:
        kind = "model" if "model" in spec else "teter"
    kind = str(kind)
    if kind.lower() in ("teter", "teter-du", "teter_du", "classical"):
        spec["type"] = "teter"
    elif kind.lower() in ("default", "pretrained"):
        spec["type"] = "default"
    else:
        if kind.lower() in ("model", "deeppot", "dp"):
            if "model" not in spec:
                raise ConfigError(f"{where}: potential type {kind!r} needs model = \"path/to/model.dp\"")
            path = spec["model"]
        else:
            path = kind
            if "model" in spec:
                raise ConfigError(f"{where}: give either a model path as the potential or model = ..., not both")
            if not (Path(path).suffix.lower() in MODEL_SUFFIXES or "/" in path or Path(base, path).exists()):
                raise ConfigError(f"{where}: potential {kind!r} is neither \"teter\", \"default\" nor a model file "
                                  f"(a path ending in {', '.join(MODEL_SUFFIXES[:3])})")
        p = Path(path).expanduser()
        if not p.is_absolute():
            p = Path(base) / p
        if not p.is_file():
            raise ConfigError(f"{where}: potential model file {p} not found "
                              "(relative paths are relative to the recipe's folder)")
        spec["type"] = "model"
        spec["model"] = str(p)
    if spec["type"] != "teter":
        extra = set(spec) & {"cutoff", "alpha", "n4", "a_bo"}
        if extra:
            raise ConfigError(f"{where}: {sorted(extra)} only apply to the teter potential "
                              "(a DeepPot-SE model brings its own cutoff)")
    return spec


def load_recipe(path, overrides: Optional[Iterable[Override]] = None, quick: bool = False) -> Dict[str, Any]:
    """Read and check a recipe TOML file (raises :class:`ConfigError` naming the key).

    Args:
        path: the recipe file.
        overrides: ``"dotted.key=value"`` strings (or ``(key, value)`` pairs) applied after
            reading (and after ``[quick]``), e.g. ``["system.n_atoms=100", "stage.melt.dt=0.002"]``.
        quick: apply the recipe's ``[quick]`` table (its documented small/fast variant).

    Returns the recipe dict; ``recipe["_path"]`` is the file, ``recipe["potential"]`` and
    every stage's ``potential`` are normalised by :func:`potential_spec`.
    """
    path = Path(path)
    recipe = _read_toml(path)
    where = str(path)
    quick_table = recipe.pop("quick", None)
    if quick:
        if not isinstance(quick_table, dict) or not quick_table:
            raise ConfigError(f"{where}: --quick needs a [quick] table of overrides in the recipe")
        apply_overrides(recipe, _flatten_quick(quick_table), where=f"{where} [quick]")
    if overrides:
        apply_overrides(recipe, overrides)
    _check_keys(recipe, TOP_KEYS, where)
    recipe["_path"] = str(path)
    base = path.parent
    system = recipe.get("system")
    if not isinstance(system, dict) or not ("composition" in system or "structure" in system):
        if "sweep" not in recipe:
            raise ConfigError(f"{where}: [system] needs composition = ... or structure = ...")
    if isinstance(system, dict):
        _check_keys(system, SYSTEM_KEYS, f"{where} [system]")
        reps = system.get("replicas", 1)
        if not isinstance(reps, int) or reps < 1:
            raise ConfigError(f"{where} [system]: replicas must be a positive integer, got {reps!r}")
    run = recipe.setdefault("run", {})
    _check_keys(run, RUN_KEYS, f"{where} [run]")
    if "precision" in run and str(run["precision"]).lower() not in ("float64", "fp64", "float32", "fp32"):
        raise ConfigError(f"{where} [run]: precision must be \"float64\" or \"float32\", got {run['precision']!r}")
    recipe["potential"] = potential_spec(recipe.get("potential", "teter"), base, f"{where}: potential")
    if "sweep" in recipe:
        _check_sweep(recipe, where)
        return recipe
    stages = recipe.get("stage")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{where}: add at least one [[stage]]")
    for k, st in enumerate(stages):
        where_st = f"{where}: stage {k + 1} ({st.get('name', '?')})"
        unknown = set(st) - STAGE_KEYS
        if unknown:
            raise ConfigError(f"{where_st}: unknown key(s) {sorted(unknown)}; allowed: {sorted(STAGE_KEYS)}")
        kind = st.setdefault("type", "md")
        st.setdefault("name", f"stage{k + 1}")
        if "potential" in st:
            st["potential"] = potential_spec(st["potential"], base, where_st)
        if kind == "md":
            if st.get("ensemble", "nvt") not in ("nve", "nvt", "npt"):
                raise ConfigError(f"{where_st}: ensemble must be nve, nvt or npt")
            if "temperature" not in st:
                raise ConfigError(f"{where_st}: give temperature = <K> (with steps = N) or a schedule list")
            if not isinstance(st["temperature"], list) and "steps" not in st:
                raise ConfigError(f"{where_st}: a constant temperature needs steps = N")
        elif kind != "minimize":
            raise ConfigError(f"{where_st}: type must be md or minimize")
    if "deformation" in recipe:
        _check_deformation(recipe, base, where)
    return recipe


def _check_deformation(recipe, base: Path, where: str) -> None:
    d = recipe["deformation"]
    w = f"{where} [deformation]"
    _check_keys(d, DEFORM_KEYS, w)
    mode = d.setdefault("mode", "uniaxial")
    if mode not in ("uniaxial", "triaxial", "shear", "pure_shear"):
        raise ConfigError(f"{w}: mode must be uniaxial, triaxial, shear or pure_shear, got {mode!r}")
    if mode == "uniaxial":
        dirs = d.setdefault("directions", ["x", "y", "z"])
        allowed = AXES
    elif mode in ("shear", "pure_shear"):
        dirs = d.setdefault("directions", ["xy", "xz", "yz"])
        allowed = PLANES
    else:
        dirs = d["directions"] = ["xyz"]
        allowed = {"xyz": None}
    if not isinstance(dirs, list) or not dirs or any(x not in allowed for x in dirs):
        raise ConfigError(f"{w}: directions must be a non-empty list of {sorted(allowed)} for mode {mode}, got {dirs!r}")
    rates = d.get("rates")
    if not isinstance(rates, list) or not rates or not all(isinstance(r, (int, float)) and r != 0 for r in rates):
        raise ConfigError(f"{w}: rates must be a non-empty list of non-zero engineering strain rates (1/ps), "
                          "e.g. [1e-3, -1e-3]")
    if len(set(np.sign(rates))) != len(rates):
        raise ConfigError(f"{w}: give at most one tension (+) and one compression (-) rate, got {rates}")
    ms = d.get("max_strain")
    if not isinstance(ms, (int, float)) or not 0 < ms < 1:
        raise ConfigError(f"{w}: max_strain must be a number in (0, 1) (the |strain| every run reaches), got {ms!r}")
    if d.setdefault("lateral", "barostat") not in ("barostat", "fixed"):
        raise ConfigError(f"{w}: lateral must be barostat or fixed")
    for key, default in (("temperature", 300.0), ("dt", 0.001), ("tau_t", 0.1), ("tau_p", 1.0),
                         ("lateral_pressure", 0.0), ("bo_cutoff", 2.0)):
        v = d.setdefault(key, default)
        if not isinstance(v, (int, float)) or (key != "lateral_pressure" and not v > 0):
            raise ConfigError(f"{w}: {key} must be a positive number, got {v!r}")
    rec = d.setdefault("record_every", 0.001)
    snap = d.setdefault("snapshot_every", 0.01)
    for key, v in (("record_every", rec), ("snapshot_every", snap)):
        if not isinstance(v, (int, float)) or not 0 < v <= ms:
            raise ConfigError(f"{w}: {key} must be a strain interval in (0, max_strain], got {v!r}")
    if not isinstance(d.setdefault("batch", True), bool):
        raise ConfigError(f"{w}: batch must be true or false")
    if "potential" in d:
        d["potential"] = potential_spec(d["potential"], base, w)


SWEEP_KEYS = {"compositions", "n_atoms", "t_melt", "melt_ps", "rate", "t_hold", "hold_ps", "t_final", "npt_ps",
              "average_ps", "dt", "tau_t", "tau_p", "seed", "bo_cutoff", "chunk", "every", "density", "pressure",
              "quench_ensemble", "rate_high", "relax_steps", "relax_fmax"}


def _check_sweep(recipe, where: str) -> None:
    from glassjax.md.compositions import TABLE_II

    s = recipe["sweep"]
    w = f"{where} [sweep]"
    _check_keys(s, SWEEP_KEYS, w)
    comps = s.setdefault("compositions", "all")
    names = list(TABLE_II) if comps == "all" else comps
    if not isinstance(names, list) or not names:
        raise ConfigError(f"{w}: compositions must be \"all\" or a list of Table II glass IDs")
    bad = [c for c in names if c not in TABLE_II]
    if bad:
        raise ConfigError(f"{w}: {bad} are not Table II glasses; choose from {list(TABLE_II)}")
    for key in ("n_atoms", "t_melt", "melt_ps", "rate", "rate_high", "t_hold", "t_final", "npt_ps", "dt", "tau_t", "tau_p",
                "bo_cutoff", "average_ps", "chunk", "every"):
        if key in s and not (isinstance(s[key], (int, float)) and s[key] > 0):
            raise ConfigError(f"{w}: {key} must be a positive number, got {s[key]!r}")
    if "relax_steps" in s and not (isinstance(s["relax_steps"], int) and s["relax_steps"] >= 0):
        raise ConfigError(f"{w}: relax_steps must be a whole number >= 0 (0: no relaxation of the random "
                          f"starts), got {s['relax_steps']!r}")
    if "relax_fmax" in s and not (isinstance(s["relax_fmax"], (int, float)) and s["relax_fmax"] > 0):
        raise ConfigError(f"{w}: relax_fmax must be a positive number (eV/Å), got {s['relax_fmax']!r}")
    if s.get("quench_ensemble", "nvt") not in ("nvt", "npt"):
        raise ConfigError(f"{w}: quench_ensemble must be \"nvt\" or \"npt\"")
    if "stage" in recipe:
        raise ConfigError(f"{where}: a [sweep] recipe has no [[stage]] (the sweep runs its own protocol)")


def stage_temperatures(stage: Dict[str, Any], dt: float) -> np.ndarray:
    """Per-step target temperatures of an MD stage."""
    from glassjax.md.schedule import temperature_schedule

    t = stage["temperature"]
    if isinstance(t, list):
        return temperature_schedule([tuple(seg) for seg in t], dt)
    return np.full(int(stage["steps"]), float(t))


def n_replicas(recipe: Dict[str, Any]) -> int:
    return int(recipe.get("system", {}).get("replicas", 1))


def output_folder(recipe: Dict[str, Any]) -> Path:
    return Path(recipe["_path"]).parent / recipe.get("run", {}).get("output", "out")


def replica_folder(recipe: Dict[str, Any], replica: int) -> Path:
    """Where replica ``replica``'s stage folders go (the output folder itself for one replica)."""
    out = output_folder(recipe)
    return out if n_replicas(recipe) == 1 else out / f"glass_{replica}"


def recipe_dtype(recipe: Dict[str, Any]):
    """The JAX float dtype of the run (``[run] precision``; default JAX's current default)."""
    from glassjax.precision import default_float, resolve_dtype

    p = recipe.get("run", {}).get("precision")
    return default_float() if p is None else resolve_dtype(p)


def make_system(recipe: Dict[str, Any], replica: int = 0):
    """The starting ``ase.Atoms`` (built glass or read structure) and its composition."""
    from glassjax.md.builder import build_glass, parse_composition

    system = recipe["system"]
    base = Path(recipe["_path"]).parent
    if "structure" in system:
        import ase.io

        path = base / system["structure"]
        if not path.is_file():
            raise ConfigError(f"{recipe['_path']} [system]: structure file {path} not found")
        atoms = ase.io.read(path)
        comp = parse_composition(system["composition"]) if "composition" in system else None
        return atoms, comp
    atoms = build_glass(system["composition"], n_atoms=system.get("n_atoms", 300), density=system.get("density"),
                        seed=int(system.get("seed", 0)) + int(replica))
    return atoms, atoms.info["composition"]


def _resolve_default_model() -> Path:
    try:
        from glassjax.pretrained import default_model_path
    except ImportError:
        raise ConfigError("potential \"default\": the shipped default potential (glassjax.pretrained) is not "
                          "available in this installation; give a model file instead, "
                          "potential = \"path/to/model.dp\"") from None
    try:
        path = Path(default_model_path())
    except GlassJaxError as exc:
        raise ConfigError(f"potential \"default\": {exc}") from None
    if not path.is_file():
        raise ConfigError(f"potential \"default\": the shipped model file {path} is missing "
                          "(reinstall glassjax, or give potential = \"path/to/model.dp\")")
    return path


def model_path(spec: Mapping[str, Any]) -> Optional[Path]:
    """The model file of a normalised potential spec (None for teter)."""
    if spec["type"] == "teter":
        return None
    return _resolve_default_model() if spec["type"] == "default" else Path(spec["model"])


def load_potential_model(spec: Mapping[str, Any], dtype=None):
    """``(DeepPot, variables, path)`` for a default/model potential spec; ConfigError names the file."""
    from glassjax.model import load_model

    path = model_path(spec)
    try:
        model, variables = load_model(path, dtype=None if dtype is None else np.dtype(dtype).name)
    except GlassJaxError as exc:
        raise ConfigError(f"potential {path}: cannot be loaded as a DeepPot-SE model ({exc})") from None
    return model, variables, path


def make_potential(recipe_or_spec: Mapping[str, Any], atoms, composition, dtype=None):
    """``(energy_fn, cutoff, skin)`` for a potential (a recipe, or a spec from :func:`potential_spec`).

    Teter/Du: composition-dependent B-O term from ``composition``; DeepPot-SE ("default" or a
    model file): ``DeepPot.energy_fn(variables, types)`` with the model's cutoff, computing in
    ``dtype`` (float32/float64; default JAX's default float).  An element of ``atoms`` missing
    from the model's type_map is a :class:`ConfigError` naming the element and the file.
    """
    spec = recipe_or_spec["potential"] if "potential" in recipe_or_spec else recipe_or_spec
    if isinstance(spec, str):
        spec = {"type": spec}
    symbols = atoms.get_chemical_symbols()
    skin = float(spec.get("skin", 1.0))
    if spec.get("type", "teter") == "teter":
        from glassjax.md.classical import teter_du_energy_fn, teter_du_table

        rc = float(spec.get("cutoff", 8.0))
        table = teter_du_table(symbols, composition=composition, n4=spec.get("n4"), a_bo=spec.get("a_bo"),
                               rc_sr=rc, rc_coul=rc, alpha=float(spec.get("alpha", 0.25)))
        return teter_du_energy_fn(symbols, table), table.cutoff, skin
    model, variables, path = load_potential_model(spec, dtype)
    missing = sorted(set(symbols) - set(model.type_map))
    if missing:
        raise ConfigError(f"potential {path}: the model's type_map {list(model.type_map)} lacks "
                          f"element(s) {missing} of the system; use a model trained on them")
    types = model.types_from_species(symbols)
    efn = model.energy_fn(variables, types, strict=bool(spec.get("strict", True)))
    return efn, float(model.rcut), skin


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


_POTENTIALS: Dict[str, Tuple[Callable, float, float]] = {}


class _PotentialCache:
    """One energy function per potential spec and system, shared by all stages and replicas of
    a process (jit compiles are keyed on the function object, so they are shared too)."""

    def __init__(self, atoms, composition, dtype):
        self.atoms, self.composition, self.dtype = atoms, composition, dtype

    def get(self, spec: Mapping[str, Any]):
        key = json.dumps([spec, self.atoms.get_chemical_symbols(), self.composition, np.dtype(self.dtype).name],
                         sort_keys=True, default=str)
        if key not in _POTENTIALS:
            if len(_POTENTIALS) > 16:
                _POTENTIALS.clear()
            _POTENTIALS[key] = make_potential(spec, self.atoms, self.composition, self.dtype)
        return _POTENTIALS[key]


def _allocate(positions, cell, cutoff: float, skin: float):
    """A neighbour list with room to grow; capacity rounded up to a multiple of 16 so that
    similar systems (replicas, loading directions) share one compiled MD loop."""
    from glassjax import neighbors

    probe = neighbors.build(positions, cell, neighbors.NeighborSpec(
        cutoff, skin, 1, neighbors.images_needed(np.asarray(cell, dtype=float), cutoff + skin + 1.0)))
    capacity = int(16 * np.ceil(1.5 * max(int(probe.max_count), 1) / 16))
    return neighbors.allocate(positions, np.asarray(cell), cutoff, skin, capacity=capacity, image_margin=1.0)


def _init_state(energy_fn, positions, cell, masses, nl, *, key=None, temperature: float = 0.0, chain: int = 3,
                momenta=None):
    """:func:`glassjax.md.integrators.init_state` compiled (eager autodiff of a potential is slow)."""
    import jax

    from glassjax.md import integrators as I

    fn = _INIT_JIT.get((energy_fn, float(temperature), int(chain)))
    if fn is None:
        if len(_INIT_JIT) > 32:
            _INIT_JIT.clear()
        fn = jax.jit(lambda x, c, m, n, k, p: I.init_state(energy_fn, x, c, m, n, key=k, temperature=float(temperature),
                                                           chain=int(chain), momenta=p))
        _INIT_JIT[(energy_fn, float(temperature), int(chain))] = fn
    return fn(positions, cell, masses, nl, key, momenta)


_INIT_JIT: Dict[Any, Callable] = {}


def run_stages(recipe: Dict[str, Any], replica: int = 0, progress: bool = True,
               log: Callable[[str], None] = print):
    """Run (or resume) the stages of one replica; returns ``(folder, atoms)``: its stage folder
    and the final structure (``ase.Atoms`` with momenta when the last stage was MD)."""
    import ase.io
    import jax
    import jax.numpy as jnp

    from glassjax.atomic_write import atomic_path
    from glassjax.md.minimize import fire
    from glassjax.md.runner import resume, simulate
    from glassjax.md.trajectory import H5MDWriter, ThermoLog, load_checkpoint, save_checkpoint

    run = recipe.get("run", {})
    out = replica_folder(recipe, replica)
    out.mkdir(parents=True, exist_ok=True)
    chunk, every = int(run.get("chunk", 1000)), int(run.get("every", 100))
    dtype = recipe_dtype(recipe)
    atoms, comp = make_system(recipe, replica)
    symbols = atoms.get_chemical_symbols()
    pots = _PotentialCache(atoms, comp, dtype)
    masses = atoms.get_masses()
    positions = jnp.asarray(atoms.positions, dtype=dtype)
    cell = jnp.asarray(atoms.cell.array, dtype=dtype)
    momenta = None  # carried between MD stages (amu Å / t_ase)
    key = jax.random.PRNGKey(int(run.get("seed", 0)) + int(replica))
    tag = "" if n_replicas(recipe) == 1 else f"glass {replica}: "

    for k, stage in enumerate(recipe["stage"]):
        folder = out / f"{k + 1}_{stage['name']}"
        folder.mkdir(exist_ok=True)
        ckpt = folder / "checkpoint.npz"
        done_flag = folder / "done.json"
        if done_flag.is_file():
            state, spec, meta = load_checkpoint(ckpt)
            positions, cell = state.positions.astype(dtype), state.cell.astype(dtype)
            momenta = state.momenta.astype(dtype) if stage["type"] == "md" else None
            log(f"{tag}stage {k + 1} ({stage['name']}): already done, skipped")
            continue
        energy_fn, cutoff, skin = pots.get(stage.get("potential", recipe["potential"]))
        if stage["type"] == "minimize":
            nl, spec = _allocate(positions, cell, cutoff, skin)
            res = fire(energy_fn, positions, cell, nl, spec, relax_cell=bool(stage.get("relax_cell", False)),
                       couple=stage.get("couple", "tri"), pressure=float(stage.get("pressure", 0.0)),
                       fmax=float(stage.get("fmax", 0.01)), max_steps=int(stage.get("max_steps", 5000)))
            positions, cell, momenta = res.positions, res.cell, None
            state = _init_state(energy_fn, positions, cell, masses, res.nl)
            save_checkpoint(ckpt, state, res.spec, res.steps, extra={"converged": res.converged, "fmax": res.fmax})
            log(f"{tag}stage {k + 1} ({stage['name']}): FIRE {res.steps} steps, fmax {res.fmax:.3g} eV/Å, "
                f"E {float(res.energy):.4f} eV, converged={res.converged}")
        else:
            ens = _ensemble(stage)
            temps = stage_temperatures(stage, ens.dt)
            press = np.full(len(temps), float(stage.get("pressure", 0.0)))
            if ckpt.is_file():
                state, spec, done, traj, tlog = resume(ckpt, folder / "trajectory.h5", folder / "thermo.csv",
                                                       symbols=symbols)
                log(f"{tag}stage {k + 1} ({stage['name']}): resuming at step {done}")
            else:
                nl, spec = _allocate(positions, cell, cutoff, skin)
                key, sub = jax.random.split(key)
                t0 = float(stage.get("initial_temperature", temps[0]))
                state = _init_state(energy_fn, positions, cell, jnp.asarray(masses, dtype), nl, key=sub,
                                    temperature=t0, chain=ens.chain, momenta=momenta)
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
            if len(th.get("temperature", ())):
                log(f"{tag}stage {k + 1} ({stage['name']}): {len(temps)} steps, final T "
                    f"{th['temperature'][-1]:.1f} K, P {th['pressure'][-1]:.3f} GPa, "
                    f"density {th['density'][-1]:.4f} g/cm^3")
        final = atoms.copy()
        final.set_cell(np.asarray(cell))
        final.set_positions(np.asarray(positions))
        if momenta is not None:
            final.set_momenta(np.asarray(momenta))  # amu Å / t_ase: ASE's own momentum unit
        with atomic_path(folder / "final.extxyz", suffix=".extxyz") as tmp:
            ase.io.write(tmp, final, format="extxyz")
        with atomic_path(done_flag) as tmp:
            tmp.write_text(json.dumps({"stage": stage["name"]}))
    final = atoms.copy()
    final.set_cell(np.asarray(cell))
    final.set_positions(np.asarray(positions))
    if momenta is not None:
        final.set_momenta(np.asarray(momenta))
    final.info["composition"] = comp
    return out, final


def run_recipe(path, progress: bool = True, log: Callable[[str], None] = print,
               overrides: Optional[Iterable[Override]] = None, quick: bool = False) -> Path:
    """Run (or resume) every stage of a recipe for every replica, then its deformation study
    (or its Table II sweep); returns the output folder."""
    recipe = load_recipe(path, overrides=overrides, quick=quick)
    out = output_folder(recipe)
    out.mkdir(parents=True, exist_ok=True)
    if "sweep" in recipe:
        run_sweep(recipe, progress=progress, log=log)
        return out
    finals = []
    for r in range(n_replicas(recipe)):
        finals.append(run_stages(recipe, r, progress=progress, log=log)[1])
    if "deformation" in recipe:
        run_deformation_study(recipe, finals, progress=progress, log=log)
    return out


# ----------------------------------------------------------------------------- deformation studies

def deformation_runs(recipe: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The runs of a recipe's ``[deformation]`` study: one dict per (replica, direction, rate)
    with ``name``, ``replica``, ``mode``, ``direction``, ``axis`` (the loading axis; the shear
    plane's index in :data:`glassjax.md.deform.SHEAR_PLANES` for shear), ``plane`` (shear),
    ``rate`` (1/ps) and ``target_strain`` (signed)."""
    d = recipe["deformation"]
    runs = []
    for r in range(n_replicas(recipe)):
        for direction in d["directions"]:
            for rate in d["rates"]:
                kind = "tension" if rate > 0 else "compression"
                if d["mode"] in ("shear", "pure_shear"):
                    kind = f"{d['mode']}" if rate > 0 else f"{d['mode']}_neg"
                run = {"name": f"glass{r}_{direction}_{kind}", "replica": r, "mode": d["mode"],
                       "direction": direction, "rate": float(rate),
                       "target_strain": float(np.sign(rate) * d["max_strain"]), "axis": None, "plane": None}
                if d["mode"] == "uniaxial":
                    run["axis"] = AXES[direction]
                elif d["mode"] in ("shear", "pure_shear"):
                    from glassjax.md.deform import SHEAR_PLANES

                    run["plane"] = list(PLANES[direction])
                    run["axis"] = SHEAR_PLANES.index(PLANES[direction])
                runs.append(run)
    return runs


def run_deformation_study(recipe: Dict[str, Any], finals: Sequence, progress: bool = True,
                          log: Callable[[str], None] = print) -> Path:
    """Deform every replica's final structure as the recipe's ``[deformation]`` says, then write
    the batch report (:func:`glassjax.analysis.deformation.deformation_report`).

    Each run goes to ``<output>/deform/<name>/`` (``deform.csv``, ``trajectory.h5``,
    ``checkpoint.npz``, ``run.json``; :func:`glassjax.md.deform.run_deformation`, resumed
    from its checkpoint when interrupted); the tables and figures to ``<output>/deform/summary/``.
    Returns the summary folder.
    """
    import jax
    import jax.numpy as jnp

    from glassjax.analysis.deformation import deformation_report
    from glassjax.atomic_write import atomic_path
    from glassjax.md import deform as D
    from glassjax.md import integrators as I

    d = recipe["deformation"]
    out = output_folder(recipe) / "deform"
    out.mkdir(parents=True, exist_ok=True)
    dtype = recipe_dtype(recipe)
    pot = d.get("potential", recipe["potential"])
    deformation = D.Deformation(mode=d["mode"], lateral=d.get("lateral", "barostat"))
    chain = int(d.get("chain", 3))
    if deformation.barostat:
        ens = I.npt(float(d["dt"]), float(d["tau_t"]), float(d["tau_p"]), couple="aniso", chain=chain)
    else:
        ens = I.nvt(float(d["dt"]), float(d["tau_t"]), chain=chain)
    temperature = float(d["temperature"])
    run_dirs = []
    pending = []  # (run, folder, energy_fn, cutoff, skin, state, params, symbols)
    key = jax.random.PRNGKey(int(recipe.get("run", {}).get("seed", 0)) + 7919)
    for run in deformation_runs(recipe):
        folder = out / run["name"]
        run_dirs.append(folder)
        key, sub = jax.random.split(key)
        if (folder / "done.json").is_file():
            log(f"deformation {run['name']}: already done, skipped")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        atoms = finals[run["replica"]]
        symbols = tuple(atoms.get_chemical_symbols())
        energy_fn, cutoff, skin = _PotentialCache(atoms, atoms.info.get("composition"), dtype).get(pot)
        meta = dict(run, temperature=temperature, lateral=deformation.lateral,
                    lateral_pressure=float(d.get("lateral_pressure", 0.0)), dt=ens.dt,
                    record_every=float(d["record_every"]), snapshot_every=float(d["snapshot_every"]),
                    potential=pot.get("model", pot["type"]))
        with atomic_path(folder / "run.json") as tmp:
            tmp.write_text(json.dumps(meta, indent=1))
        positions = jnp.asarray(atoms.positions, dtype=dtype)
        cell = jnp.asarray(atoms.cell.array, dtype=dtype)
        momenta = atoms.get_momenta()
        nl, spec = _allocate(positions, cell, cutoff, skin)
        has_p = bool(np.any(momenta != 0))  # the last stage's velocities; else drawn at initial_temperature
        state = _init_state(energy_fn, positions, cell, jnp.asarray(atoms.get_masses(), dtype), nl, key=sub,
                            temperature=float(d.get("initial_temperature", temperature)), chain=ens.chain,
                            momenta=jnp.asarray(momenta, dtype=dtype) if has_p else None)
        params = D.deform_params(axis=run["axis"] if run["axis"] is not None else 0, rate=run["rate"],
                                 temperature=temperature, lateral_pressure=float(d.get("lateral_pressure", 0.0)),
                                 dtype=dtype)
        pending.append((run, folder, energy_fn, cutoff, skin, state, spec, params, symbols))
    # runs that can share one program: same potential function (same system) and same |rate|
    groups: Dict[Any, list] = {}
    for item in pending:
        k = (id(item[2]), abs(item[0]["rate"])) if d.get("batch", True) else (len(groups),)
        groups.setdefault(k, []).append(item)
    for members in groups.values():
        if len(members) > 1:
            log(f"deformation: {len(members)} runs in one batch ({', '.join(m[0]['name'] for m in members)})")
            _deform_batch(members, ens, deformation, d, out, progress=progress)
        else:
            run, folder, energy_fn, cutoff, skin, state, spec, params, symbols = members[0]
            log(f"deformation {run['name']}: {d['mode']} {run['direction']} at {run['rate']:+g} /ps to strain "
                f"{run['target_strain']:+g}")
            D.run_deformation(energy_fn, state, spec, ens, deformation, params, target_strain=run["target_strain"],
                              record_strain_interval=float(d["record_every"]),
                              snapshot_strain_interval=float(d["snapshot_every"]), out_dir=folder,
                              symbols=list(symbols), progress=progress)
        for m in members:
            with atomic_path(m[1] / "done.json") as tmp:
                tmp.write_text(json.dumps({"run": m[0]["name"]}))
    formers = d.get("formers", ["B", "Si"])
    comp = recipe.get("system", {}).get("composition", "")
    title = f"{comp} {d['mode']} deformation ({len(run_dirs)} runs)"
    written = deformation_report(run_dirs, out / "summary", bo_cutoff=float(d["bo_cutoff"]), formers=formers,
                                 title=title, progress=progress)
    for name, path in written.items():
        log(f"deformation summary {name}: {path}")
    return out / "summary"


def _batch_deform_scan(energy_fn, state, spec, ens, deformation, params, refs, n_steps: int, every: int):
    """``n_steps`` deformation steps of a batch (leading axis B on state, params, refs (B, 3, 3))
    in one ``lax.scan``; one batch-wide list refresh per step
    (:func:`glassjax.md.batch.update_batch_lists`).  Returns ``(state, records (B, R, ...))``."""
    import jax

    from glassjax.md import deform as D
    from glassjax.md.batch import update_batch_lists

    def step(st, _):
        mid = jax.vmap(lambda s, p, r: D.deform_drift(s, ens, deformation, p, r))(st, params, refs)
        mid = update_batch_lists(mid, spec)
        return jax.vmap(lambda s, p: D.deform_kick(energy_fn, s, ens, deformation, p))(mid, params), None

    def outer(st, _):
        st, _ = jax.lax.scan(step, st, None, length=every)
        rec = jax.vmap(lambda s, p, r: D.deform_records(s, ens, deformation, p, r))(st, params, refs)
        rec["step"] = st.step
        return st, rec

    st, rec = jax.lax.scan(outer, state, None, length=n_steps // every)
    return st, {k: jax.numpy.swapaxes(v, 0, 1) for k, v in rec.items()}


_BATCH_SCAN: Dict[Any, Callable] = {}


def _deform_batch(members: Sequence, ens, deformation, d: Mapping[str, Any], out: Path, progress: bool = True) -> None:
    """Run deformation runs of one system and one |rate| as one vmapped program.

    The records, snapshots, CSV and H5MD files are those :func:`glassjax.md.deform.run_deformation`
    writes for each run (same record and snapshot steps), and a batch checkpoint (in the first
    run's folder, ``batch_checkpoint.npz``) makes an interrupted batch resume exactly.
    """
    import math

    import jax
    import jax.numpy as jnp
    from tqdm.auto import tqdm

    from glassjax.md import batch as B
    from glassjax.md import deform as D
    from glassjax.md.trajectory import H5MDWriter, load_checkpoint, save_checkpoint

    runs = [m[0] for m in members]
    folders = [m[1] for m in members]
    energy_fn, cutoff, skin = members[0][2], members[0][3], members[0][4]
    symbols = list(members[0][8])
    names = [r["name"] for r in runs]
    params = B.stack([m[7] for m in members])
    for m in members:
        D.check_params(deformation, m[7], ens, m[0]["target_strain"])
    strain_per_step = abs(runs[0]["rate"]) * ens.dt
    record_steps = max(1, int(round(float(d["record_every"]) / strain_per_step)))
    snap_records = max(1, int(round(float(d["snapshot_every"]) / (record_steps * strain_per_step))))
    chunk_steps = record_steps * snap_records
    total_steps = int(math.ceil(float(d["max_strain"]) / strain_per_step / record_steps - 1e-9)) * record_steps
    ckpt = folders[0] / "batch_checkpoint.npz"
    meta_now = {"runs": names, "record_steps": record_steps, "chunk_steps": chunk_steps, "total_steps": total_steps}
    if ckpt.is_file():
        state, spec, meta = load_checkpoint(ckpt)
        if meta.get("extra", {}).get("runs") != names:
            raise ConfigError(f"{ckpt}: the batch checkpoint belongs to other runs; delete it to start again")
        refs = jnp.asarray(meta["extra"]["reference_cells"], dtype=state.positions.dtype)
        done = int(meta["steps_done"])
        trajs = [H5MDWriter(f / "trajectory.h5", symbols, np.asarray(state.masses[0]), truncate_to=meta["frames"])
                 for f in folders]
        for t in trajs:
            D.h5_truncate_observables(t, meta["frames"])
        logs = [D.DeformLog(f / "deform.csv", truncate_to=meta["rows"]) for f in folders]
    else:
        state, spec = B.make_batch([D.start(m[5]) for m in members], cutoff, skin, capacity_factor=1.5,
                                   image_margin=1.0)
        refs = jnp.stack([m[5].cell for m in members])
        done = 0
        trajs = [H5MDWriter(f / "trajectory.h5", symbols, np.asarray(state.masses[0])) for f in folders]
        logs = [D.DeformLog(f / "deform.csv") for f in folders]
        rec0 = jax.vmap(lambda s, p, r: D.deform_records(s, ens, deformation, p, r))(state, params, refs)
        rec0 = {k: np.asarray(v)[:, None] for k, v in rec0.items()}
        rec0["step"] = np.zeros((len(members), 1), np.int64)
        _write_frames(trajs, state, rec0, 0, ens.dt)
        meta_now["reference_cells"] = np.asarray(refs).tolist()
        save_checkpoint(ckpt, state, spec, 0, frames=1, rows=0, extra=meta_now)
    meta_now["reference_cells"] = np.asarray(refs).tolist()
    bar = tqdm(total=float(d["max_strain"]), initial=done * strain_per_step, disable=not progress, unit="strain")
    try:
        while done < total_steps:
            size = min(chunk_steps, total_steps - done)
            for attempt in range(6):
                fkey = (energy_fn, spec, ens, deformation, size, record_steps)
                fn = _BATCH_SCAN.get(fkey)
                if fn is None:
                    if len(_BATCH_SCAN) > 16:
                        _BATCH_SCAN.clear()
                    fn = _BATCH_SCAN[fkey] = jax.jit(lambda st, p, r, _k=fkey: _batch_deform_scan(
                        _k[0], st, _k[1], _k[2], _k[3], p, r, _k[4], _k[5]))
                new_state, rec = fn(state, params, refs)
                if not bool(jnp.any(new_state.overflow)):
                    break
                # redo the chunk with larger lists for the whole batch
                state, spec = B.reallocate_batch(state, spec, capacity_factor=1.5 ** (attempt + 1),
                                                 image_margin=1.0 * (attempt + 1),
                                                 min_capacity=int(1.3 * int(jnp.max(new_state.nl.max_count))))
            else:
                raise SimulationError(f"deformation batch {names}: neighbour lists kept overflowing at step {done}")
            B.check_batch(new_state, done + size, names)
            state = new_state
            rec = {k: np.asarray(v) for k, v in rec.items()}
            rec["time_ps"] = rec["step"] * ens.dt
            _write_frames(trajs, state, rec, -1, ens.dt)
            for i, lg in enumerate(logs):
                lg.append({k: v[i] for k, v in rec.items()})
            done += size
            save_checkpoint(ckpt, state, spec, done, frames=trajs[0].n_frames, rows=logs[0].n_rows, extra=meta_now)
            bar.update(size * strain_per_step)
    finally:
        bar.close()
        for w in trajs + logs:
            w.close()


def _write_frames(trajs, state, rec, k: int, dt: float) -> None:
    """Append record ``k`` of every member (and its positions/velocities) to its H5MD file."""
    from glassjax import units
    from glassjax.md import deform as D

    pos = np.asarray(state.positions)
    vel = np.asarray(state.momenta) / np.asarray(state.masses)[..., None] * units.PS
    for i, traj in enumerate(trajs):
        one = {key: np.asarray(v[i])[k][None] for key, v in rec.items()}
        step_i = one["step"].astype(np.int64)
        t_i = step_i * float(dt)
        one["positions"], one["velocities"] = pos[i][None], vel[i][None]
        traj.append(step_i, t_i, one)
        D.h5_append_observable(traj, "strain", (), step_i, t_i, one["strain"])
        D.h5_append_observable(traj, "strain_tensor", (3, 3), step_i, t_i, one["strain_tensor"])


def run_sweep(recipe: Dict[str, Any], progress: bool = True, log: Callable[[str], None] = print) -> Path:
    """The recipe's ``[sweep]``: :func:`glassjax.md.sweep.table2_sweep` (all or some Table II
    glasses built, melt-quenched and NPT-equilibrated in one batched program), writing
    ``<output>/table2.csv`` (density and 4B beside the experimental values),
    ``<output>/table2_summary.csv`` (mean deviations per family beside the 2024 paper's MLP), per-glass logs and
    trajectories, and ``<output>/table2.png`` (simulated versus experimental density and N4,
    as the 2024 paper's Figs. 3 and 4).  A finished sweep (its CSV present) is not rerun."""
    from glassjax.md import batch as B
    from glassjax.md.builder import parse_composition, parse_formula
    from glassjax.md.compositions import TABLE_II
    from glassjax.md.sweep import table2_sweep

    s = recipe["sweep"]
    out = output_folder(recipe)
    csv_path = out / "table2.csv"
    names = list(TABLE_II) if s.get("compositions", "all") == "all" else list(s["compositions"])
    if csv_path.is_file():
        log(f"sweep: {csv_path} exists, skipped (delete it to run again)")
    else:
        pot = recipe["potential"]
        dtype = recipe_dtype(recipe)
        if pot["type"] == "teter":
            rc = float(pot.get("cutoff", 8.0))
            potential = B.teter_potential(rc_sr=rc, rc_coul=rc, alpha=float(pot.get("alpha", 0.25)), n4=pot.get("n4"))
        else:
            model, _, path = load_potential_model(pot, dtype)
            elements = sorted({el for nm in names for ox in parse_composition(nm) for el in parse_formula(ox)})
            missing = sorted(set(elements) - set(model.type_map))
            if missing:
                raise ConfigError(f"potential {path}: the model's type_map {list(model.type_map)} lacks "
                                  f"element(s) {missing} of the sweep's glasses")
            potential = B.deeppot_potential(path, dtype=np.dtype(dtype).name, strict=bool(pot.get("strict", True)))
        keys = ("n_atoms", "seed", "dt", "t_melt", "melt_ps", "rate", "rate_high", "t_hold", "hold_ps", "t_final", "npt_ps",
                "average_ps", "pressure", "tau_t", "tau_p", "quench_ensemble", "chunk", "every", "bo_cutoff", "density",
                "relax_steps", "relax_fmax")
        kwargs = {k: s[k] for k in keys if k in s}
        log(f"sweep: {len(names)} glasses, {kwargs}")
        table2_sweep(potential, names=names, skin=float(pot.get("skin", 1.0)), out_dir=out, progress=progress,
                     **kwargs)
    plot_sweep(csv_path, out / "table2.png")
    log(f"sweep: {csv_path}, {out / 'table2.png'}")
    return out


def plot_sweep(csv_path, png_path) -> None:
    """Simulated versus experimental density and N4 of a sweep's ``table2.csv`` (PNG, atomic)."""
    import csv

    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    from glassjax.atomic_write import atomic_path

    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    fig = Figure(figsize=(10, 4.5))
    axes = fig.subplots(1, 2)
    for ax, key, unit in ((axes[0], "density", " (g/cm$^3$)"), (axes[1], "N4", "")):
        x = np.array([float(r[f"{key}_exp"]) for r in rows])
        y = np.array([float(r[f"{key}_sim"]) for r in rows])
        e = np.array([float(r.get(f"{key}_sim_std", 0.0) or 0.0) for r in rows])
        lbs = np.array([r["glass"].startswith("LBS") for r in rows])
        for sel, lab, mk in ((lbs, "LBS", "o"), (~lbs, "LB", "s")):
            if sel.any():
                ax.errorbar(x[sel], y[sel], yerr=e[sel], fmt=mk, label=lab, capsize=2)
        for xi, yi, r in zip(x, y, rows):
            ax.annotate(r["glass"], (xi, yi), fontsize=6, xytext=(2, 2), textcoords="offset points")
        lo = float(np.nanmin(np.concatenate([x, y]))) if len(x) else 0.0
        hi = float(np.nanmax(np.concatenate([x, y]))) if len(x) else 1.0
        pad = 0.05 * (hi - lo + 1e-9)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
        ax.set_xlabel(f"{key} experiment{unit}")
        ax.set_ylabel(f"{key} simulation{unit}")
        ax.legend()
    fig.suptitle("Table II glasses: simulation vs experiment")
    fig.tight_layout()
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
