"""Read and write DeePMD-kit v3 ``.dp`` model files (se_e2_a energy models).

Format (DeePMD-kit ``deepmd/dpmodel/utils/serialization.py``): an HDF5 file whose root
attribute ``json`` holds the serialised model dictionary; every array under an
``@variables`` key is replaced by the name of a dataset (``/variable_0000``, ...) holding
it.  ``dp convert-backend model.pth model.dp`` (or ``.pb``) turns TensorFlow and PyTorch
models into this format.  The model lives under the ``model`` key::

    model: {@class: Model, type: standard, type_map, descriptor: {type: se_e2_a, rcut, rcut_smth,
            sel, neuron, axis_neuron, type_one_side, resnet_dt, ..., embeddings: NetworkCollection,
            @variables: {davg (T, S, 4), dstd (T, S, 4)}},
            fitting: {type: ener, neuron, resnet_dt, mixed_types, nets: NetworkCollection,
            @variables: {bias_atom_e (T, 1), ...}}, @variables: {out_bias (1, T, 1), out_std}}

A NetworkCollection stores ``ntypes ** ndim`` networks (``ndim`` 1 for type_one_side
embeddings and per-type fitting nets, 2 for (centre, neighbour) pairs at index
``ti + tt * ntypes``, 0 for one shared net); each network a list of layers with ``w``,
``b`` and optionally ``idt``.

Only what se_e2_a energy models use is supported; anything else (another descriptor,
``exclude_types``, frame/atomic parameters, a compressed model) raises
:class:`glassjax.errors.ModelError` naming the field, rather than being silently ignored.
"""

from __future__ import annotations

import copy
import datetime
import json
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np

from glassjax.atomic_write import atomic_path
from glassjax.errors import ModelError
from glassjax.model.descriptor import DescriptorConfig
from glassjax.model.fitting import FittingConfig
from glassjax.model.networks import layer_has_timestep


# -- generic (de)serialisation of the HDF5 container ------------------------------------

def _resolve(obj, f, is_var=False):
    if isinstance(obj, dict):
        if obj.get("@is_variable", False):
            return obj
        return {k: _resolve(v, f, is_var or k == "@variables") for k, v in obj.items()}
    if isinstance(obj, list):
        return [_resolve(v, f, is_var) for v in obj]
    if obj is None or not is_var:
        return obj
    if isinstance(obj, str):
        return np.array(f[obj][()])
    return obj


