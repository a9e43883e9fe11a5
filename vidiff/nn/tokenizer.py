"""A deterministic word-level tokenizer for short captions (the built-in text encoder's).

Lower-cases, splits on anything that is not a letter or a digit, and maps each word to its index in a
fixed vocabulary (unknown words to ``<unk>``). Every sequence starts with ``<bos>`` (so the empty prompt
still has one token to attend to) and is padded with ``<pad>`` to ``max_length``; longer prompts are
truncated with a logged warning.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import torch
from torch import Tensor

from vidiff.palette import PALETTE, SHAPES

__all__ = ["SHAPES_VOCAB", "SPECIAL_TOKENS", "WordTokenizer", "warn_truncated"]

logger = logging.getLogger(__name__)

#: Special tokens, always the first three ids: padding 0, unknown 1, begin-of-sequence 2.
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<unk>", "<bos>")

#: The default vocabulary: Shapes-world colours and shapes (singular and plural), counts, sizes, places
#: and motions, and the glue words of its captions ("a red circle and a blue square").
SHAPES_VOCAB: tuple[str, ...] = (
    *PALETTE,
    *SHAPES,
    *(f"{s}s" for s in SHAPES),
    "a", "an", "the", "and", "with", "of", "on", "in", "at", "to", "from", "is", "are", "no",
    "one", "two", "three", "four", "five", "six",
    "small", "big", "large", "tiny",
    "left", "right", "top", "bottom", "center", "middle", "corner",
    "moving", "moves", "move", "bouncing", "bounces", "up", "down", "across", "towards", "away",
    "static", "still", "fast", "slow", "black", "background", "empty", "scene", "shape", "shapes",
)

_WORD = re.compile(r"[a-z0-9]+")


def warn_truncated(lengths: Sequence[int], max_length: int, what: str = "prompt") -> None:
    """Log one warning naming the prompts whose token count exceeds ``max_length`` (they are truncated)."""
    over = [(i, n) for i, n in enumerate(lengths) if n > max_length]
    if over:
        shown = ", ".join(f"#{i} ({n} tokens)" for i, n in over[:5])
        logger.warning(
            "%d %s(s) longer than the text encoder's context of %d tokens were truncated: %s%s",
            len(over), what, max_length, shown, " ..." if len(over) > 5 else "",
        )


class WordTokenizer:
    """Word-level tokenizer over a fixed vocabulary.

    Args:
        vocab: the words (lower case; duplicates dropped, order kept); default :data:`SHAPES_VOCAB`.
            Ids are ``len(SPECIAL_TOKENS) + position``.
        max_length: tokens per sequence including ``<bos>``.
    """

    pad_id, unk_id, bos_id = 0, 1, 2

    def __init__(self, vocab: Sequence[str] | None = None, max_length: int = 16):
        if max_length < 2:
            raise ValueError(f"max_length: expected >= 2 (<bos> plus a word), got {max_length}")
        words = list(dict.fromkeys(w.lower() for w in (SHAPES_VOCAB if vocab is None else vocab)))
        bad = [w for w in words if not _WORD.fullmatch(w) or w in SPECIAL_TOKENS]
        if bad:
            raise ValueError(f"vocab: expected lower-case alphanumeric words, got {bad[:5]}")
        self.tokens: list[str] = [*SPECIAL_TOKENS, *words]
        self.index = {tok: i for i, tok in enumerate(self.tokens)}
        self.max_length = max_length

    def __len__(self) -> int:
        return len(self.tokens)

    def words(self, prompt: str) -> list[str]:
        """The words of ``prompt`` (lower-cased; punctuation dropped)."""
        return _WORD.findall(prompt.lower())

    def __call__(self, prompts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Token ids and the mask of real tokens.

        Args:
            prompts: ``b`` strings.

        Returns:
            ``ids (b, max_length)`` long and ``mask (b, max_length)`` bool (False on padding).
        """
        if isinstance(prompts, str):
            raise ValueError(f"prompts: expected a list of strings, got the string {prompts!r}")
        ids = torch.full((len(prompts), self.max_length), self.pad_id, dtype=torch.long)
        lengths = []
        for row, prompt in enumerate(prompts):
            seq = [self.bos_id, *(self.index.get(w, self.unk_id) for w in self.words(prompt))]
            lengths.append(len(seq))
            seq = seq[: self.max_length]
            ids[row, : len(seq)] = torch.tensor(seq)
        warn_truncated(lengths, self.max_length)
        return ids, ids != self.pad_id

    def decode(self, ids: Tensor) -> list[str]:
        """Ids ``(b, L)`` back to space-joined words (specials dropped, ``<unk>`` kept)."""
        return [
            " ".join(self.tokens[i] for i in row.tolist() if i not in (self.pad_id, self.bos_id))
            for row in ids
        ]
