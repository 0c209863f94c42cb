"""``glassjax analyze coordination | rings | track-rings``: network analyses (CSV + PNG).

Every sub-command reads a trajectory or structure with
:func:`glassjax.analysis.io.read_trajectory` (extxyz, LAMMPS data/dump with
``--species-map 1:B,2:O``, POSCAR, pymatgen JSON, glassjax HDF5), writes a CSV table and a
PNG figure next to it (``--figure`` overrides the figure path), both atomically.

Examples::

    glassjax analyze coordination glass.extxyz --cutoff B-O=2.0 --cutoff Si-O=2.3 -o coord.csv
    glassjax analyze rings 561.data --formers B --criterion king --max-size 10 -o rings.csv
    glassjax analyze track-rings cooling.extxyz --temperatures 1600:300 -o track.csv
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from glassjax.errors import ConfigError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("trajectory", help="trajectory or structure file")
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
    p.add_argument("--figure", default=None, help="PNG file (default: the CSV path with .png)")
    p.add_argument("--index", default=":", help="frames to read, e.g. ':' (all), '-1', '0:1000:10'")
    p.add_argument("--format", default=None, help="file format (ASE name, 'pymatgen-json', 'glassjax-h5')")
    p.add_argument("--species-map", default=None, help="LAMMPS type -> element, e.g. '1:B,2:O' or 'B,O'")
    p.add_argument("--system", default=None, help="system name inside a glassjax HDF5 dataset")
    p.add_argument("--cutoff", action="append", default=None, metavar="A-B=R",
                   help="bond cutoff in Å for an element pair (repeatable); defaults B-O=2.0, Si-O=2.3, Li-O=2.7")
    p.add_argument("--chunk", type=int, default=16, help="frames per vmapped call (default 16)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")


def register_analyses(sub) -> None:
    p = sub.add_parser("coordination", help="3B/4B, 4Si/5Si, BO/NBO/free O, connectivity, density per frame",
                       description="Coordination analysis per frame (fractions, connectivity, density g/cm^3).")
    _common(p)
    p.set_defaults(func=run_coordination)

    p = sub.add_parser("rings", help="3-rings (T3O3) and their types per frame; ring-size distribution",
                       description="3-ring statistics per frame (JAX kernel) and, optionally, the ring-size "
                                   "distribution by King's or Guttman's shortest-path criterion.")
    _common(p)
    p.add_argument("--formers", default="B,Si", help="network formers T of the T-O-T rings (default B,Si)")
    p.add_argument("--criterion", default="king", choices=("king", "guttman", "none"),
                   help="shortest-path criterion for the ring-size distribution ('none' skips it)")
    p.add_argument("--max-size", type=int, default=10, help="largest ring searched, in T atoms (default 10)")
    p.add_argument("--size-every", type=int, default=1,
                   help="ring-size distribution on every k-th frame only (host search; default 1)")
    p.set_defaults(func=run_rings)

    p = sub.add_parser("track-rings", help="when the final 3-rings formed; what new rings were made of",
                       description="For the 3-rings of the last frame: the frame/temperature from which each "
                                   "exists (2022 Fig. 7e); for rings new with respect to --reference: the "
                                   "structural units they formed from (2024 Fig. 11).")
    _common(p)
    p.add_argument("--formers", default="B,Si", help="network formers T (default B,Si)")
    p.add_argument("--reference", type=int, default=0, help="reference frame for new-ring origins (default 0)")
    p.add_argument("--temperatures", default=None,
                   help="temperature per frame, K: a file (one value per line), a comma list, or START:STOP "
                        "for a linear ramp over the frames")
    p.set_defaults(func=run_track_rings)


# ----------------------------------------------------------------------------- helpers


def _read(args):
    from glassjax.analysis.io import read_trajectory

    return read_trajectory(args.trajectory, index=args.index, format=args.format,
                           species_map=args.species_map, system=args.system)


def _cutoffs(args):
    from glassjax.analysis.bonds import parse_cutoffs

    return parse_cutoffs(args.cutoff)


def _figure_path(args) -> Path:
    return Path(args.figure) if args.figure else Path(args.output).with_suffix(".png")


def _formers(text: str) -> List[str]:
    from glassjax.data.frames import check_element

    out = [check_element(t.strip(), where="--formers") for t in str(text).split(",") if t.strip()]
    if not out:
        raise ConfigError("--formers: give at least one network former, e.g. B,Si")
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else repr(v)
    return str(v)


def write_csv(path, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Write a CSV table atomically."""
    from glassjax.atomic_write import atomic_path

    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for row in rows:
                w.writerow([_fmt(v) for v in row])


