"""``glassjax data``: convert DFT data into one HDF5 dataset, and inspect a dataset.

    glassjax data convert INPUT... -o data.h5 [--append] [--val-fraction 0.1] [--seed 0]
                                              [--format FMT] [--type-map B,O]
    glassjax data info data.h5 [--json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="convert DFT data into a glassjax HDF5 dataset, inspect one",
                              description="Convert DFT data (DeePMD-kit npy/raw systems, VASP OUTCAR / "
                                          "vasprun.xml, extxyz and other ASE formats) into one HDF5 "
                                          "dataset, and inspect a dataset.")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    c = sub.add_parser("convert", help="read DFT data and write (or extend) an HDF5 dataset",
                       description="Read every INPUT (a file, a DeePMD-kit system folder, or a folder "
                                   "searched recursively) and write all systems into one HDF5 file. "
                                   "The file is written atomically: a failed run leaves an existing "
                                   "file untouched.")
    c.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders to read")
    c.add_argument("-o", "--output", required=True, help="HDF5 dataset to write")
    c.add_argument("--append", action="store_true", help="add the systems to an existing dataset")
    c.add_argument("--val-fraction", type=float, default=None,
                   help="fraction of each system's frames held out for validation "
                        "(default 0.1, or the file's value with --append)")
    c.add_argument("--seed", type=int, default=None,
                   help="seed of the train/validation split (default 0, or the file's with --append)")
    c.add_argument("--format", default=None,
                   help="force the reader: deepmd, vasp, or an ASE format name such as extxyz")
    c.add_argument("--type-map", default=None,
                   help="comma-separated elements for DeePMD systems lacking type_map.raw, e.g. B,O")
    c.add_argument("--vasp-energy", choices=("free", "sigma0"), default="free",
                   help="VASP energy: free energy TOTEN (default, as dpdata) or energy(sigma->0)")
    c.add_argument("--keep-unconverged", action="store_true",
                   help="keep VASP ionic steps whose electronic loop hit NELM (dropped by default, as dpdata)")
    c.add_argument("--energy-key", default=None, help="ASE formats: key of the energy (e.g. REF_energy)")
    c.add_argument("--forces-key", default=None, help="ASE formats: key of the forces (e.g. REF_forces)")
    c.add_argument("--stress-key", default=None, help="ASE formats: key of the stress (ASE sign, eV/Å^3)")
    c.add_argument("--virial-key", default=None, help="ASE formats: key of the virial (extensive eV)")
    c.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    c.set_defaults(func=_convert)

    i = sub.add_parser("info", help="summarise a dataset: systems, frames, elements, label ranges")
    i.add_argument("dataset", help="HDF5 dataset written by 'glassjax data convert'")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.set_defaults(func=_info)


def _print_notices(caught) -> None:
    from glassjax.data.readers import DataNotice

    for w in caught:
        if issubclass(w.category, DataNotice):
            print(f"note: {w.message}", file=sys.stderr)
        else:
            print(f"warning: {w.message}", file=sys.stderr)


def _convert(args: argparse.Namespace) -> int:
    import warnings

    from tqdm import tqdm

    from glassjax.data.dataset import write_dataset
    from glassjax.data.readers import find_inputs, read_any

    type_map = [t for t in args.type_map.replace(" ", ",").split(",") if t] if args.type_map else None
    ase_opts = {k: getattr(args, k) for k in ("energy_key", "forces_key", "stress_key", "virial_key")
                if getattr(args, k)}
    frames = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            items = []  # folders are expanded first, so the progress bar counts systems/files
            for inp in args.inputs:
                p = Path(inp)
                if p.is_dir() and not (p / "type.raw").is_file() and not args.format:
                    items += [q for _, q in find_inputs(p)]
                else:
                    items.append(p)
            for item in tqdm(items, desc="reading", unit="input", disable=True if args.quiet else None,
                             file=sys.stderr):
                frames += read_any(item, format=args.format, type_map=type_map,
                                   vasp_energy=args.vasp_energy,
                                   keep_unconverged=args.keep_unconverged, **ase_opts)
            names = write_dataset(args.output, frames, append=args.append,
                                  val_fraction=args.val_fraction, seed=args.seed)
        finally:
            if not args.quiet:
                _print_notices(caught)
    if not args.quiet:
        from glassjax.data.dataset import Dataset

        ds = Dataset(args.output)
        added = [ds.info(n) for n in names]
        nfr = sum(a["nframes"] for a in added)
        nval = sum(a["n_val"] for a in added)
        verb = "appended to" if args.append else "wrote"
        print(f"{verb} {args.output}: {len(names)} systems, {nfr} frames "
              f"({nfr - nval} train / {nval} validation); the file now holds {len(ds)} systems, "
              f"{ds.nframes} frames")
    return 0


def _fmt_range(r, fmt="{:.3f}") -> str:
    return "-" if r is None else f"{fmt.format(r[0])} .. {fmt.format(r[1])}"


def _info(args: argparse.Namespace) -> int:
    import json

    from glassjax.data.dataset import summarize

    s = summarize(args.dataset)
    if args.json:
        print(json.dumps(s, indent=2, default=str))
        return 0
    a = s["attrs"]
    print(f"{s['path']}: {a.get('format')} v{a.get('format_version')}, written by glassjax "
          f"{a.get('glassjax_version')}, created {a.get('created')}, split seed {a.get('seed')}, "
          f"val fraction {a.get('val_fraction')}")
    header = ["system", "formula", "atoms", "frames", "train", "val", "labels", "E/atom (eV)", "|F| (eV/Å)"]
    rows = [[r["name"], r["formula"], str(r["natoms"]), str(r["nframes"]), str(r["n_train"]),
             str(r["n_val"]), ",".join(lab[0].upper() if lab != "virial" else "V" for lab in r["labels"]),
             _fmt_range(r.get("e_per_atom"), "{:.4f}"), _fmt_range(r.get("fmag"))] for r in s["systems"]]
    t = s["total"]
    widths = [max(len(r[k]) for r in [header] + rows) for k in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
    print(f"total: {t['systems']} systems, {t['nframes']} frames ({t['n_train']} train / {t['n_val']} "
          f"validation), {t['atoms']} atoms over all frames; elements {' '.join(t['elements'])}; "
          f"labels {', '.join(t['labels'])}")
    print("labels: E = energy, F = forces, V = virial")
    return 0
