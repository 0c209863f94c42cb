"""``glassjax analyze`` sub-commands for local strain, g(r), S(q), MSD/diffusion, Arrhenius, Tg
and force histograms.  Each writes a CSV table and a PNG figure (matplotlib, Agg backend).

Examples::

    glassjax analyze strain ref.extxyz deform.extxyz --axis z -o out/strain
    glassjax analyze rdf glass.extxyz --r-max 10 -o out/rdf
    glassjax analyze sq glass.extxyz --isotope B=11B --isotope Li=7Li -o out/sq
    glassjax analyze msd run500K.extxyz --dt 0.1 --species Li --t-min 50 --t-max 150 --temperature 500
    glassjax analyze arrhenius diffusion.csv -o out/arrhenius
    glassjax analyze tg heat1.csv heat2.csv heat3.csv -o out/tg
    glassjax analyze force-hist deform.extxyz --axis z -o out/force

``-o PREFIX`` writes ``PREFIX.csv`` and ``PREFIX.png`` (default: the analysis name in the
current folder).
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Dict, Sequence

import numpy as np

from glassjax.errors import ConfigError, DataError


# ----------------------------------------------------------------------------- helpers

def _common(p, traj_help="trajectory or structure file (anything glassjax.analysis.io reads)"):
    p.add_argument("-o", "--output", default=None, help="output prefix: writes PREFIX.csv and PREFIX.png")
    p.add_argument("--index", default=":", help="frames to use, e.g. ':' (all), '-1', '100::10'")
    p.add_argument("--species-map", default=None, help="LAMMPS type -> element, e.g. '1:Li,2:B,3:O,4:Si'")
    p.add_argument("--format", default=None, help="file format (None: guessed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _read(path, args, index=None):
    from glassjax.analysis.io import read_trajectory

    return read_trajectory(path, index=args.index if index is None else index, format=args.format,
                           species_map=args.species_map)


def _prefix(args, default: str) -> Path:
    return Path(args.output if args.output else default)


def _write_csv(path: Path, header: Sequence[str], rows, comments: Sequence[str] = ()) -> None:
    from glassjax.atomic_write import write_text_atomic

    buf = io.StringIO()
    for c in comments:
        buf.write(f"# {c}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([f"{v:.8g}" if isinstance(v, (float, np.floating)) else v for v in r])
    write_text_atomic(path, buf.getvalue())


def _save_fig(fig, path: Path) -> None:
    from glassjax.atomic_write import atomic_path

    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _done(prefix: Path) -> None:
    print(f"wrote {prefix.with_suffix('.csv')} and {prefix.with_suffix('.png')}")


def _suffix(prefix: Path, ext: str) -> Path:
    return prefix.parent / (prefix.name + ext)


# ----------------------------------------------------------------------------- strain

def _cmd_strain(args) -> int:
    import jax.numpy as jnp

    from glassjax.analysis import strain

    ref = _read(args.ref, args, index=str(args.ref_index))
    traj = _read(args.traj, args)
    if ref.natoms != traj.natoms or np.any(ref.species != traj.species):
        raise DataError(args.traj, f"atoms differ from the reference {args.ref} (number, order or elements)",
                        hint="the reference must be the same system, e.g. the frame at zero strain")
    support = ref.species != "Li" if not args.include_li else np.ones(ref.natoms, bool)
    dtype = jnp.asarray(0.0).dtype
    F = strain.deformation_gradient_trajectory(
        jnp.asarray(ref.positions[0], dtype), ref.cells[0], traj.positions, traj.cells, h=args.h,
        cutoff=args.cutoff, support=support, weighting=args.weighting, progress=not args.no_progress)
    eps = np.asarray(strain.local_strain(F))  # (F, N, 3)
    if args.classes:
        labels = Path(args.classes).read_text().split()
        if len(labels) != ref.natoms:
            raise DataError(args.classes, f"{len(labels)} labels for {ref.natoms} atoms",
                            hint="one class name per atom, whitespace separated (e.g. B3r, On, Li)")
        names = sorted(set(labels) - {"-", "Li", "none"})
        cls = np.array([names.index(s) if s in names else -1 for s in labels])
    else:
        cls = strain.reference_classes(ref, cutoffs=args.cutoffs)
        names = list(strain.STRAIN_CLASSES)
    means, counts = strain.class_average(eps, cls, len(names))
    means = np.asarray(means)
    # global (cell) strain of each frame relative to the reference cell: F_cell = (R^-1 C)^T
    F_cell = np.einsum("ab,fbc->fac", np.linalg.inv(ref.cells[0]), traj.cells).transpose(0, 2, 1)
    eps_cell = np.diagonal(F_cell, axis1=1, axis2=2) - 1.0
    ax = "xyz".index(args.axis)
    header = ["frame", "cell_eps_xx", "cell_eps_yy", "cell_eps_zz"]
    for nm in names:
        header += [f"{nm}_eps_xx", f"{nm}_eps_yy", f"{nm}_eps_zz"]
    rows = []
    for f in range(traj.nframes):
        rows.append([f, *eps_cell[f]] + [v for c in range(len(names)) for v in means[f, c]])
    prefix = _prefix(args, "strain")
    comments = [f"local strain eps_aa = F_aa - 1 (2024 paper Eqs. 1-4), h = {args.h} A, weighting {args.weighting}, "
                f"Li {'in' if args.include_li else 'excluded from'} the support",
                "atoms per class: " + ", ".join(f"{nm}={int(c)}" for nm, c in zip(names, np.asarray(counts)))]
    _write_csv(_suffix(prefix, ".csv"), header, rows, comments)
    plt = _plt()
    fig, axp = plt.subplots(figsize=(5.5, 4))
    for c, nm in enumerate(names):
        if np.asarray(counts)[c] > 0:
            axp.plot(eps_cell[:, ax], means[:, c, ax], marker="o", ms=3, label=f"{nm} ({int(np.asarray(counts)[c])})")
    lim = [eps_cell[:, ax].min(), eps_cell[:, ax].max()]
    axp.plot(lim, lim, "k--", lw=0.8, label="affine")
    axp.set_xlabel(f"cell strain $\\epsilon_{{{args.axis}{args.axis}}}$")
    axp.set_ylabel(f"mean local strain $\\epsilon_{{{args.axis}{args.axis}}}$")
    axp.legend(fontsize=7)
    _save_fig(fig, _suffix(prefix, ".png"))
    _done(prefix)
    return 0


# ----------------------------------------------------------------------------- rdf / sq

def _rdf_of(frames, args):
    from glassjax.analysis import rdf as rdfmod

    types, elements = rdfmod.species_types(frames.species)
    out = rdfmod.rdf(frames.positions, frames.cells, types, len(elements), r_max=args.r_max, n_bins=args.bins,
                     progress=not args.no_progress)
    return out, elements


def _cmd_rdf(args) -> int:
    frames = _read(args.traj, args)
    out, el = _rdf_of(frames, args)
    pairs = [(a, b) for a in range(len(el)) for b in range(a, len(el))]
    header = ["r_A", "g_total"] + [f"g_{el[a]}-{el[b]}" for a, b in pairs]
    rows = [[out["r"][k], out["g_total"][k]] + [out["g_partial"][a, b, k] for a, b in pairs]
            for k in range(out["r"].size)]
    prefix = _prefix(args, "rdf")
    _write_csv(_suffix(prefix, ".csv"), header, rows,
               [f"{frames.nframes} frames, {frames.formula}, density {out['density']:.6g} 1/A^3"])
    plt = _plt()
    fig, axp = plt.subplots(figsize=(6, 4))
    axp.plot(out["r"], out["g_total"], "k", label="total")
    for a, b in pairs:
        axp.plot(out["r"], out["g_partial"][a, b], lw=0.8, label=f"{el[a]}-{el[b]}")
    axp.set_xlabel("r (Å)")
    axp.set_ylabel("g(r)")
    axp.legend(fontsize=7)
    _save_fig(fig, _suffix(prefix, ".png"))
    _done(prefix)
    return 0


def _parse_isotopes(items) -> Dict[str, str]:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ConfigError(f"--isotope {it!r}: write ELEMENT=ISOTOPE, e.g. B=11B")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _read_table(path, delimiter=None) -> np.ndarray:
    """Numeric rows of a text table; '#' comments and non-numeric (header) lines are skipped.
    Commas, semicolons or whitespace separate columns (auto-detected unless ``delimiter``)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc.strerror or exc})") from None
    rows = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if delimiter is None:
            parts = line.replace(",", " ").replace(";", " ").split()
        else:
            parts = [x.strip() for x in line.split(delimiter)]
        try:
            rows.append([float(x) for x in parts])
        except ValueError:
            continue  # a header line
    if not rows:
        raise DataError(path, "holds no numeric rows", hint="columns of numbers, optionally with a header line")
    width = min(len(r) for r in rows)
    return np.array([r[:width] for r in rows], dtype=float)


