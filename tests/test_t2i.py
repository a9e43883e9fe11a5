"""Text-to-image generation API (vidiff.pipelines.TextToImage) on tiny random latent and pixel models."""

import pytest
import torch

from vidiff.diffusion import NoiseSchedule, classifier_free_guidance, sample
from vidiff.pipelines import TextToImage
from vidiff.nn.autoencoder import AutoencoderKL
from vidiff.nn.text import BuiltinTextEncoder
from vidiff.nn.unet import SpaceTimeUNet
from vidiff.pipelines import VideoModel

UNET = dict(model_channels=16, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[2], num_heads=2,
            context_dim=32, temporal=False, observed_channel=False, norm_groups=4)
AE = dict(ch=8, ch_mult=[1, 2], num_res_blocks=1, z_channels=4, embed_dim=4, norm_groups=4)


def _randomise(module, scale=0.2):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module.eval()


def _model(latent: bool) -> VideoModel:
    torch.manual_seed(0)
    text = _randomise(BuiltinTextEncoder(dim=32, depth=1, heads=2, max_length=8))
    if latent:
        ae = _randomise(AutoencoderKL(**AE))
        net = _randomise(SpaceTimeUNet(in_channels=4, **UNET))
        return VideoModel(net, NoiseSchedule("cosine", 1000), "v", (4, 8, 8), (3, 16, 16), ae, text, 1)
    net = _randomise(SpaceTimeUNet(in_channels=3, **UNET))
    return VideoModel(net, NoiseSchedule("cosine", 1000), "eps", (3, 16, 16), (3, 16, 16), None, text, 1)


@pytest.fixture(scope="module")
def latent():
    return TextToImage(_model(latent=True))


@pytest.fixture(scope="module")
def pixel():
    return TextToImage(_model(latent=False))


def _image(seed=1, size=16):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, size, size, generator=g) * 2 - 1


