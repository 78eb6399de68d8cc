"""The Doors env: Gymnasium conventions, layouts per seed, the trap rule, the random bound."""

from __future__ import annotations

import random

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import empo_gym  # noqa: F401  (registers the ids)
from empo_gym.doors import FAMILIES, DoorsEnv, make_layout, random_success


def _play(env: DoorsEnv, policy, seed: int) -> dict:
    obs, info = env.reset(seed=seed)
    while True:
        obs, reward, terminated, truncated, info = env.step(policy(info))
        if terminated or truncated:
            return {"reward": reward, **info}


def test_registered_and_checks() -> None:
    env = gym.make("empo_gym/Doors-v0", depth=3)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=1)
    assert info["instruction"] == "Find the treasure." and obs.startswith("You are in the ")
    assert len(env.step(info["admissible_actions"][0])) == 5
    env.close()


def test_reset_is_deterministic_and_layouts_differ_per_seed() -> None:
    a, b = DoorsEnv(), DoorsEnv()
    assert a.reset(seed=3) == b.reset(seed=3)
    layouts = {make_layout(i).rooms + make_layout(i).safe for i in range(50)}
    assert len(layouts) == 50
    # the seed picks the layout, not the env's history
    a.reset(seed=9)
    assert a.reset(seed=3)[0] == b.reset(seed=3)[0]


def test_splits_are_disjoint_layout_ranges() -> None:
    train, test = DoorsEnv(split="train"), DoorsEnv(split="test")
    assert train.reset(seed=5)[1]["variation"] == 5
    assert test.reset(seed=5)[1]["variation"] == 1005
    assert train.reset(options={"layout": 1005})[1]["variation"] == 5


def test_safe_path_wins_and_any_trap_ends_with_zero() -> None:
    env = DoorsEnv(depth=4, doors=3)
    out = _play(env, lambda info: env.safe_action(), seed=0)
    assert out["reward"] == 1.0 and out["success"] and out["score"] == 100 and out["depth"] == 4
    env.reset(seed=0)
    env.step(env.safe_action())
    trap = next(a for a in env._actions() if a != env.safe_action())
    obs, reward, terminated, truncated, info = env.step(trap)
    assert (reward, terminated, info["success"], info["depth"]) == (0.0, True, False, 1)
    assert "trap" in obs and info["admissible_actions"] == []


def test_invalid_action_wastes_a_step_until_truncation() -> None:
    env = DoorsEnv(depth=2, max_steps=3)
    env.reset(seed=0)
    for _ in range(2):
        obs, reward, terminated, truncated, info = env.step("dance")
        assert info["invalid_action"] and not terminated and not truncated
    obs, reward, terminated, truncated, info = env.step("dance")
    assert truncated and not terminated
    with pytest.raises(RuntimeError, match="reset"):
        env.step("dance")


def test_random_policy_success_matches_the_bound() -> None:
    """The measured success of a uniformly random admissible policy is doors ** -depth
    (0.41 % at the bench's depth 5 with 3 doors)."""
    env, rng = DoorsEnv(depth=5, doors=3), random.Random(0)
    n = 30_000
    wins = sum(
        _play(env, lambda i: rng.choice(i["admissible_actions"]), s)["success"] for s in range(n)
    )
    p = random_success(5, 3)
    assert p < 0.02
    assert abs(wins / n - p) < 4 * (p * (1 - p) / n) ** 0.5


def test_families_share_no_word() -> None:
    a, b = FAMILIES["castle"], FAMILIES["cave"]
    assert not set(a["rooms"] + a["doors"]) & set(b["rooms"] + b["doors"])
    obs, _ = DoorsEnv(family="cave").reset(seed=0)
    assert not any(w in obs for w in a["rooms"])


def test_vector_env() -> None:
    envs = gym.vector.SyncVectorEnv([lambda: DoorsEnv(depth=2) for _ in range(3)])
    obs, info = envs.reset(seed=[0, 1, 2])
    assert len(obs) == 3
    obs, rewards, term, trunc, info = envs.step(["open red door"] * 3)
    assert rewards.shape == (3,)
    envs.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"depth": 0}, "depth must be"),
        ({"doors": 1}, "doors must be"),
        ({"family": "forest"}, "family='forest'"),
        ({"split": "dev"}, "split='dev'"),
        ({"depth": 3, "max_steps": 2}, "max_steps must be"),
    ],
)
def test_bad_arguments_are_named(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        DoorsEnv(**kwargs)


def test_bad_reset_option() -> None:
    with pytest.raises(ValueError, match="expected 'layout'"):
        DoorsEnv().reset(options={"goal": 1})
