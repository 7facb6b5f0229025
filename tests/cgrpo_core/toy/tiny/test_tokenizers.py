"""Tiny tokenizers: real classes, real on-disk format, deterministic."""

import hashlib
import json

from transformers import CLIPTokenizer, T5TokenizerFast

from cgrpo_core.toy.tiny.tokenizers import train_clip_tokenizer, train_t5_tokenizer
from tests.conftest import REPO_ROOT

CORPUS = [
    item["prompt"] for item in json.loads((REPO_ROOT / "data/reference/dreambench_singleip.json").read_text())
]


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_clip_tokenizer_round_trip_and_coverage(tmp_path):
    tok = train_clip_tokenizer(CORPUS, vocab_size=800)
    tok.save_pretrained(tmp_path / "clip")
    loaded = CLIPTokenizer.from_pretrained(tmp_path / "clip")
    text = "a red backpack in the jungle"
    assert loaded(text).input_ids == tok(text).input_ids
    # Corpus words are single tokens; unseen text falls back to bytes, never to the unknown token.
    assert tok.convert_ids_to_tokens(tok(text).input_ids)[1:-1] == [
        "a</w>",
        "red</w>",
        "backpack</w>",
        "in</w>",
        "the</w>",
        "jungle</w>",
    ]
    ids = tok("Zebra #42 ~ éclair!").input_ids
    assert tok.unk_token_id not in ids[1:-1]


def test_t5_tokenizer_round_trip(tmp_path):
    tok = train_t5_tokenizer(CORPUS, vocab_size=300)
    tok.save_pretrained(tmp_path / "t5")
    loaded = T5TokenizerFast.from_pretrained(tmp_path / "t5")
    text = "a dog wearing a red hat"
    assert loaded(text).input_ids == tok(text).input_ids
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    assert tok.convert_ids_to_tokens(tok("a dog").input_ids) == ["\u2581a", "\u2581dog", "</s>"]


def test_building_twice_gives_byte_identical_files(tmp_path):
    for run in ("one", "two"):
        train_clip_tokenizer(CORPUS, 600).save_pretrained(tmp_path / run / "clip")
        train_t5_tokenizer(CORPUS, 300).save_pretrained(tmp_path / run / "t5")
    for sub in ("clip", "t5"):
        assert _digest(tmp_path / "one" / sub) == _digest(tmp_path / "two" / sub)
