"""Packing, UnoPE position ids, prompt and reference encoding."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from cgrpo_core.policy import Condition, PolicyConfig, encode_condition, encode_prompt, load_policy
from cgrpo_core.policy.conditioning import UNOPE_AXES, reference_ids
from cgrpo_core.policy.config import UnoPE
from cgrpo_core.policy.latents import grid_ids, pack_latents, unpack_latents
from tests.cgrpo_core.policy.helpers import checkerboard, solid


def test_pack_order_is_flux_order():
    # One channel, 4x4 latent with values 0..15 row-major: token 0 is the top-left 2x2 patch
    # [x00, x01, x10, x11] = [0, 1, 4, 5]; token 1 the patch right of it = [2, 3, 6, 7].
    latents = torch.arange(16.0).view(1, 1, 4, 4)
    tokens = pack_latents(latents)
    assert tokens.shape == (1, 4, 4)
    assert tokens[0, 0].tolist() == [0, 1, 4, 5]
    assert tokens[0, 1].tolist() == [2, 3, 6, 7]
    assert tokens[0, 2].tolist() == [8, 9, 12, 13]
    # Two channels: channel-major within a token (c0's patch, then c1's).
    two = torch.stack([torch.zeros(4, 4), torch.ones(4, 4)]).unsqueeze(0)
    assert pack_latents(two)[0, 0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_unpack_inverts_pack():
    latents = torch.randn(3, 16, 6, 4)
    assert torch.equal(unpack_latents(pack_latents(latents), 3, 2), latents)
    with pytest.raises(ValueError, match="even"):
        pack_latents(torch.zeros(1, 1, 3, 4))


def test_grid_ids():
    ids = grid_ids(2, 3, row_offset=5, col_offset=7)
    assert ids.tolist() == [[0, 5, 7], [0, 5, 8], [0, 5, 9], [0, 6, 7], [0, 6, 8], [0, 6, 9]]


@pytest.mark.parametrize(
    ("mode", "first", "second"),
    [
        # target grid 4x4; references of 2x2 then 1x3 tokens (UNO prepare_multi_ip offsets accumulate)
        ("diagonal", (4, 4), (6, 6)),
        ("height", (4, 0), (6, 0)),
        ("width", (0, 4), (0, 6)),
        ("none", (0, 0), (0, 0)),
    ],
)
def test_unope_offsets(mode, first, second):
    ids = reference_ids((4, 4), [(2, 2), (1, 3)], mode)
    assert ids.shape == (4 + 3, 3)
    assert ids[:4].tolist() == grid_ids(2, 2, *first).tolist()
    assert ids[4:].tolist() == grid_ids(1, 3, *second).tolist()


def test_unope_registry_matches_config_literal():
    assert set(UNOPE_AXES) == set(UnoPE.__args__)
    with pytest.raises(ValueError, match="choose from"):
        reference_ids((4, 4), [(1, 1)], "diag")


def test_condition_shapes_and_ids(policy, settings):
    cond = encode_condition(policy, "a dog in the snow", checkerboard(48, 6), settings.resolution)
    grid = settings.resolution // policy.pixel_multiple  # 32 / 8 = 4
    assert (cond.grid, cond.num_tokens, cond.batch) == (grid, 16, 1)
    assert cond.prompt_embeds.shape == (1, 16, 32) and cond.pooled_embeds.shape == (1, 32)
    assert cond.ref_tokens.shape == (1, 16, 64)  # reference resized to 32 px -> 4x4 tokens of 4 x 16 channels
    assert torch.equal(cond.ref_ids, grid_ids(4, 4, 4, 4))  # diagonal: past the target's last row and column
    assert torch.equal(cond.txt_ids, torch.zeros(16, 3))


def test_reference_latent_uses_flux_scaling(policy, settings):
    cond = encode_condition(policy, "a dog", solid((200, 10, 60)), settings.resolution)
    from cgrpo_core.policy.images import reference_tensor

    pixels = reference_tensor(solid((200, 10, 60)), 32, 8)
    raw = policy.vae.encode(pixels).latent_dist.mean
    expected = pack_latents((raw - 0.1159) * 0.3611)
    assert_close(cond.ref_tokens, expected)


def test_reference_size_and_several_references(tiny_config, settings):
    policy = load_policy(tiny_config.model_copy(update={"reference_size": 16}))
    cond = encode_condition(
        policy, "a dog", [solid((0, 0, 0)), solid((255, 0, 0), (64, 32))], settings.resolution
    )
    # 16-px long side: a 2x2-token reference, then a 2x1-token one (64x32 -> 16x8 px), offsets cumulative.
    assert cond.ref_tokens.shape[1] == 4 + 2
    assert cond.ref_ids[4:].tolist() == [[0, 6, 6], [0, 6, 7]]
    empty = encode_condition(policy, "a dog", [], settings.resolution)
    assert empty.ref_tokens.shape == (1, 0, 64) and empty.ref_ids.shape == (0, 3)


def test_empty_prompt_only_where_the_config_allows(policy, tiny_config):
    with pytest.raises(ValueError, match="allow_empty_prompt"):
        encode_prompt(policy, "  ")
    with pytest.raises(TypeError, match="string"):
        encode_prompt(policy, None)
    permissive = load_policy(tiny_config.model_copy(update={"allow_empty_prompt": True}))
    states, pooled = encode_prompt(permissive, "")
    assert states.shape == (1, 16, 32) and torch.isfinite(pooled).all()


def test_prompt_changes_the_text_embedding(policy):
    a, pa = encode_prompt(policy, "a dog in the snow")
    b, pb = encode_prompt(policy, "a red backpack")
    assert not torch.allclose(a, b) and not torch.allclose(pa, pb)


def test_resolution_must_be_a_token_multiple(policy):
    with pytest.raises(ValueError, match="multiple of 8"):
        encode_condition(policy, "a dog", solid((0, 0, 0)), 36)


def test_condition_expand_select_and_cat(policy, settings):
    a = encode_condition(policy, "a dog", solid((0, 0, 0)), settings.resolution)
    b = encode_condition(policy, "a cat", solid((9, 9, 9)), settings.resolution)
    both = Condition.cat([a, b])
    assert both.batch == 2 and torch.equal(both.prompt_embeds[1], b.prompt_embeds[0])
    assert torch.equal(both.select(torch.tensor([1])).pooled_embeds, b.pooled_embeds)
    assert a.expand(3).ref_tokens.shape[0] == 3
    with pytest.raises(ValueError, match="batch of 3"):
        both.expand(3)
    other_size = load_policy(PolicyConfig(**{**policy.config.model_dump(), "reference_size": 16}))
    small = encode_condition(other_size, "a dog", solid((0, 0, 0)), settings.resolution)
    with pytest.raises(ValueError, match="share"):
        Condition.cat([a, small])
