"""`vidiff fit|validate|test|predict`: Lightning's CLI with vidiff's defaults.

Model and data are chosen in YAML by ``class_path`` (subclass mode): any LightningModule, e.g.
``vidiff.lit.VideoDiffusion`` with any net or ``vidiff.lit.autoencoder.AutoencoderModule``, and
``vidiff.data.ShapesDataModule`` or ``vidiff.data.VideoFolderDataModule``. Always-on callbacks get their own
config sections:

* ``checkpoint``: :class:`~vidiff.lit.checkpoint.RunCheckpoint` (``last.ckpt`` + best by ``val/loss``, in
  ``<trainer.default_root_dir>/checkpoints``), written atomically by :class:`~vidiff.lit.checkpoint.AtomicCheckpointIO`;
* ``samples``: :class:`~vidiff.lit.callbacks.SampleVideos` (mp4s in ``<default_root_dir>/samples/step_NNNNNN``);
* ``resume``: :class:`~vidiff.lit.callbacks.ResumeState` (exact ``--ckpt_path last`` resume);
* ``context_use``: :class:`~vidiff.lit.callbacks.ContextUse` (does the model use its observed frames? logged at
  every validation and in the end-of-fit summary).

TensorBoard logs (and the resolved ``config.yaml``) go to ``<default_root_dir>/lightning_logs/version_N``; a
second run into the same folder gets the next version. A fresh fit into a folder that holds checkpoints is refused
(:class:`~vidiff.lit.run_folder.RunFolderGuard`): ``--ckpt_path last`` continues the run, ``--overwrite true``
moves the old checkpoints aside.
"""

from __future__ import annotations

import importlib
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.plugins.io import CheckpointIO
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from jsonargparse import ArgumentError

from vidiff.io.checkpoint import load_torch_file
from vidiff.io.errors import ConfigError, UserError, debug_enabled
from vidiff.lit.config_errors import config_problems, summarize_instantiation_error, summarize_parse_error
from vidiff.lit.callbacks import ContextUse, LossSummary, PredictVideos, ResumeState, SampleVideos
from vidiff.lit.progress import step_progress_bar
from vidiff.lit.checkpoint import AtomicCheckpointIO, RunCheckpoint
from vidiff.lit.run_folder import RunFolderGuard, checkpoint_folders

log = logging.getLogger(__name__)

#: Values LightningCLI uses when a config says nothing about them.
TRAINER_DEFAULTS: dict[str, Any] = {"default_root_dir": "runs/vidiff"}

#: Settings that must agree between ``model.init_args`` and ``data.init_args``.
SHARED_KEYS = ("image_size", "max_frames")


def _import_builtin_parts() -> None:
    """Import vidiff's modules so YAML may name them by class name alone (``class_path: ShapesDataModule``)."""
    for name in ("vidiff.lit.video_diffusion", "vidiff.lit.autoencoder", "vidiff.data"):
        try:
            importlib.import_module(name)
        except ImportError as err:  # pragma: no cover - only while a package is incomplete
            log.debug("%s not importable: %s", name, err)


def check_shared_settings(model_value, data_value) -> None:
    """Refuse a model and data module that disagree on a :data:`SHARED_KEYS` setting (``model_value(key)`` and
    ``data_value(key)`` read them). Values that are not positive integers are left to the classes' own checks,
    which name the problem better."""
    for key in SHARED_KEYS:
        m, d = model_value(key), data_value(key)
        valid = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (m, d))
        if valid and m != d:
            raise ConfigError(
                f"model.init_args.{key} is {m} but data.init_args.{key} is {d}; they must agree: set both to the "
                f"same value (e.g. --data.init_args.{key} {m})"
            )