def _read_two_columns(path) -> np.ndarray:
    data = _read_table(path)
    if data.shape[1] < 2:
        raise DataError(path, "needs two numeric columns")
    return data[:, :2]


def _cmd_sq(args) -> int:
    from glassjax.analysis import structure_factor as sqmod

    frames = _read(args.traj, args)
    out, el = _rdf_of(frames, args)
    q = np.linspace(args.q_min, args.q_max, args.nq)
    res = sqmod.neutron_sq(out, el, q, isotopes=_parse_isotopes(args.isotope), window=not args.no_lorch)
    pairs = [(a, b) for a in range(len(el)) for b in range(a, len(el))]
    header = ["q_inv_A", "S_total", "F_fm2"] + [f"S_{el[a]}-{el[b]}" for a, b in pairs]
    rows = [[q[k], res["S"][k], res["F"][k]] + [res["S_partial"][a, b, k] for a, b in pairs] for k in range(q.size)]
    prefix = _prefix(args, "sq")
    _write_csv(_suffix(prefix, ".csv"), header, rows,
               ["Faber-Ziman neutron S(q)" + ("" if args.no_lorch else " with a Lorch window") +
                f", r_max {args.r_max} A; b (fm): " + ", ".join(f"{e}={b:g}" for e, b in zip(el, res["b"]))])
    plt = _plt()
    fig, axs = plt.subplots(1, 2, figsize=(10, 4))
    axs[0].plot(q, res["S"], "k", label="glassjax")
    if args.experiment:
        exp = _read_two_columns(args.experiment)
        axs[0].plot(exp[:, 0], exp[:, 1], "o", mfc="none", ms=3, label=Path(args.experiment).name)
    axs[0].set_xlabel("q (1/Å)")
    axs[0].set_ylabel("S(q)")
    axs[0].legend(fontsize=7)
    for a, b in pairs:
        axs[1].plot(q, res["S_partial"][a, b], lw=0.8, label=f"{el[a]}-{el[b]}")
    axs[1].set_xlabel("q (1/Å)")
    axs[1].set_ylabel("$S_{ab}(q)$")
    axs[1].legend(fontsize=7)
    _save_fig(fig, _suffix(prefix, ".png"))
    _done(prefix)
    return 0


