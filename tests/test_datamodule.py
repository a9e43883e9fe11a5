"""Data modules: batches, reproducible order and masks, exact mid-epoch resume, splits, config errors."""

import shutil
from pathlib import Path

import imageio
import numpy as np
import pytest
import torch

from vidiff.data import EpochSampler, ShapesDataModule, VideoFolderDataModule


def _tiny(**kwargs) -> ShapesDataModule:
    args = {"image_size": 16, "length": 20, "max_frames": 4, "train_videos": 12, "val_videos": 5, "seed": 7}
    return ShapesDataModule(**{"batch_size": 3, **args, **kwargs})


def _epoch(dm: ShapesDataModule, epoch: int) -> list[dict]:
    loader = dm.train_dataloader()
    dm.train_sampler.set_epoch(epoch)
    return list(loader)


def _same(a: list[dict], b: list[dict]) -> bool:
    keys = ("video", "frame_idx", "observed", "index")
    return len(a) == len(b) and all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in keys)


def test_shapes_batches_have_the_sample_layout():
    batch = next(iter(_tiny().train_dataloader()))
    assert batch["video"].shape == (3, 4, 3, 16, 16)
    assert batch["frame_idx"].shape == (3, 4) and batch["frame_idx"].dtype == torch.long
    assert batch["observed"].dtype == torch.bool and batch["valid"].all()
    assert len(batch["caption"]) == 3 and batch["centers"].shape == (3, 3, 4, 2)


def test_train_order_is_a_pure_function_of_seed_and_epoch():
    a, b = _epoch(_tiny(), 0), _epoch(_tiny(), 0)
    assert _same(a, b)
    assert not _same(a, _epoch(_tiny(), 1))
    assert not _same(a, _epoch(_tiny(seed=8), 0))
    seen = torch.cat([x["index"] for x in a]).sort().values
    assert seen.tolist() == list(range(12)), "every train video once per epoch"


def test_workers_do_not_change_the_batches():
    assert _same(_epoch(_tiny(), 2), _epoch(_tiny(num_workers=2), 2))


def test_loading_does_not_touch_the_global_rng():
    dm = _tiny()
    state = torch.get_rng_state()
    _epoch(dm, 0)
    list(dm.val_dataloader())
    assert torch.equal(state, torch.get_rng_state())


def test_resume_mid_epoch_continues_the_same_batches():
    full = _epoch(_tiny(), 1)
    dm = _tiny()
    dm.resume(epoch=1, batches_done=2)
    loader = dm.train_dataloader()
    dm.train_sampler.set_epoch(1)  # what Lightning does at the start of the epoch
    rest = list(loader)
    assert _same(rest, full[2:])
    assert _same(list(loader), full), "the skip applies once; a later pass over the epoch is whole"


def test_validation_is_deterministic_and_disjoint_from_train():
    dm = _tiny()
    v1 = list(dm.val_dataloader())
    dm.train_sampler = None
    _epoch(dm, 3)
    v2 = list(_tiny().val_dataloader())
    assert _same(v1, v2)
    val_video = dm.val_dataset.render(0, [0, 1])
    assert all(not torch.equal(val_video, dm.train_dataset.render(i, [0, 1])) for i in range(12))
    assert torch.equal(
        val_video,
        ShapesDataModule(
            train_videos=17, val_videos=1, seed=7, image_size=16, length=20, max_frames=4
        ).train_dataset.render(12, [0, 1]),
    )


def test_epoch_sampler_shards_ranks_disjointly():
    ranks = [EpochSampler(10, seed=1, num_replicas=3, rank=r) for r in range(3)]
    orders = [s.order(4) for s in ranks]
    assert all(len(o) == 4 for o in orders)
    flat = [i for o in orders for i in o]
    assert set(flat) == set(range(10)) and len(flat) == 12  # two wrapped to even out the ranks
    assert list(ranks[0]) == [(0, i) for i in ranks[0].order(0)]


def test_yaml_config_through_jsonargparse():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(ShapesDataModule, "data")
    cfg = parser.parse_string(
        "data:\n  image_size: 16\n  length: 30\n  max_frames: 5\n"
        "  tasks: {prediction: 2.0, interpolation: 1.0}\n"
        "  speed: [1.0, 1.5]\n  train_videos: 4\n  val_videos: 2\n"
    )
    dm = parser.instantiate_classes(cfg).data
    assert dm.sampler.max_frames == 5 and dm.sampler.tasks["prediction"] == 2.0
    assert dm.train_dataset.speed == (1.0, 1.5) and len(dm.val_dataset) == 2


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"image_size": -1}, "image_size"),
        ({"max_frames": 30}, "max_frames"),
        ({"tasks": {"predction": 1.0}}, "predction"),
        ({"batch_size": 0}, "batch_size"),
        ({"num_workers": -1}, "num_workers"),
        ({"val_videos": -2}, "val_videos"),
        ({"spacing": "linear"}, "spacing"),
    ],
)
def test_shapes_config_errors_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        _tiny(**kwargs)


# --------------------------------------------------------------------------------------------- video folder
@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    pytest.importorskip("decord")
    root = tmp_path_factory.mktemp("vf")
    for i in range(6):
        with imageio.get_writer(root / f"v{i}.mp4", fps=8, codec="libx264", macro_block_size=8) as w:
            for f in range(10 + i):
                w.append_data(np.full((16, 16, 3), 15 * f, np.uint8))
    (root / "v0.txt").write_text("first")
    return root


