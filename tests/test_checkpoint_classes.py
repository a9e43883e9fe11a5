"""A checkpoint chooses what to import only within vidiff, torch and the user's allow-list (vidiff.io.checkpoint)."""

from __future__ import annotations

import sys

import pytest
import torch

from vidiff.lit import load_model
from vidiff.io import checkpoint as parts
from vidiff.io.checkpoint import ALLOWED_MODULES_ENV, check_allowed

EVIL = '''
import pathlib
pathlib.Path(__file__).with_name("imported").write_text("side effect")
import torch
class Net(torch.nn.Module):
    pass
'''


def _checkpoint(path, **hparams):
    torch.save({"state_dict": {}, "hyper_parameters": hparams}, path)
    return path


@pytest.fixture
def evil_module(tmp_path, monkeypatch):
    name = f"evil_mod_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(EVIL)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    "hparams, named",
    [
        ({"net": {"class_path": "os.system", "init_args": {"command": "touch pwned"}}}, "'os.system'"),
        ({"_class_path": "subprocess.Popen", "net": {"class_path": "vidiff.nn.unet.SpaceTimeUNet"}}, "'subprocess.Popen'"),
        ({"net": {"class_path": "vidiff.nn.unet.SpaceTimeUNet",
                  "init_args": {"inner": [{"class_path": "shutil.rmtree"}]}}}, "'shutil.rmtree'"),
    ],
)
def test_classes_outside_the_allow_list_are_refused(tmp_path, hparams, named):
    with pytest.raises(ValueError, match=f"names {named}, outside the modules checkpoints may import") as err:
        load_model(_checkpoint(tmp_path / "bad.ckpt", **hparams))
    assert "\n" not in str(err.value) and f"{ALLOWED_MODULES_ENV}=" in str(err.value)
    assert not (tmp_path / "pwned").exists()


def test_a_refused_module_is_never_imported_and_the_allow_list_extends(tmp_path, evil_module, monkeypatch):
    ckpt = _checkpoint(tmp_path / "evil.ckpt", net={"class_path": f"{evil_module}.Net", "init_args": {}})
    with pytest.raises(ValueError, match=f"allow it with {ALLOWED_MODULES_ENV}={evil_module} "):
        load_model(ckpt)
    assert evil_module not in sys.modules and not (tmp_path / "imported").exists()
    monkeypatch.setenv(ALLOWED_MODULES_ENV, f"somewhere.else, {evil_module}")
    check_allowed(f"{evil_module}.Net", "net")  # allowed now
    with pytest.raises(Exception):  # imported (an empty net's state does not fit); refused no longer
        load_model(ckpt)
    assert evil_module in sys.modules and (tmp_path / "imported").exists()


def test_allow_modules_and_training_only_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(parts, "ALLOWED_MODULES", list(parts.ALLOWED_MODULES))
    with pytest.raises(ValueError, match="mylab"):
        check_allowed("mylab.nets.Net", "net")
    parts.allow_modules("mylab")
    check_allowed("mylab.nets.Net", "net")
    with pytest.raises(ValueError, match="mylabx"):
        check_allowed("mylabx.Net", "net")  # a prefix of a name is not its submodule
    check_allowed("torch.nn.Conv2d", "net")
    check_allowed("vidiff.nn.unet.SpaceTimeUNet", "net")
