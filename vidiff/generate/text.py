"""A frozen built-in text encoder: the text encoder of a text-to-video model inflated from a text-to-image one.

When only the temporal layers of an inflated model train (``InitFromImageModel(train_only="temporal")``), the
text encoder must stay as the text-to-image model trained it. Declaring it frozen in the config (rather than
freezing it at fit time) keeps the module tree the same at training and at inference (``load_model``): a
frozen encoder is not part of the EMA, so checkpoints hold its weights once, under ``text_encoder.*``.
"""

from __future__ import annotations

from collections.abc import Sequence

from vidiff.nn.text import BuiltinTextEncoder


class FrozenBuiltinTextEncoder(BuiltinTextEncoder):
    """:class:`vidiff.nn.text.BuiltinTextEncoder` with ``requires_grad=False`` and always in eval mode.

    Args: as :class:`~vidiff.nn.text.BuiltinTextEncoder` (the weights come from the text-to-image checkpoint).
    """

    def __init__(
        self,
        vocab: Sequence[str] | None = None,
        dim: int = 128,
        depth: int = 2,
        heads: int = 4,
        max_length: int = 16,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(vocab, dim, depth, heads, max_length, dropout)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenBuiltinTextEncoder:
        """Stay in eval mode (no dropout): the encoder is frozen."""
        return super().train(False)
