"""The training loop: DeePMD-kit's recipe (Adam, exponential lr decay, moving loss
prefactors) as one jit-compiled step over padded batches of any mix of systems.

Inside the step each frame gets its neighbour list (glassjax.neighbors, multi-image, so
training cells thinner than 2*rcut are exact), DeePMD-kit's per-type sections, and energy,
forces and virial by autodiff; the loss is :func:`glassjax.train.loss.energy_loss`.

Before any compute the data are checked against the model: every element must be in the
type map, and ``sel`` must hold every neighbour within rcut in every frame (``sel =
"auto"`` picks it as DeePMD-kit does: the largest count times 1.1, rounded up to a multiple
of 4).  Statistics (davg/dstd, energy bias) come from the training split.

Output folder (``training.output_dir``)::

    checkpoints/   resumable run states (atomic; see glassjax.train.checkpoint)
    lcurve.out     DeePMD-style learning curve (step, rmse_e/f/v on validation and training, lr)
    lcurve.png     the learning curve
    model.ckpt     the trained model (glassjax checkpoint)
    model.dp       the same model as a DeePMD-kit .dp file
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from glassjax import neighbors as nbl
from glassjax.errors import ConfigError, DataError, GlassJaxError
from glassjax.model.typegroups import TypeCapacity
from glassjax.train.checkpoint import CheckpointManager
from glassjax.train.config import TrainConfig
from glassjax.train.loss import LossPrefactors, energy_loss
from glassjax.train.schedule import ExpDecay

LCURVE_HEADER = ("#  step      rmse_val    rmse_trn    rmse_e_val  rmse_e_trn  rmse_f_val  rmse_f_trn"
                 "  rmse_v_val  rmse_v_trn  lr\n")


# ----------------------------------------------------------------------------- data checks
def neighbor_counts(frames_list, type_map, rcut: float) -> Dict[str, np.ndarray]:
    """Largest number of neighbours within ``rcut`` of each type, over all frames.

    Returns ``{"per_type": (T,) int, "total": int, "images": (3,) int, "min_distance": float}``
    where ``images`` is the periodic-image range any frame needs (for a shared static
    neighbour spec) and ``min_distance`` the closest pair in the data, Å.
    Counted with numpy (:func:`glassjax.model.stats.periodic_pairs`): no compile per system size.
    """
    from glassjax.model.stats import periodic_pairs

    t_n = len(type_map)
    per_type = np.zeros(t_n, dtype=np.int64)
    total = 0
    images = np.zeros(3, dtype=np.int64)
    dmin = np.inf
    for fr in frames_list:
        types = fr.types(type_map)
        n = len(types)
        img = np.max([nbl.images_needed(c, rcut) for c in fr.cells], axis=0)
        images = np.maximum(images, img)
        for pos, cell in zip(fr.positions, fr.cells):
            i, j, d = periodic_pairs(pos, cell, rcut)
            if len(d):
                dmin = min(dmin, float(np.sqrt(np.min(np.sum(d * d, axis=1)))))
            counts = np.zeros((n, t_n), dtype=np.int64)
            np.add.at(counts, (i, types[j]), 1)
            per_type = np.maximum(per_type, counts.max(axis=0))
            total = max(total, int(counts.sum(axis=1).max(initial=0)))
    return {"per_type": per_type, "total": int(total), "images": images, "min_distance": dmin}


def auto_sel(max_counts, factor: float = 1.1) -> List[int]:
    """DeePMD-kit's ``sel = "auto"``: int(count * factor) rounded up to a multiple of 4."""
    return [int(4 * ((int(c * factor) + 3) // 4)) for c in max_counts]


def _parse_auto_factor(sel) -> float:
    if sel == "auto":
        return 1.1
    try:
        return float(sel.split(":", 1)[1])
    except (IndexError, ValueError):
        raise ConfigError(f"model.descriptor.sel: cannot read the factor in {sel!r} (use 'auto:1.1')") from None


# ----------------------------------------------------------------------------- the trainer
class Trainer:
    """Set up a training run from a :class:`TrainConfig` and run (or resume) it.

    Args:
        config: the training configuration.
        base_dir: folder that relative paths in the config refer to (the TOML's folder).
        progress: show a tqdm progress bar.
    """

    def __init__(self, config: TrainConfig, base_dir=".", progress: bool = True):
        from glassjax.data.dataset import Dataset
        from glassjax.data.loader import BatchLoader
        from glassjax.model.deeppot import DeepPot, DeepPotConfig
        from glassjax.model.descriptor import DescriptorConfig
        from glassjax.model.fitting import FittingConfig
        from glassjax.precision import x64_enabled

        self.config = config
        self.progress = progress
        base = Path(base_dir)
        self.base_dir = base
        tc = config.training
        data_path = Path(tc.data) if Path(tc.data).is_absolute() else base / tc.data
        if not data_path.is_file():
            raise ConfigError(f"training.data: dataset file {data_path} not found "
                              "(make one with 'glassjax data convert ... -o data.h5')")
        self.out_dir = Path(tc.output_dir) if Path(tc.output_dir).is_absolute() else base / tc.output_dir
        if config.model.precision == "float64" and not x64_enabled():
            raise ConfigError("model.precision = 'float64' needs JAX x64 mode: pass --x64 to glassjax "
                              "(or call glassjax.precision.enable_x64()), or set precision = 'float32'")
        self.dtype = np.float64 if config.model.precision == "float64" else np.float32

        ds = Dataset(data_path)
        mc = config.model
        data_elements = ds.elements
        type_map = list(mc.type_map) if mc.type_map else list(data_elements)
        missing = sorted(set(data_elements) - set(type_map))
        if missing:
            raise ConfigError(f"the dataset {data_path} holds elements {missing} that are not in "
                              f"model.type_map {type_map}: add them to the type map")
        self.type_map = type_map
        self.train_frames = ds.all_frames("train")
        self.val_frames = [f for f in ds.all_frames("val") if f.nframes > 0]
        if sum(f.nframes for f in self.train_frames) == 0:
            raise DataError(data_path, "the training split has no frames")

        # ---- neighbour statistics and sel, before any training compute
        dsc = mc.descriptor
        counts = neighbor_counts(self.train_frames + self.val_frames, type_map, dsc.rcut)
        if isinstance(dsc.sel, str):
            sel = auto_sel(counts["per_type"], _parse_auto_factor(dsc.sel))
        else:
            sel = [int(s) for s in dsc.sel]
            if len(sel) != len(type_map):
                raise ConfigError(f"model.descriptor.sel has {len(sel)} entries but the type map "
                                  f"{type_map} has {len(type_map)} types")
            short = [(type_map[t], int(counts["per_type"][t]), sel[t]) for t in range(len(sel))
                     if counts["per_type"][t] > sel[t]]
            if short:
                desc = ", ".join(f"{e}: {c} neighbours > sel {s}" for e, c, s in short)
                raise ConfigError(f"model.descriptor.sel is too small for the data ({desc} within "
                                  f"rcut={dsc.rcut} Å): raise sel or use sel = \"auto\"")
        self.sel = sel
        self.counts = counts
        self.model_config = DeepPotConfig(
            DescriptorConfig(type_map=tuple(type_map), rcut=dsc.rcut, rcut_smth=dsc.rcut_smth, sel=tuple(sel),
                             neuron=tuple(dsc.neuron), axis_neuron=dsc.axis_neuron,
                             type_one_side=dsc.type_one_side, resnet_dt=dsc.resnet_dt,
                             activation=dsc.activation, switch=dsc.switch, precision=mc.precision),
            FittingConfig(neuron=tuple(config.model.fitting.neuron), resnet_dt=config.model.fitting.resnet_dt,
                          activation=config.model.fitting.activation, precision=mc.precision))
        self.pair_table = None
        if mc.zbl is not None:
            from glassjax.model.pairtab import pair_table_config, read_table
            from glassjax.model.zbl import zbl_table

            zs = mc.zbl
            if zs.table:
                tpath = Path(zs.table) if Path(zs.table).is_absolute() else base / zs.table
                rows, where = read_table(tpath, dsc.rcut), str(tpath)
            else:
                rows, where = zbl_table(type_map), "ZBL table"
            self.model_config, self.pair_table = pair_table_config(self.model_config, rows, zs.sw_rmin,
                                                                   zs.sw_rmax, zs.smin_alpha, where)
            closest = counts["min_distance"]
            if closest < zs.sw_rmax:
                raise ConfigError(f"model.zbl.sw_rmax = {zs.sw_rmax} Å but the data hold atoms {closest:.3f} Å "
                                  "apart: the pair table would replace the model on training frames; lower sw_rmax")
        self.model = DeepPot(self.model_config, dtype=mc.precision)
        self.spec = nbl.NeighborSpec(dsc.rcut, 0.0, max(1, counts["total"]),
                                     tuple(int(i) for i in counts["images"]))

        nmax = max(f.natoms for f in self.train_frames + self.val_frames)
        # bucket: each batch holds frames of one atom count padded to that count (one compile
        # per size, as DeePMD-kit batches per system); else everything is padded to nmax.
        self.loader = BatchLoader(self.train_frames, tc.batch_size, type_map=type_map, nmax=nmax,
                                  seed=tc.seed, dtype=self.dtype, bucket=tc.bucket)
        # validation visits a fixed, seeded sample of batches drawn across all systems
        self.val_loader = (BatchLoader(self.val_frames, tc.batch_size, type_map=type_map, nmax=nmax,
                                       seed=tc.seed, shuffle=True, dtype=self.dtype, bucket=tc.bucket)
                           if self.val_frames else None)

        lr = config.learning_rate
        self.schedule = ExpDecay(start_lr=lr.start_lr, stop_lr=lr.stop_lr, num_steps=tc.numb_steps,
                                 decay_steps=lr.decay_steps)
        lc = config.loss
        self.prefs = LossPrefactors(lc.start_pref_e, lc.limit_pref_e, lc.start_pref_f, lc.limit_pref_f,
                                    lc.start_pref_v, lc.limit_pref_v, lc.intensive, lc.relative_f)
        self.optimizer = _optimizer(self.schedule)
        self.ckpt = CheckpointManager(self.out_dir / "checkpoints", keep=3)
        self._compiled = None

    # ---------------------------------------------------------------- initial state
    @property
    def n_members(self) -> int:
        return int(self.config.training.ensemble)

    def initial_state(self):
        """Fresh parameters with data statistics applied, and optimizer state.

        Parameters and optimizer state carry a leading ensemble axis of size
        ``training.ensemble``: member k is initialised with seed ``training.seed + k`` and
        is otherwise identical (same statistics, same data order).
        """
        from glassjax.model.stats import apply_stats, environment_stats, fit_energy_bias, type_counts

        mc = self.config.model
        state = self._fresh_state()
        if self.config.training.init_from:
            return self._state_from_run(state)   # statistics come with the weights
        davg, dstd = environment_stats(self.model_config, self.train_frames,
                                       max_frames_per_system=self.config.training.stat_frames_per_system)
        with_e = [f for f in self.train_frames if f.energy is not None]
        if not with_e:
            bias = np.zeros(len(self.type_map))
            self.bias_info = "no energies in the data: zero bias"
        else:
            counts = type_counts(with_e, self.type_map)
            energies = np.concatenate([f.energy for f in with_e])
            fit = fit_energy_bias(counts, energies, method=mc.energy_bias,
                                  reference=mc.reference_energies or None, type_map=self.type_map)
            bias = fit.bias
            self.bias_info = (f"{fit.method} fit (composition-matrix rank {fit.rank} of {len(self.type_map)}), "
                              f"residual {fit.rmse_per_atom:.4f} eV/atom")
        state["constants"] = apply_stats(state, davg=davg, dstd=dstd, out_bias=bias)["constants"]
        if self.pair_table is not None:
            state["constants"] = {**state["constants"],
                                  **{k: jnp.asarray(v, self.dtype) for k, v in self.pair_table.items()}}
        return state

    def _state_from_run(self, state):
        """Fine-tuning: parameters and statistics (davg/dstd, energy bias, pair table) of
        another run's newest checkpoint, restored into the shapes of the fresh ``state``;
        fresh optimizer state, step 0 (DeePMD-kit's ``--init-model``)."""
        from glassjax.train.checkpoint import CheckpointManager

        src = Path(self.config.training.init_from)
        if not src.is_absolute():
            src = self.base_dir / src
        mgr = CheckpointManager(src / "checkpoints" if (src / "checkpoints").is_dir() else src)
        if mgr.latest_step() is None:
            raise ConfigError(f"training.init_from: no checkpoint in {src} (give the output_dir of a "
                              "glassjax training run, or its checkpoints folder)")
        target = {**state, "loader": {"epoch": 0, "step": 0}}
        try:
            restored, meta = mgr.restore(target)
        except GlassJaxError as exc:
            raise ConfigError(f"training.init_from: {exc} (fine-tuning needs the same model sizes, sel "
                              "and ensemble size as that run)") from None
        def shapes(tree):
            return [np.shape(x) for x in jax.tree_util.tree_leaves(tree)]

        if any(shapes(target[k]) != shapes(restored[k]) for k in ("params", "constants")):
            raise ConfigError(f"training.init_from: the parameters in {mgr.directory} have other shapes than "
                              "this configuration's model (same sizes, sel and ensemble size needed)")
        self.bias_info = f"from {src} step {meta.get('step')} ({meta.get('energy_bias', '')})"
        params = restored["params"]
        return {"params": params, "constants": restored["constants"],
                "opt_state": jax.vmap(self.optimizer.init)(params), "step": 0}

    def _fresh_state(self):
        """Seeded parameters (stacked over members), untouched constants, optimizer state."""
        seed = self.config.training.seed
        variables = self.model.init(seed=seed)
        members = [variables["params"]] + [self.model.init(seed=seed + k)["params"]
                                           for k in range(1, self.n_members)]
        params = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *members)
        return {"params": params, "constants": variables["constants"],
                "opt_state": jax.vmap(self.optimizer.init)(params), "step": 0}

    # ---------------------------------------------------------------- compiled functions
    def _compile(self):
        if self._compiled is None:
            key = _StepKey(self.model_config, self.config.model.precision, self.spec, self.prefs, self.schedule)
            self._compiled = _compiled_steps(key)
        return self._compiled

    def _mesh(self):
        """Device mesh for data parallelism (None on one device)."""
        from jax.sharding import Mesh

        n = self.config.training.devices or len(jax.devices())
        if n == 1:
            return None
        devs = jax.devices()
        if n > len(devs):
            raise ConfigError(f"training.devices = {n} but only {len(devs)} devices are visible")
        if self.config.training.batch_size % n:
            raise ConfigError(f"training.batch_size = {self.config.training.batch_size} must be a multiple "
                              f"of training.devices = {n} for data-parallel training")
        return Mesh(np.array(devs[:n]), ("data",))

    def _to_device(self, batch):
        keys = ("positions", "cells", "types", "atom_mask", "natoms", "energy", "forces", "virial",
                "has_energy", "has_forces", "has_virial", "frame_mask")
        out = {k: jnp.asarray(batch[k]) for k in keys}
        mesh = self._mesh()
        if mesh is not None:
            from jax.sharding import NamedSharding, PartitionSpec

            out = {k: jax.device_put(v, NamedSharding(mesh, PartitionSpec("data"))) for k, v in out.items()}
        return out

    @staticmethod
    def _static_types(loader, batch):
        """What the compiled step knows of the batch's types: its types row as a constant
        (``bucket = "composition"``), else the loader's per-type atom bound for batches of
        this width (:class:`glassjax.model.typegroups.TypeCapacity`), so that each type's
        networks run on its own atoms only."""
        if loader.bucket != "composition":
            return TypeCapacity(loader.type_capacity(batch["types"].shape[1]))
        return tuple(int(t) for t in batch["types"][0])

    def validate(self, state, nbatches: Optional[int] = None) -> Dict[str, np.ndarray]:
        """Per-member RMSEs (arrays of length ``ensemble``) on the first validation batches."""
        if self.val_loader is None:
            return {}
        _, eval_step = self._compile()
        n = nbatches or self.config.training.val_batches
        batches = self.val_loader._epoch_batches(0)
        total = min(n, len(batches))
        sums = {"rmse_e": 0.0, "rmse_f": 0.0, "rmse_v": 0.0, "loss": 0.0}
        for idx in batches[:total]:
            batch = self.val_loader.make_batch(idx)
            m = eval_step(state["params"], state["constants"], state["step"], self._to_device(batch),
                          static_types=self._static_types(self.val_loader, batch))
            for k in sums:
                v = np.asarray(m[k])
                sums[k] = sums[k] + (v**2 if k != "loss" else v)
        return {k: (np.sqrt(v / total) if k != "loss" else v / total) for k, v in sums.items()}

    # ---------------------------------------------------------------- the run
    def member_dir(self, k: int) -> Path:
        """Output folder of ensemble member k (the run folder itself for a single model)."""
        return self.out_dir if self.n_members == 1 else self.out_dir / f"member_{k}"

    def run(self, stop_after: Optional[int] = None):
        """Train to ``training.numb_steps`` (resuming from the newest checkpoint if any).

        ``stop_after`` ends the call after that many steps of this call without saving, as
        a killed run would (used to test resuming).  Returns the final state.
        """
        from tqdm.auto import tqdm

        tc = self.config.training
        start = 0
        curves = [self.member_dir(k) / "lcurve.out" for k in range(self.n_members)]
        if self.ckpt.latest_step() is not None:
            # the checkpoint holds the statistics too: restore into a plain template
            target = {**self._fresh_state(), "loader": {"epoch": 0, "step": 0}}
            restored, meta = self.ckpt.restore(target)
            self.bias_info = meta.get("energy_bias", "")
            self.loader.load_state_dict({"epoch": int(restored["loader"]["epoch"]),
                                         "step": int(restored["loader"]["step"])})
            state = {k: restored[k] for k in ("params", "constants", "opt_state")}
            state["step"] = int(restored["step"])
            start = state["step"]
            for c in curves:
                _truncate_lcurve(c, start)
        else:
            state = self.initial_state()
            for c in curves:
                c.parent.mkdir(parents=True, exist_ok=True)
                c.write_text(LCURVE_HEADER)
        train_step, _ = self._compile()
        params, constants, opt_state = state["params"], state["constants"], state["opt_state"]
        bar = tqdm(total=tc.numb_steps, initial=start, disable=not self.progress, desc="train",
                   unit="step", dynamic_ncols=True)
        done_here = 0
        step = start
        try:
            while step < tc.numb_steps:
                if stop_after is not None and done_here >= stop_after:
                    return None
                batch = self.loader.next_batch()
                params, opt_state, m = train_step(params, opt_state, constants, step, self._to_device(batch),
                                                  static_types=self._static_types(self.loader, batch))
                step += 1
                done_here += 1
                bar.update(1)
                if step % tc.disp_freq == 0 or step == tc.numb_steps:
                    if bool(np.any(np.asarray(m["overflow"]))):
                        raise DataError(tc.data, f"a frame at step {step} has more neighbours than sel "
                                        f"{self.sel} or the neighbour capacity; raise sel")
                    val = self.validate({"params": params, "constants": constants, "step": step})
                    mm = {k: np.asarray(v) for k, v in m.items()}
                    for k, c in enumerate(curves):
                        _append_lcurve(c, step, {key: v[k] for key, v in val.items()},
                                       {key: v[k] for key, v in mm.items()})
                    bar.set_postfix(loss=f"{float(mm['loss'].mean()):.3g}",
                                    rmse_e=f"{float(mm['rmse_e'].mean()):.3g}",
                                    rmse_f=f"{float(mm['rmse_f'].mean()):.3g}", lr=f"{float(mm['lr'][0]):.2g}")
                if step % tc.save_freq == 0 or step == tc.numb_steps:
                    loader_state = self.loader.state_dict()
                    self.ckpt.save(step, {"params": params, "constants": constants, "opt_state": opt_state,
                                          "step": step, "loader": {"epoch": loader_state["epoch"],
                                                                   "step": loader_state["step"]}},
                                   meta={"config": asdict(self.config), "sel": self.sel,
                                         "type_map": self.type_map,
                                         "energy_bias": getattr(self, "bias_info", "")})
        finally:
            bar.close()
        final = {"params": params, "constants": constants, "opt_state": opt_state, "step": step}
        self.export(final)
        return final

    def variables(self, state, member: int = 0):
        """``{"params", "constants"}`` of one ensemble member."""
        return {"params": jax.tree_util.tree_map(lambda x: x[member], state["params"]),
                "constants": state["constants"]}

    def export(self, state):
        """Write model.ckpt, model.dp and lcurve.png for every member."""
        from glassjax.model.checkpoint import save_checkpoint
        from glassjax.model.dpfile import save_dp

        for k in range(self.n_members):
            d = self.member_dir(k)
            v = jax.tree_util.tree_map(np.asarray, self.variables(state, k))
            meta = {"trained_steps": int(state["step"]), "energy_bias": getattr(self, "bias_info", ""),
                    "data": self.config.training.data, "seed": self.config.training.seed + k,
                    "ensemble_member": k, "ensemble_size": self.n_members,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
            save_checkpoint(d / "model.ckpt", self.model_config, v, metadata=meta)
            save_dp(d / "model.dp", self.model_config, v)
            plot_lcurve(d / "lcurve.out", d / "lcurve.png")


def _optimizer(schedule):
    """Adam with DeePMD-kit's learning-rate schedule."""
    return optax.adam(schedule)


@dataclass(frozen=True)
class _StepKey:
    """Everything the compiled training step depends on (hashable: equal keys share compiles)."""

    model_config: object
    precision: str
    spec: nbl.NeighborSpec
    prefs: LossPrefactors
    schedule: ExpDecay


@functools.lru_cache(maxsize=8)
def _compiled_steps(key: _StepKey):
    """``(train_step, eval_step)``, jitted and vmapped over ensemble members.

    train_step(params, opt_state, constants, step, batch) -> (params, opt_state, metrics)
    eval_step(params, constants, step, batch) -> metrics
    Params and optimizer state carry the leading ensemble axis; metrics are (E,) arrays.
    """
    from glassjax.model.deeppot import DeepPot
    from glassjax.model.nlist import sections_from_neighbor_list

    model = DeepPot(key.model_config, dtype=key.precision)
    spec, prefs, schedule = key.spec, key.prefs, key.schedule
    opt = _optimizer(schedule)
    start_lr = schedule.start_lr

    def frame(variables, pos, cell, types, mask, static_types):
        capacity = None
        if isinstance(static_types, TypeCapacity):
            capacity = static_types  # padded frames, traced types: at most capacity[t] atoms of type t
        elif static_types is not None:
            # one composition, atoms sorted by type: each type's networks see only its atoms
            types = np.asarray(static_types, dtype=np.int32)
        nl = nbl.build(pos, cell, spec, mask)
        sec = sections_from_neighbor_list(pos, cell, jnp.asarray(types, jnp.int32), nl, model.rcut, model.sel)
        e, f, w = model.energy_forces_virial(variables, pos, cell, types, sec, type_capacity=capacity)
        return e, f, w, sec.overflow

    def loss_fn(params, constants, batch, lr, static_types=None):
        predict = jax.vmap(functools.partial(frame, static_types=static_types), in_axes=(None, 0, 0, 0, 0))
        e, f, w, ovf = predict({"params": params, "constants": constants}, batch["positions"],
                               batch["cells"], batch["types"], batch["atom_mask"])
        loss, m = energy_loss({"energy": e, "forces": f, "virial": w}, batch, prefs, lr, start_lr)
        m["overflow"] = jnp.any(ovf & batch["frame_mask"])
        return loss, m

    def member_step(params, opt_state, constants, step, batch, static_types):
        lr = schedule(step)
        (loss, m), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, constants, batch, lr,
                                                                     static_types)
        updates, opt_state = opt.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        m["lr"] = lr
        return params, opt_state, m

    def member_eval(params, constants, step, batch, static_types):
        return loss_fn(params, constants, batch, schedule(step), static_types)[1]

    # static_types: None, the batch's shared types row as a tuple (bucket = "composition",
    # compiled in: one compile per composition) or a TypeCapacity (padded batches)
    @functools.partial(jax.jit, static_argnames=("static_types",))
    def train_step(params, opt_state, constants, step, batch, static_types=None):
        return jax.vmap(functools.partial(member_step, static_types=static_types),
                        in_axes=(0, 0, None, None, None))(params, opt_state, constants, step, batch)

    @functools.partial(jax.jit, static_argnames=("static_types",))
    def eval_step(params, constants, step, batch, static_types=None):
        return jax.vmap(functools.partial(member_eval, static_types=static_types),
                        in_axes=(0, None, None, None))(params, constants, step, batch)

    return train_step, eval_step


def _append_lcurve(path: Path, step: int, val: Dict, m) -> None:
    def g(d, k):
        return float(d[k]) if k in d else float("nan")

    trn = {k: float(m[k]) for k in ("loss", "rmse_e", "rmse_f", "rmse_v")}
    row = [step, math.sqrt(max(g(val, "loss"), 0)) if val else float("nan"), math.sqrt(max(trn["loss"], 0)),
           g(val, "rmse_e"), trn["rmse_e"], g(val, "rmse_f"), trn["rmse_f"], g(val, "rmse_v"), trn["rmse_v"],
           float(m["lr"])]
    with open(path, "a") as fh:
        fh.write(f"{row[0]:7d}  " + "  ".join(f"{x:10.4e}" for x in row[1:]) + "\n")


def _truncate_lcurve(path: Path, step: int) -> None:
    """Drop learning-curve rows after ``step`` (written after the checkpoint being resumed)."""
    if not path.is_file():
        path.write_text(LCURVE_HEADER)
        return
    keep = [ln for ln in path.read_text().splitlines(keepends=True)
            if ln.startswith("#") or (ln.split() and int(ln.split()[0]) <= step)]
    from glassjax.atomic_write import write_text_atomic

    write_text_atomic(path, "".join(keep))


def read_lcurve(path) -> np.ndarray:
    """(rows, 10) array of a learning curve written by the trainer."""
    rows = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return np.array(rows, dtype=np.float64).reshape(-1, 10)


def plot_lcurve(lcurve_path, png_path) -> None:
    """Energy and force RMSE (training and validation) versus step, log scale."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    from glassjax.atomic_write import atomic_path

    data = read_lcurve(lcurve_path)
    if data.size == 0:
        return
    fig = Figure(figsize=(9, 3.5))
    ax = fig.subplots(1, 2)
    for a, (iv, it, label) in zip(ax, ((3, 4, "energy RMSE (eV/atom)"), (5, 6, "force RMSE (eV/Å)"))):
        a.semilogy(data[:, 0], data[:, it], label="train")
        if np.isfinite(data[:, iv]).any():
            a.semilogy(data[:, 0], data[:, iv], label="validation")
        a.set_xlabel("step")
        a.set_ylabel(label)
        a.legend()
    fig.tight_layout()
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=120)
