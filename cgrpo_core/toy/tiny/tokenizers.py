"""Tiny tokenizers of the real classes, built offline from a corpus (toy profile and tests).

Nothing can be downloaded here, yet FLUX and CLIP need their tokenizers. We build small ones from our
own text (toy captions, DreamBench prompts) and wrap them in the real transformers classes, so
``save_pretrained`` writes the real on-disk format and the same ``from_pretrained`` loaders read them
as read the real ones:

- :func:`train_clip_tokenizer` -> ``CLIPTokenizer``: byte-level BPE with CLIP's normaliser,
  pre-tokeniser and ``</w>`` word suffix. Every byte is in the vocabulary (alone and word-final), so any
  text tokenises without unknown tokens; frequent corpus words become single tokens.
- :func:`train_t5_tokenizer` -> ``T5TokenizerFast``: a Unigram model whose pieces are the corpus words
  (scored by log frequency) plus single characters, with T5's ``<pad>``, ``</s>``, ``<unk>`` as 0, 1, 2.

Both are built by small deterministic Python routines rather than the `tokenizers` trainers, whose tie
breaking (and hence ids) changes from run to run: the toy model zoo is cached by content hash and must
come out byte-identical for the same corpus.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from tokenizers import Regex, normalizers, pre_tokenizers
from transformers import CLIPTokenizer, T5TokenizerFast

__all__ = ["learn_bpe", "train_clip_tokenizer", "train_t5_tokenizer"]

CLIP_SPLIT = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)
T5_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()/&+%$#@*"


def _clip_words(corpus: Iterable[str]) -> Counter:
    """Word counts after CLIP's normaliser and byte-level pre-tokeniser."""
    norm = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    pre = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    counts: Counter = Counter()
    for text in corpus:
        counts.update(word for word, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
    return counts


def train_clip_tokenizer(
    corpus: Iterable[str], vocab_size: int = 1000, model_max_length: int = 77
) -> CLIPTokenizer:
    """A ``CLIPTokenizer`` whose BPE merges are learned from ``corpus`` (most frequent pair first, ties
    broken lexicographically)."""
    words = {tuple(w[:-1]) + (w[-1] + "</w>",): n for w, n in sorted(_clip_words(corpus).items())}
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    base = ["<|startoftext|>", "<|endoftext|>", *alphabet, *(f"{c}</w>" for c in alphabet)]
    vocab, merges = learn_bpe(words, base, vocab_size)
    return CLIPTokenizer(
        vocab={tok: i for i, tok in enumerate(vocab)}, merges=merges, model_max_length=model_max_length
    )


def learn_bpe(
    words: dict[tuple[str, ...], int], vocab: list[str], vocab_size: int
) -> tuple[list[str], list[tuple[str, str]]]:
    """BPE merges learned from ``words`` (symbol tuples -> counts): repeatedly merge the most frequent
    adjacent pair (ties: the lexicographically smallest), while it occurs at least twice and the vocabulary,
    starting from ``vocab``, is below ``vocab_size``. Returns (vocabulary, merges); deterministic."""
    vocab, known, merges = list(vocab), set(vocab), []
    while len(vocab) < vocab_size:
        pairs: Counter = Counter()
        for symbols, n in words.items():
            for pair in zip(symbols, symbols[1:], strict=False):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        if pairs[best] < 2:
            break
        merges.append(best)
        joined = best[0] + best[1]
        if joined not in known:
            known.add(joined)
            vocab.append(joined)
        words = {_merge(symbols, best, joined): n for symbols, n in words.items()}
    return vocab, merges


def _merge(symbols: tuple[str, ...], pair: tuple[str, str], joined: str) -> tuple[str, ...]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(joined)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def train_t5_tokenizer(
    corpus: Iterable[str], vocab_size: int = 800, model_max_length: int = 512
) -> T5TokenizerFast:
    """A ``T5TokenizerFast`` (Unigram): whole corpus words, then characters as the fallback."""
    counts: Counter = Counter()
    for text in corpus:
        counts.update(text.split())
    total = sum(counts.values()) + 1
    chars = [(f"\u2581{c}", math.log(1 / total) - 20.0) for c in T5_CHARS]
    chars += [(c, math.log(1 / total) - 20.0) for c in T5_CHARS] + [("\u2581", math.log(1 / total) - 20.0)]
    budget = max(0, vocab_size - 3 - len(chars))
    frequent = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:budget]
    words = [(f"\u2581{w}", math.log(n / total)) for w, n in frequent]
    seen, pieces = set(), []
    for piece, score in [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), *words, *chars]:
        if piece not in seen:
            seen.add(piece)
            pieces.append((piece, score))
    return T5TokenizerFast(vocab=pieces, extra_ids=0, model_max_length=model_max_length)