def read_dp_dict(path) -> Dict[str, Any]:
    """The full dictionary stored in a ``.dp`` file, arrays resolved to numpy."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    try:
        with h5py.File(path, "r") as f:
            if "json" not in f.attrs:
                raise ModelError(f"{path}: not a DeePMD-kit .dp file (no 'json' attribute at the root)")
            data = json.loads(f.attrs["json"])
            return _resolve(data, f)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read as HDF5 ({exc}); is it a .dp model?") from None


def write_dp_dict(path, data: Dict[str, Any]) -> None:
    """Write a model dictionary as a ``.dp`` file (atomically)."""
    import h5py

    counter = [0]

    def store(f, obj, is_var=False):
        if isinstance(obj, dict):
            return {k: store(f, v, is_var or k == "@variables") for k, v in obj.items()}
        if isinstance(obj, list):
            return [store(f, v, is_var) for v in obj]
        if obj is None or not is_var:
            return obj
        name = f"variable_{counter[0]:04d}"
        counter[0] += 1
        return f.create_dataset(name, data=np.asarray(obj)).name

    with atomic_path(path, suffix=".dp") as tmp:
        with h5py.File(tmp, "w") as f:
            stored = store(f, data)
            f.attrs["json"] = json.dumps(stored, separators=(",", ":"))


# -- se_e2_a energy model <-> glassjax variables ------------------------------------------

def _need(cond, path, what):
    if not cond:
        raise ModelError(f"{path}: {what}")


def _layers_to_params(layers, where, path, activation, resnet_dt, last_linear):
    params = {}
    n_layers = len(layers)
    for i, layer in enumerate(layers):
        v = layer["@variables"]
        w = np.asarray(v["w"])
        b = v.get("b")
        idt = v.get("idt")
        n_in, n_out = w.shape
        is_last = last_linear and i == n_layers - 1
        _need(b is not None, path, f"{where} layer {i} has no bias; glassjax needs bias=True")
        exp_act = "none" if is_last else str(activation).lower()
        got_act = str(layer.get("activation_function") or "none").lower()
        _need(got_act in (exp_act, "linear" if exp_act == "none" else exp_act), path,
              f"{where} layer {i} uses activation {got_act!r}, expected {exp_act!r}")
        _need(bool(layer.get("resnet", not is_last)) == (not is_last), path,
              f"{where} layer {i}: resnet={layer.get('resnet')} differs from DeePMD-kit's rule")
        want_idt = (not is_last) and layer_has_timestep(n_in, n_out, resnet_dt)
        _need((idt is not None) == want_idt, path,
              f"{where} layer {i}: timestep (idt) {'missing' if want_idt else 'unexpected'}")
        p = {"w": w, "b": np.asarray(b).ravel()}
        if idt is not None:
            p["idt"] = np.asarray(idt).ravel()
        params[f"layer_{i}"] = p
    return params


def model_from_dict(data: Dict[str, Any], path="<dict>") -> Tuple[Any, Dict[str, Any]]:
    """``(DeepPotConfig, variables)`` from a DeePMD-kit model dictionary (``data["model"]``)."""
    from glassjax.model.deeppot import DeepPotConfig

    m = data.get("model", data)
    mtype = m.get("type", "standard")
    if mtype == "zbl":
        return _zbl_from_dict(m, path)
    _need(mtype == "standard", path, f"model type {mtype!r} is not supported (only standard and zbl energy models)")
    desc, fit = m.get("descriptor"), m.get("fitting")
    _need(isinstance(desc, dict) and isinstance(fit, dict), path, "model has no descriptor/fitting")
    dtype_name = desc.get("type")
    _need(dtype_name in ("se_e2_a", "se_a"), path,
          f"descriptor type {dtype_name!r} is not supported (only se_e2_a)")
    _need(fit.get("type", "ener") == "ener", path, f"fitting type {fit.get('type')!r} is not supported (only ener)")
    _need(not desc.get("exclude_types"), path, "descriptor exclude_types is not supported")
    _need(not m.get("atom_exclude_types") and not m.get("pair_exclude_types"), path,
          "atom_exclude_types/pair_exclude_types are not supported")
    _need("compress" not in desc, path, "compressed models are not supported: export the uncompressed model")
    _need(not (desc.get("env_mat") or {}).get("use_exp_switch", False), path, "use_exp_switch is not supported")
    for key in ("numb_fparam", "numb_aparam", "dim_case_embd"):
        _need(not fit.get(key), path, f"fitting {key}={fit.get(key)} is not supported")
    _need(not fit.get("exclude_types"), path, "fitting exclude_types is not supported")
    _need(fit.get("spin") is None and desc.get("spin") is None, path, "spin models are not supported")
    type_map = m.get("type_map") or desc.get("type_map")
    _need(type_map, path, "model has no type_map")
    ntypes = len(type_map)
    try:
        dcfg = DescriptorConfig(
            type_map=tuple(type_map), rcut=float(desc["rcut"]), rcut_smth=float(desc["rcut_smth"]),
            sel=tuple(desc["sel"]), neuron=tuple(desc["neuron"]), axis_neuron=int(desc["axis_neuron"]),
            type_one_side=bool(desc.get("type_one_side", True)), resnet_dt=bool(desc.get("resnet_dt", False)),
            activation=str(desc.get("activation_function", "tanh")), switch="quintic",
            env_protection=float(desc.get("env_protection", 0.0)),
            set_davg_zero=bool(desc.get("set_davg_zero", False)),
            precision=str(desc.get("precision", "float64")))
        fcfg = FittingConfig(neuron=tuple(fit["neuron"]), resnet_dt=bool(fit.get("resnet_dt", True)),
                             activation=str(fit.get("activation_function", "tanh")),
                             mixed_types=bool(fit.get("mixed_types", False)),
                             precision=str(fit.get("precision", "float64")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: incomplete se_e2_a model description ({exc})") from None
    cfg = DeepPotConfig(dcfg, fcfg)

    emb = desc["embeddings"]
    ndim = int(emb.get("ndim", 1 if dcfg.type_one_side else 2))
    _need(ndim == (1 if dcfg.type_one_side else 2), path,
          f"embedding collection ndim={ndim} does not match type_one_side={dcfg.type_one_side}")
    nets = emb["networks"]
    _need(len(nets) == dcfg.n_embeddings and all(n is not None for n in nets), path,
          f"expected {dcfg.n_embeddings} embedding networks, found {len(nets)}")
    params = {"descriptor": {}, "fitting": {}}
    for k, net in enumerate(nets):
        _need(int(net.get("in_dim", 1)) == 1, path, "embedding nets must take one input (no type embedding)")
        params["descriptor"][f"embedding_{k}"] = _layers_to_params(
            net["layers"], f"embedding net {k}", path, dcfg.activation, dcfg.resnet_dt, last_linear=False)
    fnets = fit["nets"]["networks"]
    n_fit = 1 if fcfg.mixed_types else ntypes
    _need(len(fnets) == n_fit and all(n is not None for n in fnets), path,
          f"expected {n_fit} fitting networks, found {len(fnets)}")
    for t, net in enumerate(fnets):
        _need(int(net.get("out_dim", 1)) == 1, path, "fitting nets must have one output")
        params["fitting"][f"net_{t}"] = _layers_to_params(
            net["layers"], f"fitting net {t}", path, fcfg.activation, fcfg.resnet_dt, last_linear=True)

    dv = desc["@variables"]
    davg = np.asarray(dv["davg"], dtype=np.float64)
    dstd = np.asarray(dv["dstd"], dtype=np.float64)
    _need(davg.shape == (ntypes, dcfg.nnei, 4) and dstd.shape == davg.shape, path,
          f"davg/dstd shape {davg.shape} != ({ntypes}, {dcfg.nnei}, 4)")
    bias_atom_e = fit.get("@variables", {}).get("bias_atom_e")
    bias_atom_e = np.zeros(ntypes) if bias_atom_e is None else np.asarray(bias_atom_e, np.float64).reshape(ntypes)
    mv = m.get("@variables", {})
    out_bias = mv.get("out_bias")
    out_bias = np.zeros(ntypes) if out_bias is None else np.asarray(out_bias, np.float64).reshape(-1, ntypes)[0]
    out_std = mv.get("out_std")
    out_std = np.ones(ntypes) if out_std is None else np.asarray(out_std, np.float64).reshape(-1, ntypes)[0]
    constants = {"davg": davg, "dstd": dstd, "bias_atom_e": bias_atom_e, "out_bias": out_bias, "out_std": out_std}
    return cfg, {"params": params, "constants": constants}


def _zbl_from_dict(m, path):
    """A DeePMD-kit "zbl" model: ``models = [DP atomic model, pair table]`` combined by
    ``sw_rmin``/``sw_rmax``/``smin_alpha``; the combined model's own ``out_bias`` is the one
    applied (the DP sub-model's is not used by DeePMD-kit and is kept only for export)."""
    import dataclasses

    from glassjax.model.pairtab import ZBLConfig

    models = m.get("models")
    _need(isinstance(models, list) and len(models) == 2, path, "zbl model needs models = [DP model, pair table]")
    dp, pt = models
    _need(pt.get("type") == "pairtab", path, f"zbl model's second model has type {pt.get('type')!r}, not 'pairtab'")
    _need(not m.get("atom_exclude_types") and not m.get("pair_exclude_types"), path,
          "atom_exclude_types/pair_exclude_types are not supported")
    cfg, variables = model_from_dict({"model": {**dp, "type": "standard"}}, path)
    type_map = list(m.get("type_map") or cfg.type_map)
    _need(type_map == list(cfg.type_map) and list(pt.get("type_map", type_map)) == type_map, path,
          f"zbl model: the DP model and the pair table must share type_map {type_map}")
    tab = pt.get("tab") or {}
    tv = tab.get("@variables") or {}
    _need(tv.get("tab_info") is not None and tv.get("tab_data") is not None, path, "pair table has no tab_info/tab_data")
    rmin, hh, nspline, ntab = np.asarray(tv["tab_info"], np.float64).ravel()[:4]
    nspline, ntab = int(nspline + 0.1), int(ntab + 0.1)
    t_n = len(type_map)
    _need(ntab == t_n, path, f"pair table has {ntab} types, the model {t_n}")
    rcut_pt = float(pt.get("rcut", tab.get("rcut", cfg.rcut)))
    _need(rcut_pt <= cfg.rcut + 1e-12, path,
          f"pair table cutoff {rcut_pt} Å exceeds the descriptor's rcut {cfg.rcut} Å (not supported)")
    vdata = tv.get("vdata")
    vdata = np.zeros((1, 1)) if vdata is None else np.asarray(vdata, np.float64)
    try:
        zcfg = ZBLConfig(sw_rmin=float(m["sw_rmin"]), sw_rmax=float(m["sw_rmax"]),
                         smin_alpha=float(m.get("smin_alpha") if m.get("smin_alpha") is not None else 0.1),
                         rmin=float(rmin), hh=float(hh), nspline=nspline, rcut=rcut_pt,
                         rmax=float(tab.get("rmax", rmin + hh * nspline)),
                         nrows=int(vdata.shape[0]), ncols=int(vdata.shape[1]))
    except KeyError as exc:
        raise ModelError(f"{path}: zbl model has no {exc.args[0]}") from None
    consts = dict(variables["constants"])
    consts["dp_out_bias"] = consts["out_bias"]
    mv = m.get("@variables", {})
    if mv.get("out_bias") is not None:
        consts["out_bias"] = np.asarray(mv["out_bias"], np.float64).reshape(-1, t_n)[0]
    else:
        consts["out_bias"] = np.zeros(t_n)
    if mv.get("out_std") is not None:
        consts["out_std"] = np.asarray(mv["out_std"], np.float64).reshape(-1, t_n)[0]
    consts["pairtab_data"] = np.asarray(tv["tab_data"], np.float64).reshape(t_n, t_n, nspline, 4)
    consts["pairtab_vdata"] = vdata
    return dataclasses.replace(cfg, zbl=zcfg), {"params": variables["params"], "constants": consts}


def _layer_dict(p, activation, resnet, precision):
    idt = p.get("idt")
    return {"@class": "Layer", "@version": 2, "bias": True, "use_timestep": idt is not None,
            "activation_function": activation, "resnet": resnet, "precision": precision,
            "trainable": True,
            "@variables": {"w": np.asarray(p["w"]), "b": np.asarray(p["b"]),
                           "idt": None if idt is None else np.asarray(idt)}}


def model_to_dict(config, variables) -> Dict[str, Any]:
    """DeePMD-kit v3 model dictionary (the ``model`` entry of a ``.dp`` file)."""
    if config.zbl is not None:
        return _zbl_to_dict(config, variables)
    dc, fc = config.descriptor, config.fitting
    if dc.switch != "quintic":
        raise ModelError("only models with the quintic switch can be exported to DeePMD-kit "
                         f"(this one uses {dc.switch!r})")
    prec = dc.precision
    fprec = fc.precision
    np_dt = np.float64 if prec == "float64" else np.float32
    fnp_dt = np.float64 if fprec == "float64" else np.float32
    params = variables["params"]
    consts = variables["constants"]
    t_n = dc.ntypes

    def cast(tree, dt):
        return {k: (cast(v, dt) if isinstance(v, dict) else np.asarray(v, dt)) for k, v in tree.items()}

    emb_nets = []
    for k in range(dc.n_embeddings):
        lp = cast(params["descriptor"][f"embedding_{k}"], np_dt)
        layers = [_layer_dict(lp[f"layer_{i}"], dc.activation, True, prec) for i in range(len(dc.neuron))]
        emb_nets.append({"@class": "EmbeddingNetwork", "@version": 2, "in_dim": 1, "neuron": list(dc.neuron),
                         "activation_function": dc.activation, "resnet_dt": dc.resnet_dt, "bias": True,
                         "precision": prec, "layers": layers})
    fit_nets = []
    for t in range(1 if fc.mixed_types else t_n):
        lp = cast(params["fitting"][f"net_{t}"], fnp_dt)
        layers = [_layer_dict(lp[f"layer_{i}"], fc.activation, True, fprec) for i in range(len(fc.neuron))]
        layers.append(_layer_dict(lp[f"layer_{len(fc.neuron)}"], "none", False, fprec))
        fit_nets.append({"@class": "FittingNetwork", "@version": 1, "in_dim": dc.dim_out, "out_dim": 1,
                         "neuron": list(fc.neuron), "activation_function": fc.activation,
                         "resnet_dt": fc.resnet_dt, "precision": fprec, "bias_out": True, "layers": layers})
    descriptor = {
        "@class": "Descriptor", "type": "se_e2_a", "@version": 2,
        "rcut": float(dc.rcut), "rcut_smth": float(dc.rcut_smth), "sel": list(dc.sel),
        "neuron": list(dc.neuron), "axis_neuron": int(dc.axis_neuron), "resnet_dt": bool(dc.resnet_dt),
        "trainable": True, "type_one_side": bool(dc.type_one_side), "exclude_types": [],
        "env_protection": float(dc.env_protection), "set_davg_zero": bool(dc.set_davg_zero),
        "activation_function": dc.activation, "precision": prec, "spin": None,
        "env_mat": {"rcut": float(dc.rcut), "rcut_smth": float(dc.rcut_smth),
                    "protection": float(dc.env_protection), "use_exp_switch": False},
        "embeddings": {"@class": "NetworkCollection", "@version": 1, "ndim": 1 if dc.type_one_side else 2,
                       "ntypes": t_n, "network_type": "embedding_network", "networks": emb_nets},
        "@variables": {"davg": np.asarray(consts["davg"], np_dt), "dstd": np.asarray(consts["dstd"], np_dt)},
        "type_map": list(dc.type_map),
    }
    fitting = {
        "@class": "Fitting", "@version": 4, "var_name": "energy", "ntypes": t_n, "dim_descrpt": dc.dim_out,
        "neuron": list(fc.neuron), "resnet_dt": bool(fc.resnet_dt), "numb_fparam": 0, "numb_aparam": 0,
        "dim_case_embd": 0, "default_fparam": None, "rcond": None, "activation_function": fc.activation, "precision": fprec,
        "mixed_types": bool(fc.mixed_types), "exclude_types": [],
        "nets": {"@class": "NetworkCollection", "@version": 1, "ndim": 0 if fc.mixed_types else 1,
                 "ntypes": t_n, "network_type": "fitting_network", "networks": fit_nets},
        "@variables": {"bias_atom_e": np.asarray(consts["bias_atom_e"], np.float64).reshape(t_n, 1),
                       "case_embd": None, "fparam_avg": None, "fparam_inv_std": None,
                       "aparam_avg": None, "aparam_inv_std": None},
        "type_map": list(dc.type_map), "tot_ener_zero": False, "trainable": [True] * (len(fc.neuron) + 1),
        "layer_name": None, "use_aparam_as_mask": False, "spin": None, "type": "ener", "dim_out": 1,
        "atom_ener": None,
    }
    return {
        "type_map": list(dc.type_map), "atom_exclude_types": [], "pair_exclude_types": [], "rcond": None,
        "preset_out_bias": None,
        "@variables": {"out_bias": np.asarray(consts["out_bias"], np.float64).reshape(1, t_n, 1),
                       "out_std": np.asarray(consts["out_std"], np.float64).reshape(1, t_n, 1)},
        "@class": "Model", "type": "standard", "@version": 2,
        "descriptor": descriptor, "fitting": fitting,
    }


def _zbl_to_dict(config, variables) -> Dict[str, Any]:
    """DeePMD-kit's "zbl" model dictionary: DP atomic model + pair table + switch."""
    import dataclasses

    zc = config.zbl
    consts = variables["constants"]
    t_n = config.descriptor.ntypes
    dp_consts = dict(consts)
    dp_consts["out_bias"] = consts.get("dp_out_bias", np.zeros(t_n))
    dp = model_to_dict(dataclasses.replace(config, zbl=None), {"params": variables["params"], "constants": dp_consts})
    tab_data = np.asarray(consts["pairtab_data"], np.float64)
    tab_info = np.array([zc.rmin, zc.hh, float(zc.nspline), float(t_n)])
    tm = list(config.type_map)
    base = {"type_map": tm, "atom_exclude_types": [], "pair_exclude_types": [], "rcond": None,
            "preset_out_bias": None}
    pairtab_d = {**base,
                 "@variables": {"out_bias": np.zeros((1, t_n, 1)), "out_std": np.ones((1, t_n, 1))},
                 "@class": "Model", "type": "pairtab", "@version": 2,
                 "tab": {"@class": "PairTab", "@version": 1, "rmin": zc.rmin, "rmax": zc.rmax, "hh": zc.hh,
                         "ntypes": t_n, "rcut": zc.rcut, "nspline": zc.nspline,
                         "@variables": {"vdata": np.asarray(consts["pairtab_vdata"], np.float64),
                                        "tab_info": tab_info, "tab_data": tab_data.reshape(-1)}},
                 "rcut": zc.rcut, "sel": int(sum(config.descriptor.sel))}
    return {**base,
            "@variables": {"out_bias": np.asarray(consts["out_bias"], np.float64).reshape(1, t_n, 1),
                           "out_std": np.asarray(consts["out_std"], np.float64).reshape(1, t_n, 1)},
            "@class": "Model", "@version": 2, "type": "zbl", "models": [dp, pairtab_d], "weights": "mean",
            "sw_rmin": zc.sw_rmin, "sw_rmax": zc.sw_rmax, "smin_alpha": zc.smin_alpha}


def model_def_script(config) -> Dict[str, Any]:
    """A DeePMD-kit input-script ``model`` section describing this model."""
    dc, fc = config.descriptor, config.fitting
    out = {"type_map": list(dc.type_map),
           "descriptor": {"type": "se_e2_a", "rcut": dc.rcut, "rcut_smth": dc.rcut_smth, "sel": list(dc.sel),
                           "neuron": list(dc.neuron), "axis_neuron": dc.axis_neuron,
                           "type_one_side": dc.type_one_side, "resnet_dt": dc.resnet_dt,
                           "activation_function": dc.activation, "precision": dc.precision},
            "fitting_net": {"type": "ener", "neuron": list(fc.neuron), "resnet_dt": fc.resnet_dt,
                            "activation_function": fc.activation, "precision": fc.precision}}
    if config.zbl is not None:
        out.update({"use_srtab": "(stored in this file)", "sw_rmin": config.zbl.sw_rmin,
                    "sw_rmax": config.zbl.sw_rmax, "smin_alpha": config.zbl.smin_alpha})
    return out


def load_dp(path):
    """``(DeepPotConfig, variables as numpy)`` from a ``.dp`` file."""
    data = read_dp_dict(path)
    return model_from_dict(data, path)


def save_dp(path, config, variables, template: Dict[str, Any] = None) -> None:
    """Write a model as a DeePMD-kit ``.dp`` file (loadable by ``dp --dp test``/``DeepPot``).

    ``template``: the dictionary of a ``.dp`` file this model came from; when given, its
    structure is kept and only the arrays are replaced (safest for DeePMD-kit versions
    whose serialisation differs from the one written here).
    """
    import glassjax

    new_model = model_to_dict(config, jax_to_numpy(variables))
    if template is not None:
        model = copy.deepcopy(template.get("model", template))
        _replace_variables(model, new_model)
        data = {k: v for k, v in template.items() if k != "model"}
        data["model"] = model
    else:
        data = {"backend": "glassjax", "model": new_model, "model_def_script": model_def_script(config),
                "@variables": {}}
    data["software"] = "glassjax"
    data["version"] = getattr(glassjax, "__version__", "unknown")
    data["time"] = str(datetime.datetime.now(tz=datetime.timezone.utc))
    write_dp_dict(path, data)


def _replace_variables(dst, src):
    """Copy every array under ``@variables`` from ``src`` into the same place in ``dst``."""
    if isinstance(dst, dict) and isinstance(src, dict):
        for k in dst:
            if k not in src:
                continue
            if k == "@variables" and isinstance(dst[k], dict):
                for kk in dst[k]:
                    if kk in src[k] and src[k][kk] is not None and dst[k][kk] is not None:
                        dst[k][kk] = np.asarray(src[k][kk], np.asarray(dst[k][kk]).dtype)
            else:
                _replace_variables(dst[k], src[k])
    elif isinstance(dst, list) and isinstance(src, list):
        for a, b in zip(dst, src):
            _replace_variables(a, b)


def jax_to_numpy(tree):
    if isinstance(tree, dict):
        return {k: jax_to_numpy(v) for k, v in tree.items()}
    return np.asarray(tree)
