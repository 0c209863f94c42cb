"""Ensembles trained in one vmapped program, model deviation against numpy, and
data-parallel training on 4 (CPU) devices against one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pytest

from glassjax.data import read_deepmd, read_vasp
from glassjax.data.dataset import write_dataset
from glassjax.train.config import (DescriptorSection, FittingSection, LearningRateSection, LossSection, ModelSection,
                                   TrainConfig, TrainingSection)
from glassjax.train.deviation import format_model_devi, model_deviation
from glassjax.train.trainer import Trainer, read_lcurve


def _config(data, out, **training):
    return TrainConfig(
        model=ModelSection(descriptor=DescriptorSection(rcut=3.5, rcut_smth=3.0, sel="auto", neuron=[4, 8],
                                                        axis_neuron=4),
                           fitting=FittingSection(neuron=[8, 8])),
        learning_rate=LearningRateSection(start_lr=5e-3, stop_lr=1e-3, decay_steps=10),
        loss=LossSection(start_pref_v=0.5, limit_pref_v=0.1),
        training=TrainingSection(**{**dict(data=str(data), numb_steps=12, batch_size=2, disp_freq=4,
                                           save_freq=12, val_batches=2, output_dir=str(out),
                                           stat_frames_per_system=2, bucket=False), **training}))


@pytest.fixture(scope="module")
def small_h5(tmp_path_factory, test_data):
    # two systems of different sizes (192 and 6 atoms), one with virials: batches are padded
    (fr,) = read_deepmd(test_data / "deepmd" / "water_deepmdkit_example" / "data_1")
    (md,) = read_vasp(test_data / "vasp" / "dpdata_h2o_md10" / "OUTCAR.h2o.md.10")
    assert md.virial is not None and md.natoms == 6
    path = tmp_path_factory.mktemp("ens") / "water.h5"
    write_dataset(path, [fr.select(slice(0, 16)), md], val_fraction=0.25, seed=3)
    return path


def test_ensemble_members_differ_only_by_seed(small_h5, tmp_path):
    ens = Trainer(_config(small_h5, tmp_path / "ens", ensemble=2), progress=False)
    ens.run()
    single = Trainer(_config(small_h5, tmp_path / "single"), progress=False)
    single.run()
    c0 = read_lcurve(tmp_path / "ens" / "member_0" / "lcurve.out")
    c1 = read_lcurve(tmp_path / "ens" / "member_1" / "lcurve.out")
    cs = read_lcurve(tmp_path / "single" / "lcurve.out")
    # member 0 (seed 0) is the single run, to round-off; member 1 differs
    np.testing.assert_allclose(c0, cs, rtol=1e-9, atol=1e-14)
    assert np.max(np.abs(c1[:, 4:7] - c0[:, 4:7])) > 1e-6
    assert np.all(np.isfinite(c0[:, 8])) and np.any(c0[:, 8] > 0)  # virial term from the VASP frames

    # the deviation tool on the two members equals numpy on their predictions
    from glassjax.model import load_model
    from glassjax.train.deviation import devi_for_systems
    from glassjax.train.evaluate import predict_frames

    models = [load_model(tmp_path / "ens" / f"member_{k}" / "model.ckpt") for k in range(2)]
    fr = max(ens.val_frames, key=lambda f: f.natoms)
    devi = devi_for_systems(models, [fr])[fr.name]
    preds = [predict_frames(m, v, fr) for m, v in models]
    e = np.stack([p["energy"] for p in preds]) / fr.natoms
    f = np.stack([p["forces"] for p in preds])
    ref_e = np.sqrt(((e - e.mean(0)) ** 2).mean(0))
    ref_f = np.sqrt(((f - f.mean(0)) ** 2).mean(0).sum(-1))  # (F, N)
    np.testing.assert_allclose(devi["devi_e"], ref_e, rtol=1e-10)
    np.testing.assert_allclose(devi["max_devi_f"], ref_f.max(1), rtol=1e-10)
    np.testing.assert_allclose(devi["avg_devi_f"], ref_f.mean(1), rtol=1e-10)
    assert np.all(devi["max_devi_f"] > 0)
    text = format_model_devi(devi)
    assert len(text.splitlines()) == fr.nframes + 1

    # `glassjax test` on member 0: the per-system table equals numpy on the same predictions
    import csv

    from glassjax.cli import main

    assert main(["test", str(tmp_path / "ens" / "member_0" / "model.ckpt"), str(small_h5), "--split", "val",
                 "-o", str(tmp_path / "report")]) == 0
    rows = {r["name"]: r for r in csv.DictReader(open(tmp_path / "report" / "errors.csv"))}
    p0 = preds[0]
    assert float(rows[fr.name]["f_rmse_eV_per_A"]) == pytest.approx(
        np.sqrt(np.mean((p0["forces"] - fr.forces) ** 2)), rel=1e-9)
    assert float(rows[fr.name]["e_mae_eV_per_atom"]) == pytest.approx(
        np.mean(np.abs(p0["energy"] - fr.energy)) / fr.natoms, rel=1e-9)
    assert (tmp_path / "report" / "parity.png").stat().st_size > 1000


def test_model_deviation_small_hand_example():
    # two models, one frame, two atoms: forces differ by (2,0,0) on atom 0 only
    f = np.zeros((2, 1, 2, 3))
    f[1, 0, 0, 0] = 2.0
    e = np.array([[1.0], [3.0]])
    d = model_deviation(e, f, natoms=2)
    assert d["devi_e"][0] == pytest.approx(0.5)  # std of (0.5, 1.5)
    assert d["max_devi_f"][0] == pytest.approx(1.0) and d["min_devi_f"][0] == 0.0
    assert d["avg_devi_f"][0] == pytest.approx(0.5)


def test_data_parallel_training_matches_one_device(small_h5, tmp_path):
    script = textwrap.dedent(f"""
        import json, os
        os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
        import jax
        jax.config.update("jax_enable_x64", True)
        from dataclasses import replace
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_train_ensemble import _config
        from glassjax.train.trainer import Trainer, read_lcurve
        assert len(jax.devices()) == 4
        out = {{}}
        for n in (1, 4):
            t = Trainer(_config({str(small_h5)!r}, {str(tmp_path)!r} + f"/dev{{n}}", devices=n, batch_size=4, bucket=True,
                                numb_steps=8), progress=False)
            t.run()
            out[n] = read_lcurve({str(tmp_path)!r} + f"/dev{{n}}/lcurve.out").tolist()
        print("RESULT" + json.dumps(out))
    """)
    env = {**os.environ, "XLA_FLAGS": " ".join(filter(None, [os.environ.get("XLA_FLAGS", ""),
                                                          "--xla_force_host_platform_device_count=4"]))}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.split("RESULT", 1)[1])
    np.testing.assert_allclose(np.array(out["4"]), np.array(out["1"]), rtol=1e-9, atol=1e-13)


def test_composition_buckets_train_exactly_as_padded_batches(small_h5, tmp_path):
    """bucket = "composition" (atoms sorted by type, each type's networks on its own atoms, one
    compile per composition) and padded batches with per-type capacities (the loader's
    TypeCapacity, types traced) against padded batches with every network on every atom:
    the same losses, metrics and parameter updates, frame by frame."""
    from glassjax.model.typegroups import TypeCapacity
    import jax

    from glassjax.data.dataset import Dataset

    # the water frames with their atoms in a random order, so sorting by type has work to do
    systems = Dataset(small_h5).all_frames(None)
    big = max(systems, key=lambda f: f.natoms)
    perm = np.random.default_rng(1).permutation(big.natoms)
    systems = [replace(big, species=big.species[perm], positions=big.positions[:, perm],
                       forces=big.forces[:, perm]) if f is big else f for f in systems]
    data = tmp_path / "shuffled.h5"
    write_dataset(data, systems, val_fraction=0.25, seed=3)

    def trainer(bucket):
        cfg = _config(data, tmp_path / str(bucket), bucket=bucket, batch_size=2)
        cfg = replace(cfg, model=replace(cfg.model, precision="float64"))
        return Trainer(cfg, progress=False)

    padded, by_comp = trainer(False), trainer("composition")
    state = padded.initial_state()
    compiled = {t: t._compile() for t in (padded, by_comp)}
    keys = by_comp.loader._bucket_keys()
    assert len(set(keys)) == 2
    for comp in sorted(set(keys)):
        idx = np.flatnonzero(keys == comp)[:2]
        out = {}
        for mode, t in (("every net", padded), ("capacity", padded), ("composition", by_comp)):
            batch = t.loader.make_batch(idx)
            static = None if mode == "every net" else t._static_types(t.loader, batch)
            if mode == "capacity":
                assert isinstance(static, TypeCapacity)
                counts = [np.bincount(r[r >= 0], minlength=len(t.loader.type_map)) for r in t.loader._types]
                assert static.capacity == tuple(np.max(counts, axis=0))
            train_step, eval_step = compiled[t]
            dev = t._to_device(batch)
            metrics = eval_step(state["params"], state["constants"], 3, dev, static_types=static)
            params, _, _ = train_step(state["params"], state["opt_state"], state["constants"], 3, dev,
                                      static_types=static)
            out[mode] = (metrics, params)
        ref = out["every net"]
        moved = jax.tree_util.tree_map(lambda a, b: float(np.max(np.abs(a - b))), ref[1], state["params"])
        assert max(jax.tree_util.tree_leaves(moved)) > 1e-6  # the step did move the parameters
        for mode in ("capacity", "composition"):
            for key in ("loss", "rmse_e", "rmse_f", "rmse_v"):
                np.testing.assert_allclose(out[mode][0][key], ref[0][key], rtol=1e-10)
            jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12),
                                   out[mode][1], ref[1])