# ----------------------------------------------------------------------------- msd / arrhenius

def _cmd_msd(args) -> int:
    import jax.numpy as jnp

    from glassjax.analysis import diffusion

    frames = _read(args.traj, args)
    if args.dt <= 0:
        raise ConfigError(f"--dt must be the positive time between saved frames in ps, got {args.dt}")
    sel = frames.species == args.species
    if not np.any(sel):
        raise DataError(args.traj, f"no {args.species} atoms", hint=f"elements present: {frames.elements}")
    dtype = jnp.asarray(0.0).dtype
    un = diffusion.unwrap(jnp.asarray(frames.positions, dtype), jnp.asarray(frames.cells, dtype))
    m = np.asarray(diffusion.msd(un, jnp.asarray(sel)))
    t = np.arange(frames.nframes) * args.dt
    fit = diffusion.diffusion_coefficient(t, m, args.t_min, args.t_max)
    comments = [f"{args.species}: {int(sel.sum())} atoms, {frames.nframes} frames, dt {args.dt} ps",
                f"D = {fit['D']:.6g} A^2/ps = {fit['D_cm2_s']:.6g} cm^2/s (fit {fit['t_min']:g}-{fit['t_max']:g} ps, "
                f"MSD = 6 D t)"]
    if args.temperature:
        vol = float(np.mean(frames.volumes()))
        sigma = diffusion.nernst_einstein(fit["D"], int(sel.sum()), vol, args.temperature, args.charge)
        comments.append(f"Nernst-Einstein sigma = {sigma:.6g} S/cm at {args.temperature} K (charge {args.charge} e)")
    prefix = _prefix(args, "msd")
    _write_csv(_suffix(prefix, ".csv"), ["t_ps", "msd_A2"], zip(t, m), comments)
    plt = _plt()
    fig, axp = plt.subplots(figsize=(5.5, 4))
    axp.plot(t, m, "k", label=f"{args.species} MSD")
    tt = np.array([fit["t_min"], fit["t_max"]])
    axp.plot(tt, fit["intercept"] + fit["slope"] * tt, "r--", label=f"D = {fit['D_cm2_s']:.3g} cm²/s")
    axp.set_xlabel("t (ps)")
    axp.set_ylabel("MSD (Å²)")
    axp.legend(fontsize=8)
    _save_fig(fig, _suffix(prefix, ".png"))
    for c in comments:
        print(c)
    _done(prefix)
    return 0


