"""Stable Diffusion 1.x import on a tiny checkpoint written in exactly the original single-file key layout."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vidiff.nn.autoencoder import AutoencoderKL
from vidiff.io.checkpoint import read_state_dict
from vidiff.sd import SD15, load_stable_diffusion, map_key, read_config
from vidiff.sd.keys import ema_key

unet_mod = pytest.importorskip("vidiff.nn.unet")
transformers = pytest.importorskip("transformers")

from tests.test_text import TINY_CLIP, write_tiny_clip_tokenizer  # noqa: E402
from vidiff.nn.text import CLIPTextEncoder  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "sd15"
TINY_AE = dict(ch=8, ch_mult=[1, 2], num_res_blocks=1, z_channels=4, embed_dim=4, norm_groups=4)
TINY_UNET = dict(in_channels=4, model_channels=16, channel_mult=[1, 2], num_res_blocks=1,
                 attention_resolutions=[2, 1], num_heads=2, transformer_depth=1, context_dim=32,
                 use_scale_shift_norm=False, temporal=False, observed_channel=False, norm_groups=4)
TINY_TEXT = dict(config=TINY_CLIP, max_length=16)

# The schedule buffers of ldm's DDPM, written out here independently of vidiff.sd.keys.
SCHEDULE = ["betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
            "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
            "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
            "posterior_mean_coef1", "posterior_mean_coef2"]


def _randomise(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p))
    return module


def tiny_parts():
    return (_randomise(AutoencoderKL(**TINY_AE)), _randomise(unet_mod.SpaceTimeUNet(**TINY_UNET)),
            _randomise(CLIPTextEncoder(**TINY_TEXT)))


def sd_layout(ae, unet, clip, betas=None, ema=False):
    """The inverse map, written independently: vidiff modules -> an SD 1.x ``LatentDiffusion`` state dict."""
    state = {}
    state.update({"first_stage_model." + k: v.clone() for k, v in ae.state_dict().items()})
    state.update({"model.diffusion_model." + k: v.clone() for k, v in unet.state_dict().items()})
    text = clip.text_transformer.state_dict()
    state.update({"cond_stage_model.transformer.text_model." + k: v.clone() for k, v in text.items()})
    state["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(16)[None]
    if betas is None:
        betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    for name in SCHEDULE:
        state[name] = alphas_cumprod.float() if name == "alphas_cumprod" else betas.float()
    state["model_ema.decay"] = torch.tensor(0.9999)
    state["model_ema.num_updates"] = torch.tensor(1000, dtype=torch.int32)
    if ema:
        for k, v in unet.state_dict().items():
            state["model_ema." + ("diffusion_model." + k).replace(".", "")] = v.clone() + 1
    return state


def _load(path, **kwargs):
    return load_stable_diffusion(path, unet=TINY_UNET, autoencoder=TINY_AE, text_encoder=TINY_TEXT, **kwargs)


def _assert_same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


@pytest.mark.parametrize("fmt", ["safetensors", "ckpt"])
def test_tiny_checkpoint_every_key_maps(tmp_path, fmt):
    ae, unet, clip = tiny_parts()
    state = sd_layout(ae, unet, clip)
    path = tmp_path / f"tiny.{fmt}"
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save({"state_dict": state, "global_step": 1}, path)  # the original nesting
    assert read_state_dict(path).keys() == state.keys()
    sd = _load(path)
    _assert_same(sd.autoencoder, ae)
    _assert_same(sd.unet, unet)
    _assert_same(sd.text_encoder.text_transformer, clip.text_transformer)
    extras = set(SCHEDULE) | {"model_ema.decay", "model_ema.num_updates",
                              "cond_stage_model.transformer.text_model.embeddings.position_ids"}
    assert set(sd.ignored) == extras  # nothing left over
    assert sd.schedule["kind"] == "scaled_linear"
    assert not any(p.requires_grad for p in sd.unet.parameters()) and not sd.autoencoder.training
    # the imported U-Net computes what the original does
    x, t, ctx = torch.randn(1, 1, 4, 8, 8), torch.tensor([10]), torch.randn(1, 5, 32)
    with torch.no_grad():
        torch.testing.assert_close(sd.unet(x, t, context=ctx), unet.eval()(x, t, context=ctx))


def test_map_key_table():
    assert map_key("first_stage_model.encoder.mid.attn_1.q.weight") == ("autoencoder", "encoder.mid.attn_1.q.weight")
    assert map_key("model.diffusion_model.out.2.bias") == ("unet", "out.2.bias")
    assert map_key("cond_stage_model.transformer.text_model.final_layer_norm.weight") == (
        "text_encoder", "final_layer_norm.weight")
    assert map_key("cond_stage_model.transformer.encoder.layers.0.mlp.fc1.bias") == (
        "text_encoder", "encoder.layers.0.mlp.fc1.bias")
    assert map_key("betas") is None and map_key("model_ema.diffusion_modelout2bias") is None
    assert ema_key("out.2.bias") == "model_ema.diffusion_modelout2bias"
    with pytest.raises(KeyError):
        map_key("cond_stage_model.model.positional_embedding")


def test_ema_weights_and_component_subset(tmp_path):
    ae, unet, clip = tiny_parts()
    path = tmp_path / "full.safetensors"
    save_file({k: v.contiguous() for k, v in sd_layout(ae, unet, clip, ema=True).items()}, str(path))
    sd = _load(path, use_ema=True, components=("unet",))
    assert sd.autoencoder is None and sd.text_encoder is None
    for key, value in unet.state_dict().items():
        assert torch.equal(sd.unet.state_dict()[key], value + 1), key


def _save(state, tmp_path):
    path = tmp_path / "bad.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    state = sd_layout(*tiny_parts())
    del state["model.diffusion_model.out.2.weight"]
    state["first_stage_model.loss.discriminator.weight"] = torch.zeros(1)
    state["something_else"] = torch.zeros(1)
    with pytest.raises(ValueError) as err:
        _load(_save(state, tmp_path))
    msg = str(err.value)
    assert "1 missing: unet: out.2.weight" in msg
    assert "autoencoder: loss.discriminator.weight" in msg and "something_else" in msg


def test_sd2_checkpoint_is_rejected_with_hint(tmp_path):
    ae, _, clip = tiny_parts()
    # SD 2.x: 1024-wide OpenCLIP context, linear proj_in/proj_out, cond_stage_model.model.* keys
    unet2 = unet_mod.SpaceTimeUNet(**{**TINY_UNET, "context_dim": 48, "use_linear_proj": True})
    state = {k: v for k, v in sd_layout(ae, unet2, clip).items() if not k.startswith("cond_stage_model")}
    state["cond_stage_model.model.positional_embedding"] = torch.zeros(77, 48)
    state["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"] = torch.zeros(144, 48)
    with pytest.raises(ValueError) as err:
        _load(_save(state, tmp_path))
    msg = str(err.value)
    assert "Stable Diffusion 2.x" in msg
    assert "cond_stage_model.model.positional_embedding" in msg
    assert "missing: text_encoder: embeddings.token_embedding.weight" in msg
    assert "shape mismatch" in msg and "attn2.to_k.weight: file (32, 48) vs model (32, 32)" in msg


def test_other_schedule_is_rejected(tmp_path):
    state = sd_layout(*tiny_parts(), betas=torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64))
    with pytest.raises(ValueError, match="betas: expected Stable Diffusion's scaled_linear"):
        _load(_save(state, tmp_path))
    assert _load(_save(state, tmp_path), check=False).schedule == {}


def test_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        load_stable_diffusion(tmp_path / "nope.safetensors")
    with pytest.raises(ValueError, match="components"):
        load_stable_diffusion(tmp_path / "nope.safetensors", components=("vae",))
    with pytest.raises(ValueError, match="class_path"):
        read_config({"class_path": "vidiff.nn.unet.SpaceTimeUNet", "init_args": {}}, "autoencoder")


def test_sd15_yaml_files_equal_builtin_configs_and_build():
    for component in SD15:
        assert read_config(CONFIGS / f"{component}.yaml", component) == SD15[component]
    # full-size shapes without allocating the full models: the autoencoder is small enough to build
    ae = AutoencoderKL(**SD15["autoencoder"])
    assert ae.downsampling_factor == 8 and ae.scaling_factor == 0.18215


def test_text_encoder_yaml_with_tokenizer(tmp_path):
    clip = CLIPTextEncoder(**{**TINY_TEXT, "tokenizer_path": write_tiny_clip_tokenizer(tmp_path)})
    assert clip.encode(["red"]).shape == (1, 16, 32)