class VidiffCLI(LightningCLI):
    """LightningCLI with vidiff's checkpointing, sample videos, exact resume and atomic checkpoint files."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
        parser.add_lightning_class_args(SampleVideos, "samples")
        parser.add_lightning_class_args(ResumeState, "resume")
        parser.add_lightning_class_args(ContextUse, "context_use")
        parser.add_argument(
            "--overwrite",
            type=bool,
            default=False,
            help="fit: move the checkpoints of an earlier run in the folder to checkpoints.replaced-<time> and "
            "start afresh (without it such a fit is refused; --ckpt_path last continues the earlier run)",
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse; a bad config ends in one line per problem, each naming the key, the value and the fix
        (:mod:`vidiff.lit.config_errors`), instead of jsonargparse's usage text."""
        try:
            super().parse_arguments(parser, args)
        except ArgumentError as err:
            if debug_enabled():
                raise
            argv = list(sys.argv[1:] if args is None else args)
            subparser = self._subcommand_parsers.get(argv[0]) if argv else None
            subparser = subparser or parser
            problems = config_problems(argv[1:], subparser)
            summary = summarize_parse_error(str(err), subparser)
            if not any(p.split(":")[0] == summary.split(":")[0] for p in problems):
                problems.append(summary)
            raise ConfigError("\n".join(problems)) from err

    def instantiate_classes(self) -> None:
        """Build model, data and trainer; a constructor's refusal of a setting ends in one line naming its key."""
        try:
            super().instantiate_classes()
        except UserError:
            raise
        except (ValueError, TypeError, FileNotFoundError, NotADirectoryError, MisconfigurationException) as err:
            if debug_enabled():
                raise
            raise ConfigError(summarize_instantiation_error(err)) from err

    def _parse_ckpt_path(self) -> None:
        # Lightning reads --ckpt_path's hyperparameters here with a bare torch.load; an unsafe or corrupt file
        # must end in one line (vidiff.io.errors), so check it first (mmap: the tensors are not read)
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        special = ("last", "best", "hpc", "registry")
        if ckpt_path and "://" not in str(ckpt_path) and str(ckpt_path) not in special and not Path(ckpt_path).exists():
            root = self.config[subcommand].get("trainer", {}).get("default_root_dir") or "the run folder"
            raise ConfigError(
                f"ckpt_path: no checkpoint file at {str(ckpt_path)!r}; give an existing .ckpt file, or "
                f"`--ckpt_path last` to continue the run in {root}"
            )
        if ckpt_path and "://" not in str(ckpt_path) and Path(ckpt_path).is_file():
            load_torch_file(ckpt_path, mmap=True)
        super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        """Refuse model and data settings that disagree before anything is built (one line, with the fix)."""
        config = self.config.get(self.subcommand) if self.subcommand else self.config
        args = {
            part: (config.get(part) or {}).get("init_args") if hasattr(config.get(part), "get") else None
            for part in ("model", "data")
        }
        if args["model"] is None or args["data"] is None:
            return
        check_shared_settings(args["model"].get, args["data"].get)

    def after_instantiate_classes(self) -> None:
        model, data = self.model, self.datamodule
        if data is None:
            return
        if hasattr(data, "resume") and hasattr(data, "load_state_dict"):
            # vidiff's data modules restart their sampler mid-epoch, which Lightning's loader check cannot see
            warnings.filterwarnings(
                "ignore", message=r"You're resuming from a checkpoint that ended before the epoch"
            )
        check_shared_settings(lambda key: getattr(model, key, None), getattr(data, "hparams", {}).get)

    def before_fit(self) -> None:
        """``--ckpt_path last`` with no ``last.ckpt`` yet: say in one line that a new run starts (decided in
        docs/decisions.md: auto-resume scripts may always pass it) instead of Lightning's hint about save_last."""
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") != "last":
            return
        folders = checkpoint_folders(self.trainer)
        if not any((folder / "last.ckpt").is_file() for folder in folders):
            where = ", ".join(str(f) for f in folders) or self.trainer.default_root_dir
            print(f"vidiff fit: --ckpt_path last: no last.ckpt in {where} yet; starting a new run there")
            config["ckpt_path"] = None

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        plugins = kwargs.pop("plugins", None) or self._get(self.config_init, "trainer", default={}).get(
            "plugins"
        )
        plugins = (
            list(plugins) if isinstance(plugins, (list, tuple)) else [] if plugins is None else [plugins]
        )
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())
        trainer = super().instantiate_trainer(plugins=plugins, **kwargs)
        # Lightning's default progress bar -> the same kind counted in steps of max_steps
        trainer.callbacks[:] = [step_progress_bar(c) for c in trainer.callbacks]
        overwrite = bool(self._get(self.config_init, "overwrite", default=False))
        guard = RunFolderGuard(overwrite=overwrite)
        guard.note_log_dir(trainer)
        trainer.callbacks.insert(0, guard)
        trainer.callbacks.append(LossSummary())
        if self.subcommand == "predict":
            trainer.callbacks.append(PredictVideos())
        return trainer


def run_lightning_cli(argv: Sequence[str], run: bool = True) -> VidiffCLI:
    """Run ``vidiff fit|validate|test|predict ...``; ``argv`` starts with the subcommand.

    Returns the CLI object (``.trainer``, ``.model``, ``.datamodule``); with ``run=False`` (no subcommand in
    ``argv``) it only parses and instantiates.
    """
    _import_builtin_parts()
    saved = sys.argv
    sys.argv = ["vidiff", *argv]  # LightningCLI reads sys.argv; this also makes usage lines say "vidiff"
    try:
        cli = VidiffCLI(
            pl.LightningModule,
            pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            trainer_defaults=TRAINER_DEFAULTS,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            parser_kwargs={"prog": "vidiff", "exit_on_error": False},  # errors: VidiffCLI.parse_arguments
            run=run,
        )
    finally:
        sys.argv = saved
    if run and cli.subcommand == "fit" and cli.trainer.is_global_zero:
        _report(cli)
    return cli


def _report(cli: VidiffCLI) -> None:
    """Tell the user where the run's files are."""
    trainer = cli.trainer
    ckpt = trainer.checkpoint_callback
    root = Path(trainer.default_root_dir)
    lines = [f"vidiff fit: {trainer.global_step} steps in {root}/"]
    for callback in trainer.callbacks:
        if isinstance(callback, LossSummary) and callback.summary() is not None:
            first, last, n = callback.summary()
            steps = "step" if n == 1 else f"{n} steps"
            lines.append(f"  training loss:   {first:.4f} (mean of the first {steps}) -> {last:.4f} (last {steps})")
        if isinstance(callback, ContextUse) and callback.last is not None:
            from vidiff.metrics.context import format_context_use

            lines.append(
                f"  context use:     {format_context_use(callback.last)} (1.0 = observed frames ignored)"
            )
    guard = getattr(cli.model, "loss_guard", None)
    if guard is not None and getattr(cli.model, "on_nonfinite", None) == "skip":
        lines.append(f"  skipped steps:   {guard.summary()} (on_nonfinite=skip)")
    if ckpt is not None and getattr(ckpt, "last_model_path", ""):
        lines.append(f"  last checkpoint: {ckpt.last_model_path}")
    if ckpt is not None and getattr(ckpt, "best_model_path", ""):
        lines.append(f"  best checkpoint: {ckpt.best_model_path}")
    samples = root / "samples"
    if samples.is_dir():
        lines.append(f"  sample videos:   {samples}/step_*/sample_*.mp4")
    if trainer.log_dir:
        lines.append(f"  TensorBoard:     tensorboard --logdir {trainer.log_dir}")
    print("\n".join(lines))