def _cmd_arrhenius(args) -> int:
    from glassjax.analysis import diffusion
    from glassjax.units import KB

    data = _read_two_columns(args.table)
    T, D = data[:, 0], data[:, 1]
    fit = diffusion.arrhenius(T, D)
    prefix = _prefix(args, "arrhenius")
    _write_csv(_suffix(prefix, ".csv"), ["T_K", "D", "D_fit"],
               zip(T, D, fit["D0"] * np.exp(-fit["Ea"] / (KB * T))),
               [f"Ea = {fit['Ea']:.6g} +- {fit['Ea_stderr']:.2g} eV, D0 = {fit['D0']:.6g} (D = D0 exp(-Ea/kT))"])
    plt = _plt()
    fig, axp = plt.subplots(figsize=(5, 4))
    x = 1000.0 / T
    axp.semilogy(x, D, "o", label="data")
    xs = np.linspace(x.min(), x.max(), 50)
    axp.semilogy(xs, fit["D0"] * np.exp(-fit["Ea"] / (KB * 1000.0 / xs)), "r--", label=f"Ea = {fit['Ea']:.3f} eV")
    axp.set_xlabel("1000 / T (1/K)")
    axp.set_ylabel("D")
    axp.legend(fontsize=8)
    _save_fig(fig, _suffix(prefix, ".png"))
    print(f"Ea = {fit['Ea']:.4f} +- {fit['Ea_stderr']:.2g} eV")
    _done(prefix)
    return 0


# ----------------------------------------------------------------------------- tg

def _cmd_tg(args) -> int:
    from glassjax.analysis import tg

    runs = []
    for p in args.tables:
        data = _read_table(p, args.delimiter)
        if data.shape[1] <= max(args.t_col, args.e_col):
            raise DataError(p, f"has {data.shape[1]} columns; --t-col {args.t_col} / --e-col {args.e_col} do not exist")
        runs.append((data[:, args.t_col], data[:, args.e_col]))
    t_range = (args.t_lo, args.t_hi) if args.t_lo is not None or args.t_hi is not None else None
    if t_range is not None:
        t_range = (-np.inf if args.t_lo is None else args.t_lo, np.inf if args.t_hi is None else args.t_hi)
    res = tg.fit_tg_runs(runs, t_range=t_range)
    prefix = _prefix(args, "tg")
    rows = [[p, f["Tg"], f["slope_glass"], f["slope_liquid"], f["n"]] for p, f in zip(args.tables, res["fits"])]
    _write_csv(_suffix(prefix, ".csv"), ["run", "Tg_K", "slope_glass", "slope_liquid", "points"], rows,
               [f"Tg = {res['Tg']:.6g} +- {res['Tg_std']:.3g} K (mean and std over {len(runs)} runs; "
                "two-line fit, break point optimised)"])
    plt = _plt()
    fig, axp = plt.subplots(figsize=(5.5, 4))
    for (T, y), f, p in zip(runs, res["fits"], args.tables):
        line, = axp.plot(T, y, ".", ms=3, label=Path(p).name)
        ts = np.linspace(np.min(T), np.max(T), 200)
        axp.plot(ts, tg.hinge_curve(ts, f), "-", color=line.get_color(), lw=0.8)
        axp.axvline(f["Tg"], color=line.get_color(), ls=":", lw=0.8)
    axp.set_xlabel("T (K)")
    axp.set_ylabel("potential energy")
    axp.set_title(f"Tg = {res['Tg']:.0f} ± {res['Tg_std']:.0f} K" if len(runs) > 1 else f"Tg = {res['Tg']:.0f} K")
    axp.legend(fontsize=7)
    _save_fig(fig, _suffix(prefix, ".png"))
    print(f"Tg = {res['Tg']:.1f} K" + (f" +- {res['Tg_std']:.1f} K" if len(runs) > 1 else ""))
    _done(prefix)
    return 0


