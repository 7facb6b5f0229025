"""The policy tests' tiny FLUX/UNO checkpoint, for the trainers' tests."""

from tests.cgrpo_core.policy.conftest import policy, settings, tiny_config, tiny_folder  # noqa: F401