def test_video_folder_module_splits_deterministically(folder):
    dm = VideoFolderDataModule(
        str(folder), image_size=8, max_frames=4, val_fraction=0.3, batch_size=2, seed=1
    )
    dm.prepare_data()
    dm.setup("fit")
    train, val = dm.train_dataset.paths, dm.val_dataset.paths
    assert set(train).isdisjoint(val) and len(train) + len(val) == 6 and val
    other = VideoFolderDataModule(
        str(folder), image_size=8, max_frames=4, val_fraction=0.3, batch_size=2, seed=1
    )
    other.setup("fit")
    assert other.val_dataset.paths == val
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (2, 4, 3, 8, 8) and batch["valid"].all()
    v1, v2 = list(dm.val_dataloader()), list(other.val_dataloader())
    assert _same(v1, v2)


def test_video_folder_module_rebuild_index(folder, tmp_path, monkeypatch):
    folder = Path(shutil.copytree(folder, tmp_path / "videos"))  # the shared folder's index stays as it is
    VideoFolderDataModule(str(folder), image_size=8, max_frames=4).prepare_data()  # the index is cached
    counted = []
    monkeypatch.setattr("vidiff.data.video_index.count_frames", lambda p, b="auto": counted.append(p) or 10)
    VideoFolderDataModule(str(folder), image_size=8, max_frames=4).prepare_data()
    assert counted == []
    dm = VideoFolderDataModule(str(folder), image_size=8, max_frames=4, rebuild_index=True)
    dm.prepare_data()
    assert len(counted) == 6
    dm.setup("fit")  # setup reads the rebuilt index, no second recount
    assert len(counted) == 6 and dm.train_dataset.num_frames(0) == 10


def test_video_folder_module_with_val_root(folder):
    dm = VideoFolderDataModule(str(folder), val_root=str(folder), image_size=8, max_frames=4, clip_length=6)
    dm.setup("fit")
    assert len(dm.train_dataset) == len(dm.val_dataset) == 6
    assert int(next(iter(dm.val_dataloader()))["frame_idx"].max()) < 6


def test_video_folder_module_errors(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="root: .*nope"):
        VideoFolderDataModule(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="val_root"):
        VideoFolderDataModule(str(folder), val_root=str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="max_frames"):
        VideoFolderDataModule(str(folder), max_frames=8, clip_length=4)
    with pytest.raises(ValueError, match="val_fraction"):
        VideoFolderDataModule(str(folder), val_fraction=1.5)
    with pytest.raises(ValueError, match="frame_stride"):
        VideoFolderDataModule(str(folder), frame_stride=0)
    with pytest.raises(ValueError, match="clip_length: 50 frames"):
        VideoFolderDataModule(str(folder), clip_length=50).setup("fit")


def test_lightning_sets_the_epoch_of_the_train_sampler(tmp_path):
    import pytorch_lightning as pl

    class Recorder(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))
            self.seen: dict[int, list[int]] = {}

        def training_step(self, batch, batch_idx):
            self.seen.setdefault(self.current_epoch, []).extend(batch["index"].tolist())
            return (self.w - batch["video"].mean()) ** 2

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm, model = _tiny(val_videos=0), Recorder()
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm)
    for epoch in range(2):
        assert model.seen[epoch] == EpochSampler(12, seed=7).order(epoch)
    assert model.seen[0] != model.seen[1]


def test_lightning_mid_epoch_resume_sees_the_same_batches(tmp_path):
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint

    class Recorder(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))
            self.seen: list[list[int]] = []

        def training_step(self, batch, batch_idx):
            self.seen.append(batch["index"].tolist())
            return (self.w - batch["video"].mean()) ** 2

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    def trainer(root, **kwargs):
        quiet = {"logger": False, "enable_progress_bar": False, "enable_model_summary": False}
        return pl.Trainer(accelerator="cpu", default_root_dir=root, max_epochs=2, **quiet, **kwargs)

    full = Recorder()
    trainer(tmp_path / "a", enable_checkpointing=False).fit(full, datamodule=_tiny(val_videos=0))
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=6, save_top_k=-1)
    first = Recorder()
    trainer(tmp_path / "b", max_steps=6, callbacks=[ckpt]).fit(first, datamodule=_tiny(val_videos=0))
    second = Recorder()
    path = next((tmp_path / "ck").glob("*step=6*.ckpt"))
    trainer(tmp_path / "b", enable_checkpointing=False).fit(
        second, datamodule=_tiny(val_videos=0), ckpt_path=path
    )
    assert len(full.seen) == 8 and first.seen == full.seen[:6]  # 4 batches per epoch: stopped in epoch 1
    assert second.seen == full.seen[6:]


def test_train_sampler_shards_by_the_trainers_rank():
    from types import SimpleNamespace

    orders = []
    for rank in range(2):
        dm = _tiny()
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        dm.train_dataloader()
        assert (dm.train_sampler.num_replicas, dm.train_sampler.rank) == (2, rank)
        orders.append(dm.train_sampler.order(0))
    assert sorted(orders[0] + orders[1]) == list(range(12))


def test_predict_and_test_loaders_are_the_validation_split():
    from vidiff.data import ShapesDataModule

    dm = ShapesDataModule(image_size=16, length=16, max_frames=4, train_videos=8, val_videos=4, batch_size=2)
    dm.setup("fit")
    val = [b["index"].tolist() for b in dm.val_dataloader()]
    assert [b["index"].tolist() for b in dm.predict_dataloader()] == val
    assert [b["index"].tolist() for b in dm.test_dataloader()] == val
