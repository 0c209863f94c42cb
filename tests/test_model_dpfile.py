"""DeePMD-kit .dp import/export, glassjax checkpoints, and data statistics (davg/dstd against
the values DeePMD-kit itself computed for the reference models; energy bias fits)."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from glassjax.data.frames import Frames
from glassjax.errors import ConfigError, ModelError
from glassjax.model import DeepPot, DeepPotConfig, DescriptorConfig, FittingConfig, load_model, save_checkpoint, save_dp
from glassjax.model import dpfile
from glassjax.model.stats import environment_stats, fit_energy_bias

TEST_DATA = Path(__file__).resolve().parent / "data"

REF = TEST_DATA / "deepmd_models"
INDEX = json.loads((REF / "index.json").read_text()) if (REF / "index.json").is_file() else None
needs_ref = pytest.mark.skipif(INDEX is None, reason="no DeePMD-kit reference data")


def _leaves(tree, prefix=""):
    for k, v in sorted(tree.items()):
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}/{k}")
        else:
            yield f"{prefix}/{k}", np.asarray(v)


def _same_variables(a, b):
    la, lb = dict(_leaves(a)), dict(_leaves(b))
    assert la.keys() == lb.keys()
    for k in la:
        assert la[k].shape == lb[k].shape and np.array_equal(la[k], lb[k]), k


def _schema(obj):
    """The structure of a model dict: keys, list lengths, and non-array values' types."""
    if isinstance(obj, dict):
        return {k: _schema(v) for k, v in obj.items() if k not in ("time", "version", "software")}
    if isinstance(obj, list):
        return [_schema(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return ("array", obj.shape, obj.dtype.str)
    return type(obj).__name__


@needs_ref
def test_reference_file_round_trip_keeps_arrays_and_structure(tmp_path):
    src = REF / "lbs_pair_embrdt.dp"
    model, v = load_model(src, dtype="float64")
    out = tmp_path / "again.dp"
    save_dp(out, model, v)
    model2, v2 = load_model(out, dtype="float64")
    assert model2.config == model.config
    _same_variables(v, v2)
    a, b = dpfile.read_dp_dict(src), dpfile.read_dp_dict(out)
    assert _schema(a["model"]) == _schema(b["model"])


@needs_ref
@pytest.mark.parametrize("name", ["lbs_tos_rdt", "lbs_pair_nordt", "bo_pair_rdt"])
def test_fresh_export_has_deepmd_kits_layout(tmp_path, name):
    """A model written from scratch (no template) has exactly the dictionary layout, array
    shapes and dtypes that DeePMD-kit 3.2.0 wrote for a model of the same hyper-parameters."""
    model, v = load_model(REF / f"{name}.dp", dtype="float64")
    fresh = DeepPot(model.config, dtype="float64")  # no template remembered
    save_dp(tmp_path / "fresh.dp", fresh, v)
    ours = dpfile.read_dp_dict(tmp_path / "fresh.dp")
    theirs = dpfile.read_dp_dict(REF / f"{name}.dp")
    assert _schema(ours["model"]) == _schema(theirs["model"])
    for key in ("descriptor", "fitting"):
        for field in ("rcut", "rcut_smth", "sel", "neuron", "axis_neuron", "type_one_side", "resnet_dt",
                      "activation_function", "precision", "mixed_types", "ntypes", "dim_descrpt"):
            if field in theirs["model"][key]:
                assert ours["model"][key][field] == theirs["model"][key][field], (key, field)
    _same_variables(load_model(tmp_path / "fresh.dp", dtype="float64")[1], v)


def test_checkpoint_round_trip(tmp_path):
    cfg = DeepPotConfig(DescriptorConfig(type_map=("Li", "O"), rcut=3.5, rcut_smth=1.0, sel=(6, 10), neuron=(3, 6),
                                         axis_neuron=2, switch="cosine"), FittingConfig(neuron=(5,)))
    model = DeepPot(cfg, dtype="float64")
    v = model.init(4)
    save_checkpoint(tmp_path / "m.h5", model, v, metadata={"note": "test"})
    model2, v2 = load_model(tmp_path / "m.h5", dtype="float64")
    assert model2.config == cfg
    _same_variables(v, v2)
    # the cosine switch cannot be represented in DeePMD-kit: refused, not silently changed
    with pytest.raises(ModelError, match="quintic"):
        save_dp(tmp_path / "m.dp", model, v)


def test_bad_model_files_raise_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.dp")
    (tmp_path / "junk.dp").write_text("not hdf5")
    with pytest.raises(ModelError, match="junk.dp"):
        load_model(tmp_path / "junk.dp")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ModelError, match="neither"):
        load_model(tmp_path / "other.h5")


@needs_ref
def test_unsupported_descriptor_is_named(tmp_path):
    d = dpfile.read_dp_dict(REF / "lbs_tos_rdt.dp")
    d["model"]["descriptor"]["type"] = "se_e2_r"
    dpfile.write_dp_dict(tmp_path / "r.dp", d)
    with pytest.raises(ModelError, match="se_e2_r"):
        load_model(tmp_path / "r.dp")
    d = dpfile.read_dp_dict(REF / "lbs_tos_rdt.dp")
    d["model"]["descriptor"]["exclude_types"] = [[0, 1]]
    dpfile.write_dp_dict(tmp_path / "x.dp", d)
    with pytest.raises(ModelError, match="exclude_types"):
        load_model(tmp_path / "x.dp")


@needs_ref
@pytest.mark.parametrize("name", ["lbs_pair_smallsel"])
def test_environment_statistics_equal_deepmd_kits(name):
    """davg/dstd in the reference .dp files were computed by DeePMD-kit's compute_input_stats
    from the structures listed in index.json (the smallsel model also truncates by sel)."""
    model, v = load_model(REF / f"{name}.dp", dtype="float64")
    frames = []
    for s in INDEX["models"][name]["stats_from"]:
        z = np.load(REF / f"{name}__{s}.npz")
        frames.append(Frames(species=z["species"], positions=z["positions"][None], cells=z["cell"][None], name=s))
    davg, dstd = environment_stats(model.config, frames)
    assert np.allclose(davg, np.asarray(v["constants"]["davg"]), rtol=1e-10, atol=1e-12)
    assert np.allclose(dstd, np.asarray(v["constants"]["dstd"]), rtol=1e-10, atol=1e-12)


def test_energy_bias_full_rank_recovers_per_type_energies():
    rng = np.random.default_rng(0)
    counts = rng.integers(5, 40, size=(12, 3))
    true = np.array([-2.0, -7.5, -4.25])
    e = counts @ true + rng.normal(scale=1e-6, size=12)
    fit = fit_energy_bias(counts, e, method="ridge", alpha=1e-10)
    assert fit.rank == 3
    assert np.allclose(fit.bias, true, atol=1e-5)
    assert np.allclose(fit.bias, np.linalg.lstsq(counts, e, rcond=None)[0], atol=1e-5)


def test_energy_bias_single_composition_is_well_defined():
    """One glass composition (Li2O.2B2O3, 9 Li : 18 B : 36 O): counts have rank 1."""
    counts = np.tile([[9, 18, 36]], (8, 1))
    e = -400.0 + np.linspace(-1, 1, 8)
    fit = fit_energy_bias(counts, e, method="ridge")
    assert fit.rank == 1 and np.all(np.isfinite(fit.bias))
    # the mean energy is reproduced, and the data cannot distinguish the types: each gets
    # the mean energy per atom
    assert abs(counts[0] @ fit.bias - e.mean()) < 1e-9
    assert np.allclose(fit.bias, e.mean() / counts[0].sum(), atol=1e-9)
    # plain least squares on the same data is rank-deficient (what the ridge fit avoids)
    assert np.linalg.matrix_rank(counts.T @ counts) == 1
    ref = fit_energy_bias(counts, e, method="reference", reference={"Li": -0.3, "B": -1.1, "O": -0.9},
                          type_map=["Li", "B", "O"])
    assert ref.method == "reference"
    assert abs(counts[0] @ ref.bias - e.mean()) < 1e-9  # the common shift absorbs the offset
    assert np.allclose(np.diff(ref.bias), np.diff([-0.3, -1.1, -0.9]))  # differences kept
    with pytest.raises(ConfigError):
        fit_energy_bias(counts, e, method="reference", reference={"Li": 0.0}, type_map=["Li", "B", "O"])