# ----------------------------------------------------------------------------- force histograms

def _cmd_force_hist(args) -> int:
    from glassjax.analysis import force_hist

    frames = _read(args.traj, args)
    if frames.forces is None:
        raise DataError(args.traj, "the file carries no forces", hint="write forces with the trajectory (extxyz)")
    cls = force_hist.boron_classes(frames, cutoffs=args.cutoffs)
    edges = np.linspace(0.0 if not args.signed else -args.f_max, args.f_max, args.bins + 1)
    out = force_hist.force_histograms(frames.forces, cls, axis=args.axis, edges=edges, absolute=not args.signed)
    prefix = _prefix(args, "force_hist")
    header = ["frame", "n_3B", "n_4B", "mean_3B_eV_A", "mean_4B_eV_A"]
    rows = [[f, int(out["n"][f, 0]), int(out["n"][f, 1]), out["mean"][f, 0], out["mean"][f, 1]]
            for f in range(frames.nframes)]
    _write_csv(_suffix(prefix, ".csv"), header, rows,
               [f"{'signed' if args.signed else 'absolute'} force along {args.axis} on B atoms (eV/A); "
                "3B/4B per frame from the B-O cutoff"])
    hist_rows = [[edges[k], edges[k + 1], int(out["counts"][:, 0, k].sum()), int(out["counts"][:, 1, k].sum())]
                 for k in range(args.bins)]
    _write_csv(_suffix(prefix, "_hist.csv"), ["f_lo", "f_hi", "count_3B", "count_4B"], hist_rows,
               ["histogram summed over all frames"])
    plt = _plt()
    fig, axp = plt.subplots(figsize=(5.5, 4))
    centres = 0.5 * (edges[1:] + edges[:-1])
    for c, nm in enumerate(force_hist.BORON_CLASSES):
        tot = out["counts"][:, c].sum(axis=0)
        if tot.sum() > 0:
            axp.step(centres, tot / tot.sum(), where="mid", label=f"{nm} (mean {np.nanmean(out['mean'][:, c]):.3f})")
    axp.set_xlabel(f"{'' if args.signed else '|'}F$_{args.axis}${'' if args.signed else '|'} on B (eV/Å)")
    axp.set_ylabel("fraction")
    axp.legend(fontsize=8)
    _save_fig(fig, _suffix(prefix, ".png"))
    _done(prefix)
    return 0


# ----------------------------------------------------------------------------- registration

def _cutoff_arg(p):
    p.add_argument("--cutoff-pair", dest="cutoffs", action="append", default=None, metavar="A-B=R",
                   help="bond cutoff in Å, e.g. B-O=2.0 (repeatable; defaults for the rest)")


