#!/usr/bin/env python
"""Build small se_e2_a models with DeePMD-kit and record DeePMD-kit's own outputs on them.

This script runs in the DeePMD-kit virtual environment (deepmd-kit 3.2.0 built against the
local CPU torch; see docs/deepmd_kit_peer.md), NOT in glassjax's environment:

    /tmp/dpvenv/bin/python tests/data/deepmd_models/make_references.py

What it does (everything below is DeePMD-kit's code; this script only drives it):

1. For every model in MODELS, build an se_e2_a energy model from a config dict with
   ``deepmd.dpmodel.model.model.get_model`` (no training), overwrite its network weights
   with seeded random values (w, b and, with resnet_dt, idt), set non-zero ``out_bias``
   (atomic model) and ``bias_atom_e`` (fitting net), and compute the environment-matrix
   statistics davg/dstd with DeePMD-kit's own ``compute_input_stats`` on the structures
   named in ``stats_from``. Save it as ``<model>.dp`` with ``save_dp_model``.
2. Convert each ``.dp`` to a TorchScript ``.pth`` in a temporary folder with
   ``deepmd.entrypoints.convert_backend.convert_backend`` (what ``dp convert-backend`` runs).
3. For every case (model, structure): evaluate energy, per-atom energy, forces and virial
   with ``deepmd.infer.DeepPot`` on the ``.pth`` (PyTorch backend), the energy again with
   ``DeepPot`` on the ``.dp`` (numpy "dpmodel" backend), and the descriptor with the numpy
   descriptor on DeePMD-kit's own extended coordinates and neighbour list.
4. Check the references: numpy vs PyTorch energies, PyTorch vs numpy descriptor, forces vs
   a central finite difference of the PyTorch energy (a subset of atoms) and the virial vs
   a finite difference under homogeneous strain. The largest deviations go into index.json.
5. Write one ``<model>__<structure>.npz`` per case and ``index.json`` (atomically).

The B2O3 DFT frames from ../shared/fixtures have no licence: for those cases neither
positions, cell nor atom types are stored, only ``b2o3_system`` and ``b2o3_frame`` (the
test reads the frame in place) and DeePMD-kit's outputs for our random model.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "benchmarks" / "deepmd_peer"))
from structures import cell_volume_for_density, random_glass_cell, random_packing  # noqa: E402

FIXTURES = Path(os.environ.get("GLASSJAX_FIXTURES", REPO.parent / "shared" / "fixtures"))
B2O3_ROOT = FIXTURES / "deepmd_npy" / "b2o3_boroxol_jncasr"

LBS = ["Li", "B", "Si", "O"]

# ---------------------------------------------------------------------------------------
# Structures we may ship (generated here from a seed; positions are stored in the npz).
# ---------------------------------------------------------------------------------------


def _lbs_small_cubic():
    # 4 Li2O + 4 B2O3 + 4 SiO2: 44 atoms, cube of 7.7 Å (rcut < L < 2 rcut)
    return random_glass_cell({"Li": 8, "B": 8, "Si": 4, "O": 24}, 2.3, seed=11)


def _lbs_cubic():
    # 110 atoms, cube of about 10.4 Å (> 2 rcut for every model here)
    return random_glass_cell({"Li": 20, "B": 20, "Si": 10, "O": 60}, 2.3, seed=12)


def _lbs_triclinic():
    # general triclinic cell (no axis-aligned vector) with a third of the atoms unwrapped
    shape = np.array([[1.0, 0.05, -0.12], [0.31, 0.93, 0.08], [-0.22, 0.27, 1.05]])
    at = random_glass_cell({"Li": 10, "B": 10, "Si": 6, "O": 32}, 2.3, seed=13, shape=shape)
    rng = np.random.default_rng(113)
    pos = at.get_positions()
    sel = rng.random(len(at)) < 0.35
    shifts = rng.integers(-2, 3, size=(len(at), 3)) * sel[:, None]
    at.set_positions(pos + shifts @ at.cell.array)
    return at


def _lb_thin():
    # Li2O.2B2O3 (no Si: an empty type section) in a cell only 4.6 Å thick along a
    # (thinner than rcut: every atom sees its own periodic images)
    counts = {"Li": 6, "B": 12, "O": 21}
    vol = cell_volume_for_density(counts, 2.2)
    a = 4.6
    bc = np.sqrt(vol / a)
    cell = np.array([[a, 0.0, 0.0], [0.0, bc * 0.95, 0.0], [0.0, 0.4, bc / 0.95]])
    cell *= (vol / abs(np.linalg.det(cell))) ** (1 / 3)
    return random_packing(counts, cell, seed=14)


def _bo_random():
    # B2O3, 20 B + 30 O at 1.85 g/cm^3 (the B2O3 model's shippable structure)
    return random_glass_cell({"B": 20, "O": 30}, 1.85, seed=15)


STRUCTURES = {
    "lbs_small_cubic": _lbs_small_cubic,
    "lbs_cubic": _lbs_cubic,
    "lbs_triclinic": _lbs_triclinic,
    "lb_thin": _lb_thin,
    "bo_random": _bo_random,
}

# Real B2O3 frames read in place (never copied): name -> (system under b2o3_boroxol_jncasr, frame)
B2O3_FRAMES = {
    "b2o3_glass_f0": ("glass_300K_1GPa_NPT/val", 0),
    "b2o3_glass_f3": ("glass_300K_1GPa_NPT/val", 3),
    "b2o3_liquid_f0": ("liquid_3000K_1GPa_NPT/val", 0),
    "b2o3_alpha_f1": ("alpha_crystal_NVT/val", 1),  # type_map "O B", hexagonal cell
}

# ---------------------------------------------------------------------------------------
# Models. Sizes are small on purpose; the embedding/fitting widths exercise both residual
# rules of DeePMD-kit's layers (out == in: y = x + f(x); out == 2 in: y = [x, x] + f(x)).
# ---------------------------------------------------------------------------------------


def _config(type_map, rcut, rcut_smth, sel, emb, emb_rdt, tos, fit, fit_rdt, axis=4):
    return {
        "type_map": list(type_map),
        "descriptor": {
            "type": "se_e2_a",
            "rcut": rcut,
            "rcut_smth": rcut_smth,
            "sel": list(sel),
            "neuron": list(emb),
            "axis_neuron": axis,
            "resnet_dt": emb_rdt,
            "type_one_side": tos,
            "activation_function": "tanh",
            "precision": "float64",
            "seed": 1,
        },
        "fitting_net": {
            "type": "ener",
            "neuron": list(fit),
            "resnet_dt": fit_rdt,
            "activation_function": "tanh",
            "precision": "float64",
            "seed": 2,
        },
    }


LBS_STATS = ["lbs_cubic", "lbs_small_cubic"]
SEL_FULL = [20, 28, 14, 46]  # larger than any per-type count within 5 Å in these cells

MODELS = {
    # type_one_side true, resnet_dt on in both nets; embedding 4->8->16 (doubling skips)
    "lbs_tos_rdt": dict(
        config=_config(LBS, 5.0, 4.0, SEL_FULL, [4, 8, 16], True, True, [8, 8], True),
        seed=101, stats_from=LBS_STATS, structures=["lbs_small_cubic", "lbs_cubic", "lbs_triclinic", "lb_thin"]),
    # type_one_side false (DeePMD-kit's default), no resnet_dt; embedding 4->4->8
    # (identity then doubling skip), fitting 8->16 (doubling skip in the fitting net)
    "lbs_pair_nordt": dict(
        config=_config(LBS, 4.5, 3.6, [16, 22, 12, 38], [4, 4, 8], False, False, [8, 16], False),
        seed=102, stats_from=LBS_STATS, structures=["lbs_small_cubic", "lbs_cubic", "lbs_triclinic", "lb_thin"]),
    # type_one_side false, resnet_dt on in the embedding net only; 3 embedding layers
    "lbs_pair_embrdt": dict(
        config=_config(LBS, 5.0, 4.3, SEL_FULL, [4, 8, 16], True, False, [8, 8], False, axis=3),
        seed=103, stats_from=LBS_STATS, structures=["lbs_small_cubic", "lbs_cubic", "lbs_triclinic", "lb_thin"]),
    # type_one_side true, resnet_dt on in the fitting net only; 3 fitting layers 8->8->16
    "lbs_tos_fitrdt": dict(
        config=_config(LBS, 5.0, 4.5, SEL_FULL, [4, 8, 8], False, True, [8, 8, 16], True),
        seed=104, stats_from=LBS_STATS, structures=["lbs_small_cubic", "lbs_cubic", "lbs_triclinic", "lb_thin"]),
    # sel smaller than the neighbour counts: DeePMD-kit truncates (see README, "sel truncation")
    "lbs_pair_smallsel": dict(
        config=_config(LBS, 5.0, 4.0, [3, 4, 2, 9], [4, 8, 16], True, False, [8, 8], True),
        seed=105, stats_from=LBS_STATS, structures=["lbs_small_cubic", "lbs_cubic", "lbs_triclinic", "lb_thin"]),
    # B2O3: type_map B, O (the amorphous/liquid fixture order; the crystals use O, B)
    "bo_pair_rdt": dict(
        config=_config(["B", "O"], 5.0, 4.2, [32, 54], [4, 8, 16], True, False, [8, 8], True),
        seed=106, stats_from=["bo_random"], structures=["bo_random", *B2O3_FRAMES]),
}


# ---------------------------------------------------------------------------------------


def build_model(name: str, spec: dict, structures: dict):
    """Build, randomise and return (dpmodel EnergyModel, serialized data dict)."""
    from deepmd.dpmodel.model.model import get_model

    cfg = copy.deepcopy(spec["config"])
    model = get_model(copy.deepcopy(cfg))
    type_map = cfg["type_map"]
    # environment statistics by DeePMD-kit itself from the named (shippable) structures
    stat_data = []
    for sname in spec["stats_from"]:
        at = structures[sname]
        atype = np.array([type_map.index(s) for s in at.get_chemical_symbols()], dtype=np.int64)
        stat_data.append({
            "coord": at.get_positions()[None].astype(np.float64),
            "atype": atype[None],
            "box": at.cell.array.reshape(1, 3, 3).astype(np.float64),
            "natoms": np.array([[len(at), len(at)] + [int((atype == t).sum()) for t in range(len(type_map))]]),
        })
    model.atomic_model.descriptor.compute_input_stats(stat_data)

    data = model.serialize()
    rng = np.random.default_rng(spec["seed"])

    def randomise_net(net):
        for layer in net["layers"]:
            v = layer["@variables"]
            nin, nout = v["w"].shape
            v["w"] = rng.normal(0.0, 1.0 / np.sqrt(nin + nout), size=(nin, nout))
            if v.get("b") is not None:
                v["b"] = rng.normal(0.0, 0.5, size=v["b"].shape)
            if v.get("idt") is not None:
                v["idt"] = rng.uniform(0.2, 1.0, size=v["idt"].shape)

    for net in data["descriptor"]["embeddings"]["networks"]:
        if net is not None and net.get("layers"):
            randomise_net(net)
    for net in data["fitting"]["nets"]["networks"]:
        randomise_net(net)
    nt = len(type_map)
    fv = data["fitting"]["@variables"]
    fv["bias_atom_e"] = rng.normal(0.0, 1.0, size=fv["bias_atom_e"].shape)
    av = data["@variables"]
    av["out_bias"] = rng.normal(-5.0, 2.0, size=av["out_bias"].shape)
    # out_std is part of the file but DeePMD-kit does not use it for energies
    av["out_std"] = rng.uniform(0.5, 2.0, size=av["out_std"].shape)
    assert av["out_bias"].shape == (1, nt, 1)
    # round-trip through DeePMD-kit's deserializer so the file is exactly what it reads
    from deepmd.dpmodel.model.base_model import BaseModel

    model = BaseModel.deserialize(data)
    # Scale the first fitting layer so its pre-activations are O(1) on these structures
    # (the descriptor entries are ~1e-2, which would leave forces ~1e-2 eV/Å and make
    # a 1e-8 eV/Å parity test weak): w1 <- N(0, 1) / (sqrt(D) * std(descriptor)).
    desc = np.concatenate([
        descriptor_numpy(model, structures[s].get_positions(),
                         np.array([type_map.index(x) for x in structures[s].get_chemical_symbols()]),
                         structures[s].cell.array)[0]
        for s in spec["stats_from"]])
    dim = desc.shape[1]
    for net in data["fitting"]["nets"]["networks"]:
        w = net["layers"][0]["@variables"]["w"]
        net["layers"][0]["@variables"]["w"] = rng.normal(0.0, 1.0, size=w.shape) / (np.sqrt(dim) * desc.std())
    model = BaseModel.deserialize(data)
    return model, model.serialize(), cfg


def save_dp(path: Path, model_dict: dict, cfg: dict) -> None:
    """Write ``path`` (.dp) with DeePMD-kit's own writer, atomically (temporary sibling + rename)."""
    from deepmd.dpmodel.utils.serialization import save_dp_model

    tmp = path.with_name(f".tmp_{path.stem}.dp")
    try:
        save_dp_model(str(tmp), {"backend": "DPModel", "model": model_dict,
                                 "model_def_script": cfg, "@variables": {}})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_b2o3_frame(system: str, frame: int, type_map):
    d = B2O3_ROOT / system
    tm = open(d / "type_map.raw").read().split()
    types = np.loadtxt(d / "type.raw", dtype=int).reshape(-1)
    species = np.array([tm[t] for t in types])
    coord = np.load(d / "set.000" / "coord.npy")[frame].reshape(-1, 3)
    box = np.load(d / "set.000" / "box.npy")[frame].reshape(3, 3)
    atype = np.array([type_map.index(s) for s in species])
    return species, atype, coord, box, tm


