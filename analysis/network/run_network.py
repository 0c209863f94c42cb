"""Run the network analyses of a TOML recipe over several runs and summarise them.

    python analysis/network/run_network.py analysis/network/lbs_table2.toml -o out/table2

For every ``[[run]]`` it calls ``glassjax analyze coordination / rings / track-rings`` (each
writes a CSV and a PNG under the output folder, named ``<label>_<analysis>``), then writes
``summary.csv``: mean and standard deviation over the runs of the last-frame values (the
papers average three independently quenched models and quote mean ± std).

TOML keys (all optional except the runs)::

    [input]                      # defaults for every run
    index = "-1"                 # frames to read (ASE slice syntax)
    species_map = "1:B,2:O"      # LAMMPS type -> element
    format = "lammps-data"

    [cutoffs]                    # Å; defaults B-O 2.0, Si-O 2.3, Li-O 2.7
    "B-O" = 2.0

    [coordination]               # present -> run it

    [rings]
    formers = ["B", "Si"]        # T of the T-O-T rings (["B"] for B-O rings only)
    criterion = "king"           # "king", "guttman" or "none"
    max_size = 10

    [track_rings]
    formers = ["B", "Si"]
    temperatures = "1600:300"    # file, comma list or START:STOP ramp over the frames
    reference = 0

    [[run]]
    label = "model1"
    trajectory = "model1.extxyz"  # relative paths are relative to the TOML file
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib


def _argv_common(run: dict, inp: dict, cutoffs: dict, base: Path):
    traj = Path(run["trajectory"])
    if not traj.is_absolute():
        traj = base / traj
    argv = [str(traj)]
    for key, opt in (("index", "--index"), ("species_map", "--species-map"), ("format", "--format"),
                     ("system", "--system")):
        value = run.get(key, inp.get(key))
        if value not in (None, ""):
            argv += [opt, str(value)]
    for pair, rc in cutoffs.items():
        argv += ["--cutoff", f"{pair}={rc}"]
    return argv


def main(argv=None) -> int:
    from glassjax.cli import main as glassjax_main
    from glassjax.cli.analyze_network import write_csv
    from glassjax.errors import ConfigError

    ap = argparse.ArgumentParser(description="network analyses of a recipe (CSV + PNG per run, summary.csv)")
    ap.add_argument("recipe", help="TOML recipe")
    ap.add_argument("-o", "--output", required=True, help="output folder")
    args = ap.parse_args(argv)
    recipe_path = Path(args.recipe)
    cfg = tomllib.loads(recipe_path.read_text())
    runs = cfg.get("run", [])
    if not runs:
        raise ConfigError(f"{recipe_path}: no [[run]] entries")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    inp, cutoffs = cfg.get("input", {}), cfg.get("cutoffs", {})
    last_rows = {}
    for k, run in enumerate(runs):
        label = run.get("label", f"run{k}")
        common = _argv_common(run, inp, cutoffs, recipe_path.parent)
        jobs = []
        if "coordination" in cfg:
            jobs.append(("coordination", []))
        if "rings" in cfg:
            r = cfg["rings"]
            jobs.append(("rings", ["--formers", ",".join(r.get("formers", ["B", "Si"])),
                                   "--criterion", r.get("criterion", "king"),
                                   "--max-size", str(r.get("max_size", 10))]))
        if "track_rings" in cfg:
            t = cfg["track_rings"]
            extra = ["--formers", ",".join(t.get("formers", ["B", "Si"])), "--reference", str(t.get("reference", 0))]
            temps = run.get("temperatures", t.get("temperatures"))
            if temps is not None:
                extra += ["--temperatures", str(temps)]
            jobs.append(("track-rings", extra))
        for name, extra in jobs:
            csv_path = out / f"{label}_{name}.csv"
            rc = glassjax_main(["analyze", name] + common + extra + ["-o", str(csv_path)])
            if rc:
                return rc
            if name in ("coordination", "rings"):
                rows = list(csv.DictReader(open(csv_path)))
                last_rows.setdefault(name, []).append(rows[-1])
    summary = []
    for name, rows in last_rows.items():
        for key in rows[0]:
            if key in ("frame", "source"):
                continue
            vals = [float(r[key]) for r in rows if r[key] not in ("", "nan")]
            if not vals:
                continue
            mean = sum(vals) / len(vals)
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
            summary.append([name, key, mean, std, len(vals)])
    write_csv(out / "summary.csv", ["analysis", "quantity", "mean", "std", "n_runs"], summary)
    print(f"{len(runs)} runs -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