def save_figure(fig, path) -> None:
    from glassjax.atomic_write import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def _figure(figsize):
    """A matplotlib Figure without pyplot (leaves a notebook's or caller's backend alone)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def parse_temperatures(text: Optional[str], nframes: int):
    """Temperatures per frame from a file, a comma list or 'START:STOP' (linear ramp)."""
    import numpy as np

    if text is None:
        return None
    p = Path(text)
    if p.exists():
        try:
            vals = np.loadtxt(p, dtype=float).reshape(-1)
        except ValueError as exc:
            raise ConfigError(f"--temperatures {text}: cannot read numbers ({exc})") from None
    elif ":" in text:
        try:
            a, b = (float(x) for x in text.split(":"))
        except ValueError:
            raise ConfigError(f"--temperatures {text!r}: write START:STOP in K, e.g. 1600:300") from None
        vals = np.linspace(a, b, nframes)
    else:
        try:
            vals = np.array([float(x) for x in text.split(",")])
        except ValueError:
            raise ConfigError(f"--temperatures {text!r}: not a file, a comma list or START:STOP") from None
    if len(vals) != nframes:
        raise ConfigError(f"--temperatures: {len(vals)} values for {nframes} frames; give one per frame")
    return vals


# ----------------------------------------------------------------------------- handlers


def run_coordination(args) -> int:
    from glassjax.analysis.coordination import PROPERTY_KEYS, coordination_trajectory

    frames = _read(args)
    res = coordination_trajectory(frames, cutoffs=_cutoffs(args), chunk=args.chunk, progress=args.progress)
    rows = [[k, frames.source[k]] + [int(res[key][k]) if key.startswith("n_") else float(res[key][k])
                                     for key in PROPERTY_KEYS] for k in range(frames.nframes)]
    write_csv(args.output, ["frame", "source"] + list(PROPERTY_KEYS), rows)

    fig = _figure((9, 3.5))
    ax = fig.subplots(1, 2)
    x = range(frames.nframes)
    for key, label in (("frac_B4", "4B / B"), ("frac_Si5", "5Si / Si"), ("frac_NBO", "NBO / O"),
                       ("frac_O_tri", "tricluster O / O")):
        if key in res and not all(math.isnan(v) for v in res[key]):
            ax[0].plot(x, res[key], "o-", ms=3, label=label)
    ax[0].set_xlabel("frame")
    ax[0].set_ylabel("fraction")
    ax[0].legend(fontsize=8)
    ax[1].plot(x, res["density"], "o-", ms=3, color="k")
    ax[1].set_xlabel("frame")
    ax[1].set_ylabel("density (g/cm$^3$)")
    fig.suptitle(Path(args.trajectory).name)
    save_figure(fig, _figure_path(args))
    print(f"coordination: {frames.nframes} frames -> {args.output}, {_figure_path(args)}")
    return 0


def run_rings(args) -> int:
    import numpy as np

    from glassjax.analysis.rings import RING_STAT_KEYS, ring_statistics, three_rings_trajectory

    if args.max_size < 2:
        raise ConfigError("--max-size must be at least 2 (T atoms)")
    if args.size_every < 1:
        raise ConfigError("--size-every must be >= 1")
    frames = _read(args)
    formers = _formers(args.formers)
    cut = _cutoffs(args)
    res = three_rings_trajectory(frames, cutoffs=cut, formers=formers, chunk=args.chunk, progress=args.progress)
    sizes = list(range(2, args.max_size + 1))
    hists: Dict[int, np.ndarray] = {}
    if args.criterion != "none":
        type_map = frames.elements
        types = frames.types(type_map)
        todo = range(0, frames.nframes, args.size_every)
        if args.progress:
            from tqdm import tqdm

            todo = tqdm(todo, desc=f"{args.criterion} rings", unit="frame")
        for k in todo:
            out = ring_statistics(frames.positions[k], frames.cells[k], types, type_map, cutoffs=cut,
                                  formers=formers, criterion=args.criterion, max_size=args.max_size)
            hists[k] = out["histogram"]
    header = ["frame", "source"] + list(RING_STAT_KEYS) + [f"{args.criterion}_{n}" for n in sizes] \
        if hists else ["frame", "source"] + list(RING_STAT_KEYS)
    rows = []
    for k in range(frames.nframes):
        row = [k, frames.source[k]] + [float(res[key][k]) if "frac" in key else int(res[key][k])
                                       for key in RING_STAT_KEYS]
        if hists:
            row += [int(hists[k][n]) if k in hists else float("nan") for n in sizes]
        rows.append(row)
    write_csv(args.output, header, rows)

    fig = _figure((9, 3.5))
    ax = fig.subplots(1, 2)
    x = np.arange(frames.nframes)
    ax[0].plot(x, res["n_3rings"], "o-", ms=3, label="all 3-rings")
    ax[0].plot(x, res["n_3rings_B3x3"], "s--", ms=3, label="boroxol (3 x 3B)")
    ax[0].plot(x, res["n_3rings_with_Si"], "^:", ms=3, label="with Si")
    ax[0].set_xlabel("frame")
    ax[0].set_ylabel("number of 3-rings")
    ax[0].legend(fontsize=8)
    if hists:
        mean = np.mean([h[sizes] for h in hists.values()], axis=0)
        ax[1].bar(sizes, mean)
        ax[1].set_xlabel(f"ring size (T atoms), {args.criterion}")
        ax[1].set_ylabel("rings per cell (mean over frames)")
    else:
        ax[1].plot(x, res["frac_B3_in_3ring"], "o-", ms=3)
        ax[1].set_xlabel("frame")
        ax[1].set_ylabel("3B in 3-rings / 3B")
    fig.suptitle(Path(args.trajectory).name)
    save_figure(fig, _figure_path(args))
    print(f"rings: {frames.nframes} frames -> {args.output}, {_figure_path(args)}")
    return 0


def run_track_rings(args) -> int:
    import numpy as np

    from glassjax.analysis.tracking import track_three_rings

    frames = _read(args)
    temps = parse_temperatures(args.temperatures, frames.nframes)
    res = track_three_rings(frames, temperatures=temps, reference=args.reference, cutoffs=_cutoffs(args),
                            formers=_formers(args.formers), chunk=args.chunk, progress=args.progress)
    header = ["ring_atoms", "first_continuous_frame", "first_seen_frame", "n_frames_present"]
    if temps is not None:
        header += ["first_continuous_temperature", "first_seen_temperature"]
    rows = [[" ".join(str(a) for a in r["atoms"])] + [r[h] for h in header[1:]] for r in res["first_appearance"]]
    write_csv(args.output, header, rows)
    out = Path(args.output)
    origins_path = out.with_name(out.stem + "_origins.csv")
    write_csv(origins_path, ["frame", "ring_atoms", "category", "n_ref_bonds", "ref_classes"],
              [[o["frame"], " ".join(str(a) for a in o["atoms"]), o["category"], o["n_ref_bonds"],
                o.get("ref_classes", "")] for o in res["origins"]])

    fig = _figure((9, 3.5))
    ax = fig.subplots(1, 2)
    x = temps if temps is not None else np.arange(frames.nframes)
    ab = res["abundance"]
    ax[0].plot(x, ab["formed"], "o-", ms=3, label="formed for good")
    ax[0].plot(x, ab["present"], "s--", ms=3, label="present")
    ax[0].set_xlabel("temperature (K)" if temps is not None else "frame")
    ax[0].set_ylabel(f"fraction of the {ab['n_final']} final 3-rings")
    if temps is not None and temps[0] > temps[-1]:
        ax[0].invert_xaxis()
    ax[0].legend(fontsize=8)
    counts = res["origin_counts"]
    if counts:
        ax[1].bar(range(len(counts)), list(counts.values()))
        ax[1].set_xticks(range(len(counts)))
        ax[1].set_xticklabels(list(counts.keys()), rotation=45, fontsize=8)
    ax[1].set_xlabel("initial structural units (atoms)")
    ax[1].set_ylabel("new 3-rings in the last frame")
    fig.suptitle(Path(args.trajectory).name)
    save_figure(fig, _figure_path(args))
    print(f"track-rings: {len(res['first_appearance'])} final rings -> {args.output}, {origins_path}, "
          f"{_figure_path(args)}")
    return 0