def descriptor_numpy(model, coord, atype, cell):
    """DeePMD-kit's numpy descriptor (N, D) on its own extended region and neighbour list."""
    from deepmd.dpmodel.utils.nlist import extend_input_and_build_neighbor_list

    desc = model.atomic_model.descriptor
    ext_coord, ext_atype, mapping, nlist = extend_input_and_build_neighbor_list(
        coord[None], atype[None], desc.get_rcut(), desc.get_sel(),
        mixed_types=desc.mixed_types(), box=cell[None])
    out = desc.call(ext_coord, ext_atype, nlist, mapping)
    nlist = np.asarray(nlist)[0]
    return np.asarray(out[0])[0], nlist


def neighbour_counts(coord, atype, cell, rcut, ntypes):
    """Neighbours within rcut (periodic images included), brute force.

    Returns (max per type (T,), max total, min distance, per-atom per-type counts (N, T)).
    """
    inv = np.linalg.inv(cell)
    h = 1.0 / np.linalg.norm(inv, axis=0)
    n = np.ceil(rcut / h).astype(int) + 1
    sh = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in n], indexing="ij"), -1).reshape(-1, 3) @ cell
    frac = coord @ inv
    frac -= np.floor(frac)
    pos = frac @ cell
    d = pos[None, :, None, :] - pos[:, None, None, :] + sh[None, None, :, :]
    r = np.linalg.norm(d, axis=-1)
    inside = (r < rcut) & (r > 1e-8)
    cnt = inside.sum(axis=2)  # (N, N)
    per_type = np.stack([cnt[:, atype == t].sum(axis=1) for t in range(ntypes)], axis=1)
    return per_type.max(axis=0), per_type.sum(axis=1).max(), float(r[r > 1e-8].min()), per_type


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--out", default=str(HERE), help="output folder (default: this folder)")
    ap.add_argument("--fd-atoms", type=int, default=4, help="atoms checked by finite differences per case")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import deepmd
    import torch
    from deepmd.entrypoints.convert_backend import convert_backend
    from deepmd.infer import DeepPot

    torch.set_num_threads(2)
    structures = {k: f() for k, f in STRUCTURES.items()}
    index = {
        "generator": "tests/data/deepmd_models/make_references.py",
        "deepmd_kit_version": deepmd.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "units": {"energy": "eV", "forces": "eV/Angstrom", "virial": "eV (extensive, DeePMD sign)",
                  "positions": "Angstrom", "cell": "Angstrom, rows are cell vectors"},
        "models": {},
        "structures": {},
        "cases": [],
    }
    for sname, at in structures.items():
        index["structures"][sname] = {
            "natoms": len(at), "formula": at.get_chemical_formula(),
            "cell_lengths_angles": [round(float(x), 4) for x in at.cell.cellpar()],
            "shippable": True}
    for sname, (system, frame) in B2O3_FRAMES.items():
        index["structures"][sname] = {"b2o3_system": system, "b2o3_frame": frame, "shippable": False,
                                      "note": "read in place from ../shared/fixtures/deepmd_npy/b2o3_boroxol_jncasr"}

    with tempfile.TemporaryDirectory() as td:
        for mname, spec in MODELS.items():
            model, mdict, cfg = build_model(mname, spec, structures)
            dp_path = out / f"{mname}.dp"
            save_dp(dp_path, mdict, cfg)
            pth = Path(td) / f"{mname}.pth"
            convert_backend(INPUT=str(dp_path), OUTPUT=str(pth))
            dp_pt = DeepPot(str(pth))
            dp_np = DeepPot(str(dp_path))
            type_map = cfg["type_map"]
            dcfg = cfg["descriptor"]
            index["models"][mname] = {
                "file": dp_path.name, "size_bytes": dp_path.stat().st_size,
                "type_map": type_map,
                "rcut": dcfg["rcut"], "rcut_smth": dcfg["rcut_smth"], "sel": dcfg["sel"],
                "embedding_neuron": dcfg["neuron"], "axis_neuron": dcfg["axis_neuron"],
                "type_one_side": dcfg["type_one_side"], "embedding_resnet_dt": dcfg["resnet_dt"],
                "fitting_neuron": cfg["fitting_net"]["neuron"],
                "fitting_resnet_dt": cfg["fitting_net"]["resnet_dt"],
                "descriptor_dim": int(dcfg["neuron"][-1] * dcfg["axis_neuron"]),
                "stats_from": spec["stats_from"],
                "weights_seed": spec["seed"],
            }
            for sname in spec["structures"]:
                rec = {"model": dp_path.name, "type_map": np.array(type_map)}
                if sname in structures:
                    at = structures[sname]
                    species = np.array(at.get_chemical_symbols())
                    atype = np.array([type_map.index(s) for s in species])
                    coord, cell = at.get_positions(), at.cell.array.copy()
                    rec.update(species=species, atype=atype, positions=coord, cell=cell)
                else:
                    system, frame = B2O3_FRAMES[sname]
                    species, atype, coord, cell, fixture_tm = load_b2o3_frame(system, frame, type_map)
                    rec.update(b2o3_system=np.array(system), b2o3_frame=np.array(frame),
                               b2o3_type_map=np.array(fixture_tm), natoms=np.array(len(atype)))
                n = len(atype)
                e, f, v, ae, av = dp_pt.eval(coord[None], cell.reshape(1, 9), atype, atomic=True)
                e_np = dp_np.eval(coord[None], cell.reshape(1, 9), atype, atomic=False)[0]
                desc_np, nlist = descriptor_numpy(model, coord, atype, cell)
                desc_pt = dp_pt.eval_descriptor(coord[None], cell.reshape(1, 9), atype)[0]
                rec.update(energy=np.array(float(e.ravel()[0])), atom_energy=ae.reshape(n),
                           forces=f.reshape(n, 3), virial=v.reshape(3, 3))
                if sname in structures:  # (kept out of the B2O3 cases to keep the files small)
                    rec["descriptor"] = desc_np

                # ---- checks ----
                rng = np.random.default_rng(7)
                h = 1e-5
                atoms_fd = rng.choice(n, size=min(args.fd_atoms, n), replace=False)
                frames = []
                for i in atoms_fd:
                    for a in range(3):
                        for s in (1, -1):
                            c = coord.copy()
                            c[i, a] += s * h
                            frames.append((c, cell))
                for a in range(3):
                    for b in range(3):
                        for s in (1, -1):
                            eps = np.eye(3)
                            eps[a, b] += s * h
                            frames.append((coord @ eps, cell @ eps))
                cs = np.stack([c for c, _ in frames])
                bs = np.stack([b.reshape(9) for _, b in frames])
                ef = dp_pt.eval(cs, bs, atype)[0].ravel()
                k = 0
                f_fd = np.zeros((len(atoms_fd), 3))
                for j in range(len(atoms_fd)):
                    for a in range(3):
                        f_fd[j, a] = -(ef[k] - ef[k + 1]) / (2 * h)
                        k += 2
                w_fd = np.zeros((3, 3))
                for a in range(3):
                    for b in range(3):
                        w_fd[a, b] = -(ef[k] - ef[k + 1]) / (2 * h)
                        k += 2
                fmax_nl, nmax, rmin, per_type = neighbour_counts(coord, atype, cell, dcfg["rcut"], len(type_map))
                # DeePMD-kit v3 keeps the sum(sel) nearest neighbours of any type, then at most
                # sel[t] of them per type: count the atoms whose type section holds fewer
                # neighbours than min(sel[t], neighbours of type t within rcut)
                sec = np.concatenate([[0], np.cumsum(dcfg["sel"])])
                filled = np.stack([(nlist[:, sec[t]:sec[t + 1]] >= 0).sum(1) for t in range(len(type_map))], 1)
                underfilled = int(np.any(filled < np.minimum(per_type, np.array(dcfg["sel"])), axis=1).sum())
                checks = {
                    "energy_pt_minus_numpy": float(abs(e.ravel()[0] - e_np.ravel()[0])),
                    "energy_minus_sum_atom_energy": float(abs(e.ravel()[0] - ae.sum())),
                    "descriptor_pt_minus_numpy": float(np.abs(desc_pt.reshape(desc_np.shape) - desc_np).max()),
                    "forces_minus_fd_max": float(np.abs(f.reshape(n, 3)[atoms_fd] - f_fd).max()),
                    "virial_minus_fd_max": float(np.abs(v.reshape(3, 3) - w_fd).max()),
                    "sum_forces_max": float(np.abs(f.reshape(n, 3).sum(0)).max()),
                }
                truncated = bool(np.any(fmax_nl > np.array(dcfg["sel"])) or nmax > sum(dcfg["sel"]))
                case = {
                    "file": f"{mname}__{sname}.npz", "model": mname, "structure": sname,
                    "natoms": int(n), "energy": float(e.ravel()[0]),
                    "max_neighbours_per_type": [int(x) for x in fmax_nl],
                    "max_neighbours_total": int(nmax), "min_distance": round(rmin, 4),
                    "sel_truncates": truncated,
                    "atoms_with_underfilled_type_sections": underfilled,
                    "needs_b2o3_fixture": sname not in structures,
                    "checks": checks,
                }
                print(f"{mname:18s} {sname:16s} N={n:4d} E={case['energy']: .10f} "
                      + " ".join(f"{kk}={vv:.1e}" for kk, vv in checks.items())
                      + (" TRUNCATED" if truncated else ""), flush=True)
                tol = {"energy_pt_minus_numpy": 1e-10 * n, "energy_minus_sum_atom_energy": 1e-10 * n,
                       "descriptor_pt_minus_numpy": 1e-10, "forces_minus_fd_max": 1e-6,
                       "virial_minus_fd_max": 1e-5 * max(1.0, np.abs(v).max()),
                       "sum_forces_max": 1e-9 * n}
                bad = {kk: vv for kk, vv in checks.items() if not vv <= tol[kk]}
                if bad:
                    raise SystemExit(f"reference check failed for {mname}/{sname}: {bad}")
                if mname == "lbs_pair_smallsel" and not truncated:
                    raise SystemExit(f"{mname}/{sname} was meant to truncate but does not")
                if mname != "lbs_pair_smallsel" and truncated:
                    raise SystemExit(f"{mname}/{sname}: sel too small for the structure")
                npz = out / case["file"]
                with tempfile.NamedTemporaryFile(dir=out, prefix=".tmp_", suffix=".npz", delete=False) as tf:
                    np.savez(tf, **rec)
                os.chmod(tf.name, 0o644)
                os.replace(tf.name, npz)
                index["cases"].append(case)

    with tempfile.NamedTemporaryFile("w", dir=out, prefix=".tmp_", suffix=".json", delete=False) as tf:
        json.dump(index, tf, indent=1)
        tf.write("\n")
    os.chmod(tf.name, 0o644)
    os.replace(tf.name, out / "index.json")
    print(f"wrote {len(index['cases'])} cases and {len(index['models'])} models to {out}")


if __name__ == "__main__":
    main()
