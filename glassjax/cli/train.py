"""``glassjax train CONFIG.toml``, ``glassjax test [MODEL] DATA.h5`` and ``glassjax model-devi DATA [MODELS...]``.

A left-out MODEL (or the word ``default``) is the shipped default potential; left-out MODELS
(or ``default``) its ensemble (:mod:`glassjax.pretrained`).
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a DeepPot-SE model from a TOML config (resumes automatically)",
        description="Train a DeepPot-SE model (DeePMD-kit's loss and learning-rate schedule). "
                    "If the output folder holds checkpoints of the same run, training resumes "
                    "from the newest one; pass --restart to start over.")
    p.add_argument("config", help="training config (TOML); relative paths in it are relative to its folder")
    p.add_argument("--restart", action="store_true", help="ignore existing checkpoints and start from step 0")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)

    t = subparsers.add_parser(
        "test", help="errors of a model on a dataset: per-system table, CSV and parity plots",
        description="Per-system energy/force/virial errors (MAE, RMSE, max) of a model on a "
                    "glassjax HDF5 dataset, like the papers' Table S1, plus parity plots (PNG).")
    t.add_argument("model", nargs="?", default="default",
                   help="a DeePMD-kit .dp file or a glassjax model checkpoint (default: the shipped default potential)")
    t.add_argument("data", help="glassjax HDF5 dataset (from 'glassjax data convert')")
    t.add_argument("--split", choices=("train", "val", "all"), default="all", help="which frames (default: all)")
    t.add_argument("-o", "--output", default=None,
                   help="folder for errors.csv and parity.png (default: beside the dataset)")
    t.set_defaults(func=_test)
    register_devi(subparsers)


def _train(args) -> int:
    import shutil

    from glassjax.train.config import load_train_config
    from glassjax.train.trainer import Trainer

    cfg_path = Path(args.config)
    config = load_train_config(cfg_path)
    trainer = Trainer(config, base_dir=cfg_path.parent, progress=not args.quiet)
    if args.restart and trainer.ckpt.directory.exists():
        shutil.rmtree(trainer.ckpt.directory)
    resumed = trainer.ckpt.latest_step()
    print(f"glassjax train: type_map {trainer.type_map}, sel {trainer.sel}, "
          f"{sum(f.nframes for f in trainer.train_frames)} training frames"
          + (f"; resuming from step {resumed}" if resumed is not None else ""))
    trainer.run()
    print(f"glassjax train: wrote {trainer.out_dir / 'model.ckpt'}, {trainer.out_dir / 'model.dp'}, "
          f"{trainer.out_dir / 'lcurve.out'}")
    return 0


def _test(args) -> int:
    from glassjax.data.dataset import Dataset
    from glassjax.model import load_model
    from glassjax.pretrained import resolve_model
    from glassjax.train.evaluate import format_table, parity_plot, predict_frames, system_errors, write_csv

    args.model = str(resolve_model(args.model))
    model, variables = load_model(args.model)
    ds = Dataset(args.data)
    split = None if args.split == "all" else args.split
    rows, pairs = [], []
    for fr in ds.all_frames(split):
        if fr.nframes == 0:
            continue
        pred = predict_frames(model, variables, fr)
        rows.append(system_errors(fr, pred))
        pairs.append((fr, pred))
    out = Path(args.output) if args.output else Path(args.data).parent
    out.mkdir(parents=True, exist_ok=True)
    print(format_table(rows))
    write_csv(out / "errors.csv", rows)
    parity_plot(out / "parity.png", pairs, title=f"{Path(args.model).name} on {Path(args.data).name}")
    print(f"glassjax test: wrote {out / 'errors.csv'} and {out / 'parity.png'}")
    return 0


def register_devi(subparsers) -> None:
    d = subparsers.add_parser(
        "model-devi", help="ensemble deviation (DeePMD-kit model_devi) on a dataset or trajectory",
        description="Per-frame std of energy per atom and max/min/mean force deviation across an "
                    "ensemble of models (DeePMD-kit's definitions), for every system of a glassjax "
                    "dataset or any trajectory ASE reads; writes model_devi_<system>.out and a "
                    "cumulative-distribution plot.")
    d.add_argument("data", help="glassjax HDF5 dataset or a trajectory/structure file (extxyz, ...)")
    d.add_argument("models", nargs="*", default=[],
                   help="two or more .dp files or glassjax checkpoints (none, or 'default': the default "
                        "potential's ensemble)")
    d.add_argument("-o", "--output", default="model_devi", help="output folder (default: model_devi)")
    d.set_defaults(func=_devi)


def _devi(args) -> int:
    from glassjax.errors import ConfigError
    from glassjax.model import load_model
    from glassjax.train.deviation import devi_for_systems, format_model_devi, plot_cdf
    from glassjax.atomic_write import write_text_atomic

    if not args.models or args.models == ["default"]:
        from glassjax.pretrained import default_ensemble_paths

        args.models = [str(p) for p in default_ensemble_paths()]
    if len(args.models) < 2:
        raise ConfigError("model-devi needs at least two models")
    models = [load_model(m) for m in args.models]
    systems = _read_systems(args.data)
    devis = devi_for_systems(models, systems)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, d in devis.items():
        write_text_atomic(out / f"model_devi_{name}.out", format_model_devi(d))
        print(f"{name:<40} frames {d['devi_e'].size:5d}  devi_e median {1e3 * float(_median(d['devi_e'])):.3f} "
              f"meV/atom  max_devi_f median {float(_median(d['max_devi_f'])):.3f} eV/Å")
    plot_cdf(out / "model_devi_cdf.png", devis)
    print(f"glassjax model-devi: wrote {out}/model_devi_*.out and {out / 'model_devi_cdf.png'}")
    return 0


def _median(x):
    import numpy as np

    return np.median(x)


def _read_systems(path):
    """Systems of a glassjax dataset, or of any file the data readers understand."""
    import h5py

    from glassjax.data import read_any
    from glassjax.data.dataset import Dataset

    p = Path(path)
    if p.is_file() and h5py.is_hdf5(p):
        return [f for f in Dataset(p).all_frames(None) if f.nframes]
    return read_any(p)
