"""A prompt changes what a trained tiny text-to-image model draws: the colour named in the caption appears.

A pixel-space model (16x16 single-object Shapes frames, built-in text encoder) trains for a few hundred
steps in the fixture with fixed seeds; then "a red square" and "a blue square" are generated with guidance.
Marked ``slow``: about 150 training steps (a minute on an idle 2-core CPU, much longer on a loaded one).
"""

import pytest
import torch

from vidiff.data.shapes import ShapesWorld
from vidiff.pipelines import TextToImage
from vidiff.lit import VideoDiffusion
from vidiff.pipelines import VideoModel

pytestmark = pytest.mark.slow

NET = {"class_path": "vidiff.nn.unet.SpaceTimeUNet",
       "init_args": dict(in_channels=3, model_channels=16, channel_mult=[1, 2], num_res_blocks=1,
                         attention_resolutions=[1, 2], num_heads=2, context_dim=32, temporal=False,
                         observed_channel=False, norm_groups=4)}
TEXT = {"class_path": "vidiff.nn.text.BuiltinTextEncoder", "init_args": dict(dim=32, depth=1, heads=2, max_length=8)}
STEPS, BATCH = 150, 32


@pytest.fixture(scope="session")
def trained_t2i():
    world = ShapesWorld(num_videos=400, length=16, image_size=16, min_objects=1, max_objects=1, size=(4.0, 6.0))
    frames = torch.cat([world.render(i, [0, 8]) for i in range(400)])[:, None]  # (800, 1, 3, 16, 16)
    captions = [world.caption(i) for i in range(400) for _ in range(2)]
    torch.manual_seed(0)
    model = VideoDiffusion(net=NET, image_size=16, max_frames=1, schedule="cosine", prediction="v",
                           text_encoder=TEXT, ema_decay=None, cond_drop_prob=0.1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        idx = torch.randint(0, len(frames), (BATCH,), generator=g)
        batch = {"video": frames[idx], "frame_idx": torch.zeros(BATCH, 1, dtype=torch.long),
                 "observed": torch.zeros(BATCH, 1, dtype=torch.bool), "valid": torch.ones(BATCH, 1, dtype=torch.bool),
                 "caption": [captions[i] for i in idx]}
        loss = model.loss(batch, model.net, drop_prob=0.1, generator=g)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return TextToImage(VideoModel.from_module(model.eval().requires_grad_(False)))


def _mean_rgb(t2i, prompt):
    images = t2i.generate(prompt, guidance_scale=3.0, steps=10, num_images=4, seed=0)
    return ((images + 1) / 2).mean(dim=(0, 2, 3))  # (3,) mean red, green, blue in [0, 1]


def test_the_named_colour_appears(trained_t2i):
    red, blue = _mean_rgb(trained_t2i, "a red square"), _mean_rgb(trained_t2i, "a blue square")
    assert red[0] > 2 * max(red[1], red[2]) and red[0] > 0.1
    assert blue[2] > 2 * max(blue[0], blue[1]) and blue[2] > 0.1
    assert red[0] > 2 * blue[0] and blue[2] > 2 * red[2]
