"""The spatial layers of SpaceTimeUNet carry latent-diffusion's (Stable Diffusion's) parameter names and shapes."""

import re

import pytest
import torch

from vidiff.nn import SpaceTimeUNet, inflate, is_temporal_name

SD15 = dict(
    in_channels=4, out_channels=4, model_channels=320, channel_mult=[1, 2, 4, 4], num_res_blocks=2,
    attention_resolutions=[4, 2, 1], num_heads=8, transformer_depth=1, context_dim=768,
    use_scale_shift_norm=False, temporal=False, observed_channel=False,
)
# name -> shape in the SD 1.5 checkpoint (prefix "model.diffusion_model." removed)
SD15_KEYS = {
    "time_embed.0.weight": (1280, 320),
    "time_embed.2.weight": (1280, 1280),
    "input_blocks.0.0.weight": (320, 4, 3, 3),
    "input_blocks.1.0.in_layers.0.weight": (320,),
    "input_blocks.1.0.in_layers.2.weight": (320, 320, 3, 3),
    "input_blocks.1.0.emb_layers.1.weight": (320, 1280),
    "input_blocks.1.0.out_layers.3.weight": (320, 320, 3, 3),
    "input_blocks.1.1.norm.weight": (320,),
    "input_blocks.1.1.proj_in.weight": (320, 320, 1, 1),
    "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight": (320, 320),
    "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    "input_blocks.1.1.transformer_blocks.0.attn2.to_out.0.weight": (320, 320),
    "input_blocks.1.1.transformer_blocks.0.ff.net.0.proj.weight": (2560, 320),
    "input_blocks.1.1.transformer_blocks.0.ff.net.2.weight": (320, 1280),
    "input_blocks.1.1.transformer_blocks.0.norm3.weight": (320,),
    "input_blocks.1.1.proj_out.weight": (320, 320, 1, 1),
    "input_blocks.3.0.op.weight": (320, 320, 3, 3),
    "input_blocks.4.0.skip_connection.weight": (640, 320, 1, 1),
    "input_blocks.11.0.out_layers.3.weight": (1280, 1280, 3, 3),
    "middle_block.0.emb_layers.1.weight": (1280, 1280),
    "middle_block.1.transformer_blocks.0.attn1.to_v.weight": (1280, 1280),
    "middle_block.2.out_layers.0.bias": (1280,),
    "output_blocks.0.0.skip_connection.weight": (1280, 2560, 1, 1),
    "output_blocks.2.1.conv.weight": (1280, 1280, 3, 3),
    "output_blocks.5.2.conv.weight": (1280, 1280, 3, 3),
    "output_blocks.8.2.conv.weight": (640, 640, 3, 3),
    "output_blocks.11.1.proj_out.weight": (320, 320, 1, 1),
    "out.0.weight": (320,),
    "out.2.weight": (4, 320, 3, 3),
}
LDM_NAME = re.compile(
    r"^(time_embed\.[02]|out\.[02]|input_blocks\.\d+\.\d+|middle_block\.[012]|output_blocks\.\d+\.\d+)"
    r"(\.(in_layers\.[02]|emb_layers\.1|out_layers\.[03]|skip_connection|op|conv|norm|proj_in|proj_out"
    r"|transformer_blocks\.\d+\.(attn[12]\.(to_[qkv]|to_out\.0)|ff\.net\.(0\.proj|2)|norm[123])))?"
    r"\.(weight|bias)$"
)


def test_sd15_config_has_sd15_names_shapes_and_size():
    with torch.device("meta"):
        model = SpaceTimeUNet(**SD15)
    state = model.state_dict()
    assert len(state) == 686  # tensors in SD 1.5's model.diffusion_model
    assert sum(v.numel() for v in state.values()) == 859_520_964  # SD 1.5 U-Net parameters
    for name, shape in SD15_KEYS.items():
        assert tuple(state[name].shape) == shape, name
    assert all(LDM_NAME.match(name) for name in state), [n for n in state if not LDM_NAME.match(n)][:5]


def test_sd2_linear_projection():
    with torch.device("meta"):
        model = SpaceTimeUNet(**{**SD15, "num_heads": -1, "num_head_channels": 64, "context_dim": 1024,
                                  "use_linear_proj": True})
    state = model.state_dict()
    assert tuple(state["input_blocks.1.1.proj_in.weight"].shape) == (320, 320)
    assert tuple(state["middle_block.1.proj_out.weight"].shape) == (1280, 1280)
    assert tuple(state["input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"].shape) == (320, 1024)


@pytest.mark.parametrize("linear", [False, True])
def test_tiny_sd_layout_video_model_adds_only_temporal_names(linear):
    tiny = dict(SD15, model_channels=8, channel_mult=[1, 2, 2], context_dim=12, num_heads=2, norm_groups=4,
                use_linear_proj=linear)
    image = SpaceTimeUNet(**tiny)
    video = inflate(image)
    image_names, video_names = set(image.state_dict()), set(video.state_dict())
    assert all(LDM_NAME.match(n) for n in image_names)
    assert image_names <= video_names
    extra = video_names - image_names
    assert extra and all(is_temporal_name(n) for n in extra)
    assert {"observed_in.weight", "input_blocks.1.temporal.to_qkv.weight", "middle_block.temporal.to_out.weight",
            "output_blocks.2.temporal.rel_pos.mlp.0.weight"} <= extra
    assert "input_blocks.3.temporal.to_qkv.weight" not in extra  # a downsample-only block gets no temporal layer
    video_state = video.state_dict()
    for name, value in image.state_dict().items():
        assert torch.equal(video_state[name], value), name
