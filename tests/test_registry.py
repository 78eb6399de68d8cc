"""Env profiles: validation and the per-env settings other modules read from them."""

from __future__ import annotations

import dataclasses

import pytest

from empo_gym.registry import GENERIC, EnvInfo, env_names, env_profile, get_env_info


def test_profiles_carry_the_per_env_llm_settings() -> None:
    sw, ws, ood = (get_env_info(n) for n in ("scienceworld", "webshop", "ood"))
    assert (sw.prompt_style, sw.action_format, sw.max_action_tokens) == (
        "scienceworld",
        "plain",
        32,
    )
    assert (ws.prompt_style, ws.action_format, ws.max_action_tokens) == ("webshop", "tagged", 512)
    assert ood.prompt_style == "scienceworld"
    assert env_profile("not-registered") is GENERIC
    assert set(env_names()) >= {"scienceworld", "webshop", "ood"}


def test_profiles_hold_env_facts_only() -> None:
    # the trainers' presets live with the trainers (empo_gym.agents.training.presets)
    names = {f.name for f in dataclasses.fields(EnvInfo)}
    assert not {n for n in names if "train" in n or "preset" in n}, names


def test_task_aliases_resolve_through_the_profile() -> None:
    pytest.importorskip("scienceworld")
    assert get_env_info("scienceworld").env_kwargs("1-1", "train")["task"] == "boil"
    with pytest.raises(ValueError, match="unknown task 'fly' for env 'scienceworld'"):
        get_env_info("scienceworld").env_kwargs("fly", "train")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("prompt_style", "chatty", "prompt_style='chatty'; expected one of"),
        ("action_format", "json", "action_format='json'; expected one of"),
        ("default_split", "dev", "default_split='dev'; expected one of its splits"),
    ],
)
def test_bad_profiles_are_rejected(field: str, value: str, message: str) -> None:
    kwargs = dict(name="x", gym_id="x/X-v0", description="", splits=("train", "test"))
    kwargs["default_split"] = "test"
    kwargs[field] = value
    with pytest.raises(ValueError, match=message):
        EnvInfo(**kwargs)
