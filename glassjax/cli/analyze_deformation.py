"""``glassjax analyze deformation RUN_DIR [RUN_DIR ...] -o OUT_DIR``: stress-strain, 4B fraction and
3-ring count versus strain of a batch of deformation runs, batch mean ± std with every run as a
thin line (the 2024 paper's Figs. 7, 10, 12).

A RUN_DIR is one run's folder (records CSV + trajectory.h5, as written by
``glassjax.md.deform.run_deformation`` or a deformation recipe), or a folder holding such run
folders (e.g. ``simulate/out_lb67_uniaxial/deform``): then every run below it is used.

Example::

    glassjax analyze deformation simulate/out_lb67_uniaxial/deform -o lb67_report/
"""

from __future__ import annotations

from pathlib import Path
from typing import List


def register_analyses(sub) -> None:
    p = sub.add_parser("deformation", help="stress-strain, 4B and 3-rings vs strain of deformation runs (CSV + PNG)",
                       description=__doc__)
    p.add_argument("runs", nargs="+", help="run folders, or folders that hold run folders")
    p.add_argument("-o", "--output", required=True, help="folder for the CSV tables and PNG figures")
    p.add_argument("--bo-cutoff", type=float, default=2.0, help="B-O bond cutoff for 4B and 3-rings, Å (default 2.0)")
    p.add_argument("--formers", default="B,Si", help="network formers of the 3-rings (default B,Si)")
    p.add_argument("--title", default="", help="figure title")
    p.add_argument("--no-structure", action="store_true", help="stress-strain only (skip 4B / 3-ring analysis)")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.set_defaults(func=run_deformation_report)


def expand_runs(paths) -> List[Path]:
    """Run folders: each path itself when it holds a CSV, else its sub-folders that do (sorted)."""
    from glassjax.errors import DataError

    def is_run(q: Path) -> bool:
        return any(q.glob("*.csv")) and (any(q.glob("*.h5")) or (q / "run.json").is_file())

    out: List[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise DataError(p, "not a folder", hint="pass deformation run folders (or a folder of them)")
        if is_run(p):
            out.append(p)
            continue
        subs = sorted(q for q in p.iterdir() if q.is_dir() and is_run(q))
        if not subs:
            raise DataError(p, "holds no deformation run (no records CSV in it or its sub-folders)")
        out.extend(subs)
    return out


def run_deformation_report(args) -> int:
    from glassjax.analysis.deformation import deformation_report

    formers = [f.strip() for f in args.formers.split(",") if f.strip()]
    written = deformation_report(expand_runs(args.runs), args.output, bo_cutoff=args.bo_cutoff, formers=formers,
                                 title=args.title, progress=args.progress, structure=not args.no_structure)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0