def test_guidance_scale_one_is_the_conditional_prediction(latent):
    x = torch.randn(2, 1, 4, 8, 8)
    t = torch.tensor([500, 20])
    cond = latent.conditioning("a red circle", 2, negative_prompt="a blue square")
    expected = latent.model.net(x, t, None, None, cond.context)
    with torch.no_grad():
        assert torch.equal(latent.denoiser(cond, 1.0)(x, t), expected)
        # the CFG wrapper at scale 1 computes the same up to rounding; at 0 it is the negative prompt's prediction
        cfg = classifier_free_guidance(lambda a, b, c: latent.model.net(a, b, None, None, c), cond.context,
                                       cond.uncond, 1.0)
        torch.testing.assert_close(cfg(x, t), expected, atol=1e-5, rtol=1e-5)
        negative = latent.model.net(x, t, None, None, cond.uncond.expand_as(cond.context))
        torch.testing.assert_close(latent.denoiser(cond, 0.0)(x, t), negative, atol=1e-5, rtol=1e-5)
        guided = latent.denoiser(cond, 3.0)(x, t)
        torch.testing.assert_close(guided, negative + 3.0 * (expected - negative), atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_generate_with_scale_one_equals_sampling_the_conditional_model(latent):
    images = latent.generate("a red circle", guidance_scale=1.0, steps=4, num_images=2, seed=3)
    ctx = latent.model.text_encoder.encode(["a red circle"] * 2)
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(2, 1, 4, 8, 8, generator=g)
    x0 = sample(lambda x, t: latent.model.net(x, t, None, None, ctx), noise, latent.model.schedule, "ddim", 4,
                prediction="v", generator=g)
    assert images.shape == (2, 3, 16, 16)
    torch.testing.assert_close(images, latent.model.decode(x0).clamp(-1, 1)[:, 0])


def test_seed_determinism_and_prompt_dependence(latent):
    a = latent.generate("a red circle", guidance_scale=2.0, steps=3, seed=0)
    assert torch.equal(a, latent.generate("a red circle", guidance_scale=2.0, steps=3, seed=0))
    assert not torch.equal(a, latent.generate("a red circle", guidance_scale=2.0, steps=3, seed=1))
    assert not torch.equal(a, latent.generate("a blue square", guidance_scale=2.0, steps=3, seed=0))


@torch.no_grad()
def test_conditioning_strength_and_prompt_mix(latent):
    enc = latent.model.text_encoder
    red, blue = enc.encode(["a red circle"]), enc.encode(["a blue square"])
    null = enc.null_embedding(1)
    torch.testing.assert_close(latent.conditioning("a red circle", 1, cond_strength=1.0).context, red)
    torch.testing.assert_close(latent.conditioning("a red circle", 1, cond_strength=0.0).context, null)
    torch.testing.assert_close(latent.conditioning("a red circle", 1, cond_strength=0.25).context,
                               null + 0.25 * (red - null))
    torch.testing.assert_close(latent.conditioning("a red circle", 1, prompt2="a blue square", mix=0.3).context,
                               0.7 * red + 0.3 * blue)
    torch.testing.assert_close(latent.conditioning("a red circle", 1, prompt2="a blue square", mix=1.0).context,
                               blue)
    torch.testing.assert_close(latent.conditioning("x", 1, negative_prompt="a blue square").uncond, blue)
    torch.testing.assert_close(latent.conditioning("x", 1).uncond, null)
    with pytest.raises(ValueError, match="mix"):
        latent.conditioning("a red circle", 1, mix=0.5)
    with pytest.raises(ValueError, match="cond_strength"):
        latent.conditioning("a red circle", 1, cond_strength=1.5)
    with pytest.raises(ValueError, match="prompt"):
        latent.conditioning(["a", "b"], 3)


def test_img2img_strength_zero_returns_the_reconstruction(latent):
    image = _image()
    out = latent.generate("a red circle", init_image=image, strength=0.0, steps=4, num_images=2)
    recon = latent.model.decode(latent.model.encode(image[None, None])).clamp(-1, 1)[:, 0]
    torch.testing.assert_close(out, recon.expand(2, -1, -1, -1))
    # strength 1 ignores the image: the same as sampling from pure noise
    full = latent.generate("a red circle", init_image=image, strength=1.0, steps=4, seed=5)
    torch.testing.assert_close(full, latent.generate("a red circle", steps=4, seed=5))
    partial = latent.generate("a red circle", init_image=image, strength=0.5, steps=4, seed=5)
    assert not torch.allclose(partial, full) and not torch.allclose(partial, recon)


@pytest.mark.parametrize("space", ["latent", "pixel"])
def test_inpainting_keeps_the_unmasked_region(latent, pixel, space):
    t2i = latent if space == "latent" else pixel
    image = _image(2)
    mask = torch.zeros(16, 16)
    mask[4:12, 2:9] = 1.0  # repaint this box
    out = t2i.generate("a red circle", init_image=image, mask=mask, steps=5, guidance_scale=2.0, num_images=2)
    recon = t2i.model.decode(t2i.model.encode(image[None, None])).clamp(-1, 1)[0, 0]
    keep = mask == 0
    for img in out:
        torch.testing.assert_close(img[:, keep], recon[:, keep])
        assert (img[:, ~keep] - recon[:, ~keep]).abs().mean() > 1e-3  # the masked box is generated
    if space == "pixel":
        torch.testing.assert_close(out[0][:, keep], image[:, keep])  # pixel space: exactly the input


def test_bad_inputs(latent):
    image = _image()
    with pytest.raises(ValueError, match="mask"):
        latent.generate("x", init_image=image, mask=torch.ones(8, 8), steps=2)
    with pytest.raises(ValueError, match="mask: inpainting needs init_image"):
        latent.generate("x", mask=torch.ones(16, 16), steps=2)
    with pytest.raises(ValueError, match="init_image"):
        latent.generate("x", init_image=torch.zeros(1, 16, 16), steps=2)
    with pytest.raises(ValueError, match="strength"):
        latent.generate("x", strength=0.5, steps=2)
    with pytest.raises(ValueError, match="sampler: unknown sampler 'euler'; valid names: ddpm"):
        latent.generate("x", sampler="euler", steps=2)
    with pytest.raises(ValueError, match="num_images"):
        latent.generate("x", num_images=0, steps=2)
    with pytest.raises(ValueError, match="height, width"):
        latent.generate("x", height=17, steps=2)


def test_samplers_and_sizes(latent):
    for sampler in ("ddpm", "ddim", "dpmpp_2m"):
        out = latent.generate("a red circle", sampler=sampler, steps=3, height=24, width=16)
        assert out.shape == (1, 3, 24, 16) and out.abs().max() <= 1


def test_unconditional_model_rejects_prompts(latent):
    model = _model(latent=True)
    model.text_encoder = None
    t2i = TextToImage(model)
    assert t2i.generate("", steps=2).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="prompt: this model has no text encoder"):
        t2i.generate("a red circle", steps=2)