def register_analyses(subparsers) -> None:
    """Add strain, rdf, sq, msd, arrhenius, tg and force-hist to ``glassjax analyze``."""
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = subparsers.add_parser("strain", formatter_class=fmt,
                              help="local deformation gradient / strain per atom class (2024 paper)")
    p.add_argument("ref", help="reference structure (zero strain)")
    p.add_argument("traj", help="deformed frames (same atoms, same order)")
    _common(p)
    p.add_argument("--ref-index", default=0, help="frame of REF used as reference")
    p.add_argument("--h", type=float, default=4.0, help="Gaussian width h, Å (w = exp(-r^2/h^2))")
    p.add_argument("--cutoff", type=float, default=None, help="neighbour cutoff, Å (default 2.5 h)")
    p.add_argument("--weighting", choices=("gaussian", "uniform"), default="gaussian",
                   help="uniform = hard cutoff (Falk-Langer / OVITO atomic strain)")
    p.add_argument("--include-li", action="store_true", help="keep Li in the support (the paper excludes it)")
    p.add_argument("--axis", choices=("x", "y", "z"), default="z", help="deformation axis for the figure")
    p.add_argument("--classes", default=None,
                   help="file with one class label per atom (default: B3r/B3n/B4r/B4n/Or/On/Sir/Sin from the "
                        "reference's coordination and 3-rings)")
    _cutoff_arg(p)
    p.set_defaults(func=_cmd_strain)

    for name, fn, hlp in (("rdf", _cmd_rdf, "partial and total g(r)"),
                          ("sq", _cmd_sq, "neutron S(q), Faber-Ziman with a Lorch window, and partial S(q)")):
        p = subparsers.add_parser(name, formatter_class=fmt, help=hlp)
        p.add_argument("traj", help="trajectory or structure file")
        _common(p)
        p.add_argument("--r-max", type=float, default=10.0, help="largest r, Å (also the Lorch length)")
        p.add_argument("--bins", type=int, default=400 if name == "rdf" else 1000, help="number of r bins")
        if name == "sq":
            p.add_argument("--q-min", type=float, default=0.3, help="1/Å")
            p.add_argument("--q-max", type=float, default=20.0, help="1/Å")
            p.add_argument("--nq", type=int, default=400, help="number of q points")
            p.add_argument("--isotope", action="append", default=None, metavar="EL=ISO",
                           help="isotope choice, e.g. B=11B, Li=7Li (repeatable)")
            p.add_argument("--no-lorch", action="store_true", help="no Lorch window")
            p.add_argument("--experiment", default=None, help="two-column file (q, S) to overlay")
        p.set_defaults(func=fn)

    p = subparsers.add_parser("msd", formatter_class=fmt,
                              help="mean-square displacement, D and Nernst-Einstein conductivity")
    p.add_argument("traj", help="trajectory with equally spaced frames")
    _common(p)
    p.add_argument("--dt", type=float, required=True, help="time between saved frames, ps")
    p.add_argument("--species", default="Li", help="element whose MSD is computed")
    p.add_argument("--t-min", type=float, default=None, help="fit window start, ps (paper: 50)")
    p.add_argument("--t-max", type=float, default=None, help="fit window end, ps (paper: 150)")
    p.add_argument("--temperature", type=float, default=None, help="K, for the Nernst-Einstein conductivity")
    p.add_argument("--charge", type=float, default=1.0, help="ion charge in e")
    p.set_defaults(func=_cmd_msd)

    p = subparsers.add_parser("arrhenius", formatter_class=fmt, help="activation energy from D at several T")
    p.add_argument("table", help="two columns: T (K) and D (any unit)")
    p.add_argument("-o", "--output", default=None, help="output prefix")
    p.set_defaults(func=_cmd_arrhenius)

    p = subparsers.add_parser("tg", formatter_class=fmt, help="Tg from the fold of potential energy vs T")
    p.add_argument("tables", nargs="+", help="one numeric table per run (e.g. a thermo log)")
    p.add_argument("-o", "--output", default=None, help="output prefix")
    p.add_argument("--t-col", type=int, default=0, help="temperature column (0-based)")
    p.add_argument("--e-col", type=int, default=1, help="energy (or volume) column (0-based)")
    p.add_argument("--delimiter", default=None, help="column delimiter (default: whitespace)")
    p.add_argument("--t-lo", type=float, default=None, help="fit only T >= this, K")
    p.add_argument("--t-hi", type=float, default=None, help="fit only T <= this, K")
    p.set_defaults(func=_cmd_tg)

    p = subparsers.add_parser("force-hist", formatter_class=fmt,
                              help="histograms of forces on B along the deformation axis, 3B vs 4B")
    p.add_argument("traj", help="trajectory with forces")
    _common(p)
    p.add_argument("--axis", choices=("x", "y", "z"), default="z", help="deformation axis")
    p.add_argument("--bins", type=int, default=50, help="number of bins")
    p.add_argument("--f-max", type=float, default=5.0, help="histogram range, eV/Å")
    p.add_argument("--signed", action="store_true", help="signed component instead of the absolute value")
    _cutoff_arg(p)
    p.set_defaults(func=_cmd_force_hist)
