"""`vidiff txt2img`: images from a prompt with a text-to-image checkpoint or a Stable Diffusion 1.x file.

    vidiff txt2img --ckpt runs/shapes_t2i_tiny/checkpoints/last.ckpt --prompt "a red circle" \\
        --negative-prompt "a blue square" --guidance 3 --steps 50 --sampler dpmpp_2m --num-images 4 --out out/t2i
    vidiff txt2img --sd-ckpt v1-5-pruned-emaonly.safetensors --tokenizer clip-vit-large-patch14/ \\
        --prompt "an astronaut riding a horse" --out out/sd

Writes ``grid.png`` (all images), ``image_NNN.png`` (one per image) and ``settings.json`` to ``--out``, each
atomically. Image-to-image: ``--init-image IMG --strength 0.6``; inpainting: ``--init-image IMG --mask MASK``
(white = repaint; the mask must have the image's size). See docs/text_to_video.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

HELP = "generate images from a text prompt (text-to-image checkpoint or Stable Diffusion 1.x file)"
SD_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "sd15"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    from vidiff.commands.options import add_ckpt_argument, add_device_argument, sampler_help
    from vidiff.pipelines.stages import DEFAULT_STEPS

    g = parser.add_argument_group("model (one of --ckpt, --sd-ckpt)")
    add_ckpt_argument(g, "text-to-image checkpoint written by `vidiff fit` (EMA weights)", required=False)
    g.add_argument("--sd-ckpt", default=None, help="Stable Diffusion 1.x single file (.safetensors or .ckpt)")
    g.add_argument("--sd-config", default=None,
                   help="folder with unet.yaml, autoencoder.yaml, text_encoder.yaml (default: configs/sd15)")
    g.add_argument("--tokenizer", default=None,
                   help="CLIP tokenizer folder (vocab.json, merges.txt) for --sd-ckpt; replaces tokenizer_path")
    g.add_argument("--sd-ema", action="store_true", help="use the model_ema.* U-Net weights of a full SD file")
    add_device_argument(g)
    g = parser.add_argument_group("prompt")
    g.add_argument("--prompt", default="", help="the text prompt")
    g.add_argument("--negative-prompt", default=None, help="used in place of the empty prompt by guidance")
    g.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale (1 = off; default 7.5)")
    g.add_argument("--strength-cond", type=float, default=1.0,
                   help="conditioning strength in [0, 1]: 0 unconditional, 1 the prompt (default 1)")
    g.add_argument("--prompt2", default=None, help="a second prompt mixed into --prompt")
    g.add_argument("--mix", type=float, default=0.0, help="weight of --prompt2 in [0, 1] (default 0)")
    g = parser.add_argument_group("image-to-image and inpainting")
    g.add_argument("--init-image", default=None, help="start from this image (resized to the model's size)")
    g.add_argument("--strength", type=float, default=None,
                   help="with --init-image: 0 = the image, 1 = pure noise (default 0.8; 1 with --mask)")
    g.add_argument("--mask", default=None, help="inpainting mask image, white = repaint (the init image's size)")
    g = parser.add_argument_group("sampler")
    g.add_argument("--sampler", default="ddim", metavar="SAMPLER", help=sampler_help())
    g.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"denoising steps (default {DEFAULT_STEPS})")
    g.add_argument("--eta", type=float, default=0.0, help="DDIM eta (0: deterministic)")
    g.add_argument("--spacing", default="leading",
                   help="timestep spacing: leading, trailing or linspace (default leading, as Stable "
                   "Diffusion)")
    g.add_argument("--num-images", type=int, default=4, help="images to generate (default 4)")
    g.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    g.add_argument("--size", type=int, default=None,
                   help="image height and width (default: the model's; 512 for --sd-ckpt)")
    g = parser.add_argument_group("output")
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run's images and settings in --out (without it such a folder is "
                   "refused)")
    g.add_argument("--nrow", type=int, default=None, help="images per grid row (default: all in one row up to 8)")


def load_generator(args: argparse.Namespace) -> Any:
    """The :class:`vidiff.pipelines.TextToImage` of ``--ckpt`` or ``--sd-ckpt``; errors name the option."""
    from vidiff.commands.sample import load_model_option
    from vidiff.pipelines import TextToImage

    if (args.ckpt is None) == (args.sd_ckpt is None):
        raise ValueError("--ckpt, --sd-ckpt: give exactly one model")
    if args.ckpt is not None:
        return TextToImage(load_model_option(args.ckpt, args.device), args.device)
    from vidiff.sd import read_config

    if not Path(args.sd_ckpt).is_file():
        raise FileNotFoundError(f"--sd-ckpt: no checkpoint file at {args.sd_ckpt!r}")
    folder = Path(args.sd_config) if args.sd_config is not None else SD_CONFIGS
    configs = {}
    for part in ("unet", "autoencoder", "text_encoder"):
        path = folder / f"{part}.yaml"
        if not path.is_file():
            raise FileNotFoundError(f"--sd-config: no {part}.yaml in {str(folder)!r}")
        configs[part] = read_config(path, part)
    if args.tokenizer is not None:
        configs["text_encoder"]["tokenizer_path"] = args.tokenizer
    if configs["text_encoder"].get("tokenizer_path") is None:
        raise ValueError("--tokenizer: Stable Diffusion's CLIP tokenizer needs a local folder with vocab.json and "
                         "merges.txt (openai/clip-vit-large-patch14); pass --tokenizer DIR")
    return TextToImage.from_stable_diffusion(args.sd_ckpt, configs["unet"], configs["autoencoder"],
                                             configs["text_encoder"], image_size=args.size or 512,
                                             device=args.device, use_ema=args.sd_ema)


def _read_image(path: str, option: str, mode: str) -> torch.Tensor:
    """An image file as float ``(c, h, w)``: RGB in [-1, 1] (``mode="RGB"``) or a mask in [0, 1] (``"L"``)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    if not Path(path).is_file():
        raise FileNotFoundError(f"{option}: no image file at {path!r}")
    try:
        with Image.open(path) as im:
            array = np.asarray(im.convert(mode), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{option}: cannot read {path!r} as an image ({err})") from err
    tensor = torch.from_numpy(array.copy())
    return tensor[None] if mode == "L" else tensor.permute(2, 0, 1) * 2 - 1


def init_and_mask(args: argparse.Namespace, size: tuple[int, int]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``--init-image`` as ``(c, h, w)`` in [-1, 1] and ``--mask`` as ``(1, h, w)`` in [0, 1], resized to ``size``.

    Raises:
        ValueError: a mask without an init image, or whose size differs from the init image's.
    """
    import torch.nn.functional as F

    if args.init_image is None:
        for name in ("mask", "strength"):
            if getattr(args, name) is not None:
                raise ValueError(f"--{name}: needs --init-image")
        return None, None
    image = _read_image(args.init_image, "--init-image", "RGB")
    mask = None
    if args.mask is not None:
        mask = _read_image(args.mask, "--mask", "L")
        if mask.shape[-2:] != image.shape[-2:]:
            h, w = image.shape[-2:]
            mh, mw = mask.shape[-2:]
            raise ValueError(f"--mask: {args.mask} is {mw}x{mh} pixels but --init-image {args.init_image} is "
                             f"{w}x{h}; the mask must have the image's size")
    if tuple(image.shape[-2:]) != size:
        log.info("resizing --init-image from %s to %s", tuple(image.shape[-2:]), size)
        image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        if mask is not None:
            mask = F.interpolate(mask[None], size=size, mode="nearest")[0]
    return image.clamp(-1, 1), mask


def txt2img_to_folder(args: argparse.Namespace) -> dict[str, Any]:
    """Everything `vidiff txt2img` does; returns the settings written to ``settings.json``."""
    from vidiff.io import save_image, save_image_grid, to_uint8, write_json_atomic
    from vidiff.io.outputs import TXT2IMG_OUTPUTS, claim_folder, remove_outputs

    for name in ("steps", "num_images"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(args, name)}")
    if args.size is not None and args.size < 1:
        raise ValueError(f"--size: expected >= 1, got {args.size}")
    from vidiff.commands.options import resolve_device

    earlier = claim_folder(args.out, TXT2IMG_OUTPUTS, args.overwrite)
    args.device = resolve_device(args.device)
    t2i = load_generator(args)
    _, h, w = t2i.image_shape
    size = (args.size, args.size) if args.size is not None else (h, w)
    init, mask = init_and_mask(args, size)
    start = time.perf_counter()
    try:
        images = t2i.generate(
            args.prompt, negative_prompt=args.negative_prompt, guidance_scale=args.guidance,
            cond_strength=args.strength_cond, prompt2=args.prompt2, mix=args.mix, init_image=init,
            strength=args.strength, mask=mask, sampler=args.sampler, steps=args.steps, eta=args.eta,
            spacing=args.spacing, num_images=args.num_images, seed=args.seed, height=size[0], width=size[1],
        )
    except ValueError as err:  # name the command-line option, not the Python argument
        raise ValueError(_option_message(err)) from err
    seconds = time.perf_counter() - start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    remove_outputs(earlier)
    nrow = args.nrow or min(args.num_images, 8)
    save_image_grid(out / "grid.png", images, nrow=nrow)
    for i, frame in enumerate(to_uint8(images)):
        save_image(out / f"image_{i:03d}.png", frame)
    settings = {k: v for k, v in vars(args).items() if not k.startswith("_")}
    settings.update(seconds=round(seconds, 2), image_shape=list(images.shape[1:]))
    write_json_atomic(out / "settings.json", settings)
    return settings


#: TextToImage.generate argument -> command-line option, for error messages.
_OPTIONS = {"guidance_scale": "--guidance", "cond_strength": "--strength-cond", "init_image": "--init-image",
            "num_images": "--num-images", "negative_prompt": "--negative-prompt", "height, width": "--size",
            "mask": "--mask", "strength": "--strength", "mix": "--mix", "prompt2": "--prompt2",
            "prompt": "--prompt", "sampler": "--sampler", "spacing": "--spacing"}


def _option_message(err: ValueError) -> str:
    message = str(err)
    name, sep, rest = message.partition(":")
    if sep and name in _OPTIONS:
        return f"{_OPTIONS[name]}:{rest}"
    return message


def run(args: argparse.Namespace) -> int:
    try:
        settings = txt2img_to_folder(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"vidiff txt2img: error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    print(f"wrote {args.num_images} images {tuple(settings['image_shape'])} to {out}/image_*.png and "
          f"{out / 'grid.png'} ({settings['seconds']} s)")
    return 0
