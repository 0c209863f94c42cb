#!/usr/bin/env python
"""Check the reference data in this folder with an independent plain-numpy se_e2_a energy.

Runs in glassjax's environment (numpy + h5py only, no DeePMD-kit, no JAX):

    python tests/data/deepmd_models/check_references.py [--forces]

It reads every ``.dp`` file as documented in README.md (HDF5, root attribute ``json``,
arrays as datasets named by path under ``@variables``), evaluates the se_e2_a descriptor
and energy exactly as README.md describes them, and compares with what DeePMD-kit wrote
into each ``<model>__<structure>.npz``: descriptor, per-atom energies and total energy;
with ``--forces`` also the forces of a few atoms by central finite differences of this
energy. It also recomputes every model's davg/dstd from the structures DeePMD-kit took
them from (``stats_from`` in index.json). Its purpose is to show that README.md's description of the model is complete
(every term, the neighbour selection and the padding rule): if this script agrees with
DeePMD-kit to round-off, an implementation that follows README.md will too.

It is a data check for the maintainers of this folder, not part of the test suite and not
glassjax's implementation (that is glassjax/model/).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
B2O3_ROOT = REPO.parent / "shared" / "fixtures" / "deepmd_npy" / "b2o3_boroxol_jncasr"


def load_dp(path):
    """Model dict of a .dp file with every ``@variables`` entry replaced by its array."""
    with h5py.File(path, "r") as f:
        data = json.loads(f.attrs["json"])

        def resolve(node, in_vars=False):
            if isinstance(node, dict):
                return {k: resolve(v, in_vars or k == "@variables") for k, v in node.items()}
            if isinstance(node, list):
                return [resolve(v, in_vars) for v in node]
            if in_vars and isinstance(node, str):
                return f[node][()]
            return node

        return resolve(data)


def layer(x, lay):
    v = lay["@variables"]
    w, b, idt = v["w"], v.get("b"), v.get("idt")
    y = x @ w + (b if b is not None else 0.0)
    if lay["activation_function"] == "tanh":
        y = np.tanh(y)
    elif lay["activation_function"] not in ("none", "linear"):
        raise NotImplementedError(lay["activation_function"])
    if idt is not None:
        y = y * idt
    if lay["resnet"] and w.shape[1] == w.shape[0]:
        y = y + x
    elif lay["resnet"] and w.shape[1] == 2 * w.shape[0]:
        y = y + np.concatenate([x, x], axis=-1)
    return y


def net(x, n):
    for lay in n["layers"]:
        x = layer(x, lay)
    return x


def neighbour_list(coord, cell, atype, rcut, sel):
    """DeePMD-kit v3 selection: the sum(sel) nearest within rcut, then <= sel[t] per type.

    Returns idx (N, nnei) of neighbour rows in ``ext`` (-1 = empty) and ext (M, 3) positions.
    """
    inv = np.linalg.inv(cell)
    frac = coord @ inv
    frac -= np.floor(frac)
    pos = frac @ cell
    h = 1.0 / np.linalg.norm(inv, axis=0)
    n = np.ceil(rcut / h).astype(int)
    shifts = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in n], indexing="ij"), -1).reshape(-1, 3)
    ext = (pos[None, :, :] + (shifts @ cell)[:, None, :]).reshape(-1, 3)
    ext_type = np.tile(atype, len(shifts))
    zero = int(np.where(np.all(shifts == 0, axis=1))[0][0])
    N = len(coord)
    nsel = sum(sel)
    sec = np.concatenate([[0], np.cumsum(sel)])
    idx = -np.ones((N, nsel), dtype=int)
    for i in range(N):
        r = np.linalg.norm(ext - pos[i], axis=1)
        r[zero * N + i] = np.inf  # the atom itself
        order = np.argsort(r, kind="stable")
        order = order[r[order] <= rcut][:nsel]
        for t in range(len(sel)):
            js = order[ext_type[order] == t][: sel[t]]
            idx[i, sec[t]: sec[t] + len(js)] = js
    return idx, ext, pos


def env_matrix(d, coord, cell, atype):
    """Raw (un-normalised) environment matrix (N, sum(sel), 4); padded slots are zero."""
    rcut, rs, sel = d["rcut"], d["rcut_smth"], d["sel"]
    idx, ext, pos = neighbour_list(coord, cell, atype, rcut, sel)
    valid = idx >= 0
    rij = np.where(valid[..., None], ext[np.maximum(idx, 0)] - pos[:, None, :], 0.0)
    r = np.linalg.norm(rij, axis=-1)
    r_safe = np.where(valid, r, 1.0)
    u = np.clip((r_safe - rs) / (rcut - rs), 0.0, 1.0)
    sw = np.where(valid, 1.0 - 10 * u**3 + 15 * u**4 - 6 * u**5, 0.0)
    return np.concatenate([(1.0 / r_safe)[..., None], rij / r_safe[..., None] ** 2], -1) * sw[..., None]


def env_statistics(d, frames):
    """davg, dstd (T, sum(sel), 4) from [(coord, cell, atype), ...] as README.md describes."""
    ntypes, nsel = len(d["sel"]), sum(d["sel"])
    acc = np.zeros((ntypes, 6))  # n_r, sum_r, sum_r2, n_a, sum_a, sum_a2
    for coord, cell, atype in frames:
        R = env_matrix(d, coord, cell, atype)
        for t in range(ntypes):
            Rt = R[atype == t]
            acc[t] += [Rt[..., 0].size, Rt[..., 0].sum(), (Rt[..., 0] ** 2).sum(),
                       Rt[..., 1:].size, Rt[..., 1:].sum(), (Rt[..., 1:] ** 2).sum()]
    davg = np.zeros((ntypes, nsel, 4))
    dstd = np.zeros((ntypes, nsel, 4))
    for t in range(ntypes):
        n_r, s_r, s_r2, n_a, s_a, s_a2 = acc[t]
        if n_r == 0:
            mean_r, std_r, std_a = 0.0, 0.1, 0.1
        else:
            mean_r = s_r / n_r
            std_r = np.sqrt(max(s_r2 / n_r - mean_r**2, 0.0))
            std_a = np.sqrt(max(s_a2 / n_a - (s_a / n_a) ** 2, 0.0))
        davg[t, :, 0] = mean_r
        dstd[t] = [max(std_r, 1e-2), max(std_a, 1e-2), max(std_a, 1e-2), max(std_a, 1e-2)]
    return davg, dstd


def descriptor_and_energy(model, coord, cell, atype):
    d = model["descriptor"]
    sel = d["sel"]
    ntypes = len(sel)
    davg, dstd = d["@variables"]["davg"], d["@variables"]["dstd"]
    R = env_matrix(d, coord, cell, atype)
    N, nnei = R.shape[:2]
    R = (R - davg[atype]) / dstd[atype]  # padded rows become -davg/dstd
    emb = d["embeddings"]["networks"]
    ng = d["neuron"][-1]
    sec = np.concatenate([[0], np.cumsum(sel)])
    gr = np.zeros((N, ng, 4))
    for t in range(ntypes):
        Rt = R[:, sec[t]:sec[t + 1], :]
        if d["type_one_side"]:
            G = net(Rt[..., :1], emb[t])
        else:
            G = np.zeros(Rt.shape[:2] + (ng,))
            for ti in range(ntypes):
                m = atype == ti
                if m.any():
                    G[m] = net(Rt[m][..., :1], emb[ti + ntypes * t])
        gr += np.einsum("inm,inc->imc", G, Rt)
    gr /= nnei
    D = np.einsum("imc,iac->ima", gr, gr[:, : d["axis_neuron"], :]).reshape(N, -1)
    fit = model["fitting"]
    ae = np.zeros(N)
    for ti in range(ntypes):
        m = atype == ti
        if m.any():
            ae[m] = net(D[m], fit["nets"]["networks"][ti])[:, 0]
    ae += fit["@variables"]["bias_atom_e"][atype, 0]
    ae += model["@variables"]["out_bias"][0, atype, 0]
    return D, ae


def main(argv=None):
    ap = argparse.ArgumentParser(description="check the DeePMD-kit references with plain numpy")
    ap.add_argument("--forces", action="store_true", help="also check a few forces by finite differences")
    ap.add_argument("--folder", default=str(HERE))
    args = ap.parse_args(argv)
    folder = Path(args.folder)
    index = json.loads((folder / "index.json").read_text())
    worst = {"energy_per_atom": 0.0, "atom_energy": 0.0, "descriptor": 0.0, "forces_fd": 0.0}
    models = {}
    for case in index["cases"]:
        ref = np.load(folder / case["file"])
        mfile = str(ref["model"])
        if mfile not in models:
            models[mfile] = load_dp(folder / mfile)["model"]
        model = models[mfile]
        type_map = [str(s) for s in ref["type_map"]]
        if "positions" in ref:
            coord, cell, atype = ref["positions"], ref["cell"], ref["atype"]
        else:
            sysdir = B2O3_ROOT / str(ref["b2o3_system"])
            if not sysdir.is_dir():
                print(f"skip {case['file']}: {sysdir} absent")
                continue
            fr = int(ref["b2o3_frame"])
            tm = (sysdir / "type_map.raw").read_text().split()
            types = np.loadtxt(sysdir / "type.raw", dtype=int).reshape(-1)
            atype = np.array([type_map.index(tm[t]) for t in types])
            coord = np.load(sysdir / "set.000" / "coord.npy")[fr].reshape(-1, 3)
            cell = np.load(sysdir / "set.000" / "box.npy")[fr].reshape(3, 3)
        D, ae = descriptor_and_energy(model, coord, cell, atype)
        n = len(atype)
        errs = {"energy_per_atom": abs(ae.sum() - float(ref["energy"])) / n,
                "atom_energy": float(np.abs(ae - ref["atom_energy"]).max())}
        if "descriptor" in ref:
            errs["descriptor"] = float(np.abs(D - ref["descriptor"]).max())
        if args.forces:
            h, fd = 1e-5, []
            for i in range(min(2, n)):
                for a in range(3):
                    cp, cm = coord.copy(), coord.copy()
                    cp[i, a] += h
                    cm[i, a] -= h
                    fd.append(abs(-(descriptor_and_energy(model, cp, cell, atype)[1].sum()
                                    - descriptor_and_energy(model, cm, cell, atype)[1].sum()) / (2 * h)
                                  - ref["forces"][i, a]))
            errs["forces_fd"] = float(max(fd))
        for k, v in errs.items():
            worst[k] = max(worst[k], v)
        print(f"{case['file']:40s} " + " ".join(f"{k}={v:.1e}" for k, v in errs.items()), flush=True)
    # environment statistics: each model's davg/dstd were computed by DeePMD-kit from the
    # structures in its "stats_from" list; recompute them from those structures
    for mname, minfo in index["models"].items():
        model = models.get(minfo["file"]) or load_dp(folder / minfo["file"])["model"]
        frames = []
        for sname in minfo["stats_from"]:
            z = np.load(folder / f"{mname}__{sname}.npz")
            frames.append((z["positions"], z["cell"], z["atype"]))
        davg, dstd = env_statistics(model["descriptor"], frames)
        v = model["descriptor"]["@variables"]
        err = max(float(np.abs(davg - v["davg"]).max()), float(np.abs(dstd - v["dstd"]).max()))
        worst["env_stats"] = max(worst.get("env_stats", 0.0), err)
        print(f"{mname + '.dp davg/dstd':40s} from {minfo['stats_from']}: max diff {err:.1e}")
    print("worst:", {k: f"{v:.1e}" for k, v in worst.items()})
    ok = worst["energy_per_atom"] < 1e-12 and worst["atom_energy"] < 1e-11 and worst["descriptor"] < 1e-12
    ok = ok and worst["env_stats"] < 1e-12
    ok = ok and (not args.forces or worst["forces_fd"] < 1e-6)
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
