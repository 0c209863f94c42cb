"""The training loop on a real DeePMD-kit data set (water, LGPL, tests/data/deepmd).

One small model and one 48-frame subset are shared by the tests (module fixtures), so
each jit compile happens a few times only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import jax
import numpy as np
import pytest

from glassjax.data import read_deepmd
from glassjax.data.dataset import write_dataset
from glassjax.errors import ConfigError
from glassjax.train.config import (DescriptorSection, FittingSection, LearningRateSection, ModelSection,
                                   TrainConfig, TrainingSection)
from glassjax.train.trainer import Trainer, neighbor_counts, read_lcurve


@pytest.fixture(scope="module")
def water_h5(tmp_path_factory, test_data):
    (fr,) = read_deepmd(test_data / "deepmd" / "water_deepmdkit_example" / "data_1")
    path = tmp_path_factory.mktemp("water") / "water.h5"
    write_dataset(path, [fr.select(slice(0, 48))], val_fraction=0.25, seed=1)
    return path, fr.select(slice(0, 48))


def _config(data, out, steps=120, **training):
    return TrainConfig(
        model=ModelSection(descriptor=DescriptorSection(rcut=4.0, rcut_smth=3.5, sel="auto", neuron=[4, 8],
                                                        axis_neuron=4),
                           fitting=FittingSection(neuron=[16, 16])),
        learning_rate=LearningRateSection(start_lr=1e-2, stop_lr=2e-3, decay_steps=40),
        training=TrainingSection(data=str(data), numb_steps=steps, batch_size=2, disp_freq=10, save_freq=20,
                                 val_batches=6, output_dir=str(out), stat_frames_per_system=4, **training))


@pytest.fixture(scope="module")
def plain_run(water_h5, tmp_path_factory):
    """A 20-step run of the small model (the ZBL and fine-tuning tests start from it)."""
    path, _ = water_h5
    cfg = _config(path, tmp_path_factory.mktemp("plain"), steps=20)
    tr = Trainer(cfg, progress=False)
    tr.run()
    return cfg, tr


def test_sel_auto_matches_a_direct_neighbour_count(water_h5):
    path, fr = water_h5
    counts = neighbor_counts([fr], ["O", "H"], 4.0)
    # reference: the per-type counts of the descriptor's own JAX neighbour sections, every frame
    # (neighbor_counts itself uses numpy/ASE pairs)
    import jax.numpy as jnp

    from glassjax.model import nlist as dpnl

    best = np.zeros(2, int)
    types = fr.types(["O", "H"])
    for f in range(fr.nframes):
        sec = dpnl.build_sections(jnp.asarray(fr.positions[f]), jnp.asarray(fr.cells[f]), types, 4.0, (200, 200))
        best = np.maximum(best, np.asarray(sec.counts).max(axis=0))
    np.testing.assert_array_equal(counts["per_type"], best)


def test_training_lowers_validation_force_error_and_resume_reproduces_the_run(water_h5, tmp_path):
    path, _ = water_h5
    full = Trainer(_config(path, tmp_path / "full"), progress=False)
    untrained = full.validate(full.initial_state())
    full.run()
    curve = read_lcurve(tmp_path / "full" / "lcurve.out")
    assert curve.shape[0] == 12
    # the loss falls and validation force RMSE beats the untrained model by a wide margin
    assert curve[-1, 2] < 0.5 * curve[0, 2]
    assert curve[-1, 5] < 0.6 * untrained["rmse_f"]
    assert (tmp_path / "full" / "model.dp").is_file() and (tmp_path / "full" / "lcurve.png").is_file()

    # a run "killed" after 50 steps (last checkpoint at 40) and resumed by a new Trainer
    killed = Trainer(_config(path, tmp_path / "resumed"), progress=False)
    assert killed.run(stop_after=50) is None
    assert killed.ckpt.latest_step() == 40
    resumed = Trainer(_config(path, tmp_path / "resumed"), progress=False)
    resumed.run()
    again = read_lcurve(tmp_path / "resumed" / "lcurve.out")
    np.testing.assert_array_equal(again[:, 0], curve[:, 0])
    np.testing.assert_allclose(again, curve, rtol=1e-10, atol=1e-14)


def test_bad_configs_fail_before_any_compute(water_h5, tmp_path):
    path, _ = water_h5
    base = _config(path, tmp_path / "bad")
    with pytest.raises(ConfigError, match="sel is too small"):
        Trainer(replace(base, model=replace(base.model, descriptor=replace(base.model.descriptor, sel=[4, 4]))))
    with pytest.raises(ConfigError, match=r"elements \['H'\] .* not in model.type_map"):
        Trainer(replace(base, model=replace(base.model, type_map=["O"])))
    with pytest.raises(ConfigError, match="rcut_smth < rcut"):
        DescriptorSection(rcut=3.0, rcut_smth=3.5)
    with pytest.raises(ConfigError, match="dataset file .* not found"):
        Trainer(replace(base, training=replace(base.training, data=str(tmp_path / "nope.h5"))))
    toml = tmp_path / "c.toml"
    toml.write_text("[training]\nnumb_step = 10\n")
    from glassjax.train.config import load_train_config

    with pytest.raises(ConfigError, match="unknown key 'training.numb_step'; did you mean 'numb_steps'"):
        load_train_config(toml)


def test_training_a_dp_zbl_model(water_h5, plain_run, tmp_path):
    """[model.zbl]: on data where no atom comes closer than sw_rmax the pair table has zero
    weight, so training follows the plain model's run exactly; the exported DeePMD-kit
    "zbl" model then adds the repulsive wall at close contact."""
    from glassjax.model import load_model
    from glassjax.train.config import ZBLSection

    path, fr = water_h5
    plain_cfg, _ = plain_run
    plain_dir = Path(plain_cfg.training.output_dir)
    zbl_cfg = replace(plain_cfg, model=replace(plain_cfg.model, zbl=ZBLSection(sw_rmin=0.5, sw_rmax=0.8)),
                      training=replace(plain_cfg.training, output_dir=str(tmp_path / "zbl")))
    Trainer(zbl_cfg, progress=False).run()
    np.testing.assert_allclose(read_lcurve(tmp_path / "zbl" / "lcurve.out"),
                               read_lcurve(plain_dir / "lcurve.out"), rtol=1e-10, atol=1e-14)
    m, v = load_model(tmp_path / "zbl" / "model.dp", dtype="float64")
    m0, v0 = load_model(plain_dir / "model.dp", dtype="float64")
    assert m.config.zbl is not None and m0.config.zbl is None
    types = m.types_from_species(fr.species)
    pos, cell = np.array(fr.positions[0]), np.array(fr.cells[0])
    assert float(m.energy(v, pos, cell, types)) == pytest.approx(float(m0.energy(v0, pos, cell, types)), abs=1e-9)
    o, h = int(np.flatnonzero(types == 0)[0]), int(np.flatnonzero(types == 1)[0])
    vec = pos[h] - pos[o]
    vec -= np.round(vec @ np.linalg.inv(cell)) @ cell
    pos[h] = pos[o] + 0.3 * vec / np.linalg.norm(vec)           # O-H at 0.3 Å: the ZBL wall
    assert float(m.energy(v, pos, cell, types)) - float(m0.energy(v0, pos, cell, types)) > 10.0
    # sw_rmax above the data's closest O-H distance (~0.9 Å) would change the training frames
    with pytest.raises(ConfigError, match="lower sw_rmax"):
        Trainer(replace(zbl_cfg, model=replace(zbl_cfg.model, zbl=ZBLSection(sw_rmin=0.5, sw_rmax=1.2))))


def test_fine_tuning_starts_from_another_runs_weights(water_h5, plain_run, tmp_path):
    """training.init_from: weights and statistics of the source run, fresh optimizer at step
    0; its first validation equals the source model's, and a different model size is refused."""
    path, _ = water_h5
    src_cfg, src = plain_run
    ft_cfg = _config(path, tmp_path / "ft", steps=20)
    ft_cfg = replace(ft_cfg, training=replace(ft_cfg.training, init_from=src_cfg.training.output_dir))
    ft = Trainer(ft_cfg, progress=False)
    st = ft.initial_state()
    assert st["step"] == 0
    restored, _ = src.ckpt.restore({**src._fresh_state(), "loader": {"epoch": 0, "step": 0}})
    for a, b in zip(jax.tree_util.tree_leaves(st["params"]), jax.tree_util.tree_leaves(restored["params"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert ft.validate(st)["rmse_f"] == pytest.approx(src.validate(restored)["rmse_f"], rel=1e-12)
    bad = replace(ft_cfg, model=replace(ft_cfg.model, fitting=FittingSection(neuron=[8, 8])))
    with pytest.raises(ConfigError, match="init_from.*other shapes"):
        Trainer(bad, progress=False).initial_state()
