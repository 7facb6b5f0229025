"""HPSv3 on transformers' Qwen2-VL: loader for both key namings, scoring at the <|Reward|> token."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, Qwen2VLForConditionalGeneration

from cgrpo_core.rewards.base import MissingCheckpointError, RewardBatch
from cgrpo_core.rewards.config import HPSv3Config, RewardModels
from cgrpo_core.rewards.hpsv3 import (
    INSTRUCTION,
    REWARD_SUFFIX,
    REWARD_TOKEN,
    HPSv3,
    load_hpsv3_model,
    resize_to_pixels,
)
from cgrpo_core.rewards.registry import load_reward
from cgrpo_core.toy.tiny.hpsv3 import build_tiny_hpsv3
from tests.cgrpo_core.rewards.scenes import random_scene

PIXELS = 4 * 28 * 28


@pytest.fixture(scope="module")
def hps_folders(tmp_path_factory):
    """The same tiny weights saved in the 4.4x naming and in the 5.x naming."""
    root = tmp_path_factory.mktemp("hpsv3")
    return {
        naming: build_tiny_hpsv3(root / naming, image_pixels=PIXELS, naming=naming) for naming in ("v4", "v5")
    }


def _cfg(base, weights):
    return HPSv3Config(base_dir=str(base), checkpoint_dir=str(weights), image_pixels=PIXELS, dtype="float32")


def _batch():
    rng = np.random.default_rng(0)
    images = [random_scene(rng)[0] for _ in range(3)]
    return RewardBatch(images, prompts=["a dog", "a cat in the snow on a sunny day", "a toy"])


@pytest.mark.parametrize(
    ("size", "expected"),
    [((512, 512), (448, 448)), ((1024, 768), (504, 364)), ((56, 56), (56, 56)), ((20, 30), (56, 84))],
)
def test_resize_to_pixels_matches_smart_resize(size, expected):
    # 512: round(512/28)*28 = 504, 504^2 > 200704 -> beta = sqrt(512^2/200704) -> floor(448/28)*28 = 448
    # 1024x768: beta = sqrt(786432/200704) = 1.9795 -> w floor(517.3/28)*28 = 504, h floor(388.0/28)*28 = 364
    # 20x30 (w x h) at 3136: 28 x 28 < 3136 -> beta = sqrt(3136/600) = 2.286 -> w ceil(45.7/28)*28 = 56,
    # h ceil(68.6/28)*28 = 84
    pixels = 256 * 28 * 28 if size[0] > 100 else PIXELS
    assert resize_to_pixels(Image.new("RGB", size), pixels).size == expected


def test_prompt_is_the_trained_instruction_with_one_reward_token(hps_folders):
    model, processor = load_hpsv3_model(_cfg(*hps_folders["v4"]))
    reward = HPSv3(model, processor, _cfg(*hps_folders["v4"]), "cpu")
    inputs = reward.inputs([(Image.new("RGB", (64, 64)), "a red backpack")])
    text = processor.tokenizer.decode(inputs["input_ids"][0])
    assert INSTRUCTION.format(text_prompt="a red backpack") + REWARD_SUFFIX in text
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    assert (inputs["input_ids"] == processor.tokenizer.convert_tokens_to_ids(REWARD_TOKEN)).sum() == 1
    assert "**Visual Quality:**  \n" in INSTRUCTION  # trailing spaces of the trained prompt kept


def test_score_equals_transformers_qwen2vl_plus_head(hps_folders):
    """Independent path: the released-format file loaded into Qwen2VLForConditionalGeneration (5.x names)."""
    base, weights = hps_folders["v5"]
    cfg = _cfg(base, weights)
    model, processor = load_hpsv3_model(cfg)
    reward = HPSv3(model, processor, cfg, "cpu")
    batch = _batch()
    scores = reward(batch)

    state = load_file(str(weights / "HPSv3.safetensors"))
    config = AutoConfig.from_pretrained(base)
    config.text_config.vocab_size = state["model.language_model.embed_tokens.weight"].shape[0]
    full = Qwen2VLForConditionalGeneration(config).eval()
    full.load_state_dict({k: v for k, v in state.items() if not k.startswith("rm_head.")}, strict=True)
    head = torch.nn.Sequential(*model.head)  # same architecture, weights from the file below
    head.load_state_dict(
        {k.removeprefix("rm_head."): v for k, v in state.items() if k.startswith("rm_head.")}
    )
    inputs = reward.inputs(list(zip(batch.images, batch.prompts, strict=True)))
    reward_id = processor.tokenizer.convert_tokens_to_ids(REWARD_TOKEN)
    with torch.no_grad():
        hidden = full(**inputs, output_hidden_states=True).hidden_states[
            -1
        ]  # (B, L, H), after the final norm
        position = (inputs["input_ids"] == reward_id).int().argmax(1)  # (B,)
        mu = head(hidden[torch.arange(3), position])[:, 0]
    torch.testing.assert_close(scores, mu, atol=1e-5, rtol=0)


def test_both_key_namings_give_the_same_scores(hps_folders):
    batch = _batch()
    v4 = HPSv3(*load_hpsv3_model(_cfg(*hps_folders["v4"])), _cfg(*hps_folders["v4"]), "cpu")(batch)
    v5 = HPSv3(*load_hpsv3_model(_cfg(*hps_folders["v5"])), _cfg(*hps_folders["v5"]), "cpu")(batch)
    torch.testing.assert_close(v4, v5)


def test_padding_does_not_change_a_score(hps_folders):
    cfg = _cfg(*hps_folders["v4"])
    reward = HPSv3(*load_hpsv3_model(cfg), cfg, "cpu")
    batch = _batch()
    together = reward(batch)
    alone = torch.cat(
        [reward(RewardBatch([im], prompts=[p])) for im, p in zip(batch.images, batch.prompts, strict=True)]
    )
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_missing_files_name_what_to_download(hps_folders, tmp_path):
    base, weights = hps_folders["v4"]
    with pytest.raises(MissingCheckpointError, match="MizzenAI/HPSv3 HPSv3.safetensors"):
        load_reward("hpsv3", RewardModels(hpsv3=_cfg(base, tmp_path)))
    with pytest.raises(MissingCheckpointError, match="Qwen/Qwen2-VL-7B-Instruct"):
        load_reward("hpsv3", RewardModels(hpsv3=_cfg(tmp_path, weights)))


def test_tokenizer_that_does_not_fit_the_weights_is_refused(hps_folders, tmp_path):
    base, _ = hps_folders["v4"]
    state = load_file(str(hps_folders["v4"][1] / "HPSv3.safetensors"))
    state["model.embed_tokens.weight"] = state["model.embed_tokens.weight"][:100]
    save_file(state, str(tmp_path / "HPSv3.safetensors"))
    with pytest.raises(ValueError, match="does not match the HPSv3 weights"):
        load_hpsv3_model(_cfg(base, tmp_path))
