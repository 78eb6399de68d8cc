"""Same seed, same episode: every task, in one env with history and in a fresh env (slow).

ScienceWorld draws from one JVM-wide random generator and enumerates objects in hash order, so
an env that reused its JVM gave another first observation, other action names and other
dynamics for a seed it had already played. For every task this plays seed 0 of the test split
twice in one env (which has played every task before) and once in a fresh env, replaying the
first :data:`GOLD_STEPS` gold actions, and compares every observation, score and admissible
action list.

Budget: one variation per task and the gold path truncated to GOLD_STEPS actions (the gold
paths are stored in data/gold_prefixes.json: generating them costs 5-15 s per task). Measured
on a 2-core machine shared with other jobs: see the module's note in the closing report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from empo_gym.scienceworld.env import ScienceWorldEnv
from empo_gym.scienceworld.tasks import TASK_NAMES

pytestmark = pytest.mark.slow

#: Gold actions replayed per episode (the stored prefixes hold up to 12).
GOLD_STEPS = 8
_GOLD = json.loads((Path(__file__).parent / "data" / "gold_prefixes.json").read_text())


def _play(env: ScienceWorldEnv, task: str) -> list[Any]:
    """The observable trace of seed 0 under the stored gold prefix."""
    obs, info = env.reset(seed=_GOLD["seed"], options={"task": task})
    assert info["variation"] == _GOLD["tasks"][task]["variation"]
    trace: list[Any] = [(obs, info["admissible_actions"], info["look"], info["inventory"])]
    for action in _GOLD["tasks"][task]["gold_actions"][:GOLD_STEPS]:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((action, obs, reward, info["score"], info["admissible_actions"]))
        if terminated or truncated:
            break
    return trace


@pytest.fixture(scope="module")
def played_env() -> ScienceWorldEnv:
    """One env for all tasks: it carries the history of every episode before."""
    env = ScienceWorldEnv(split=_GOLD["split"])
    yield env
    env.close()


@pytest.mark.parametrize("task", TASK_NAMES)
def test_same_seed_same_episode_in_this_env_and_a_fresh_env(
    played_env: ScienceWorldEnv, task: str
) -> None:
    first = _play(played_env, task)
    again = _play(played_env, task)
    # a fresh env whose first (and only) episode runs in its first JVM: no spare to start
    fresh_env = ScienceWorldEnv(split=_GOLD["split"], reuse_jvm=True)
    try:
        fresh = _play(fresh_env, task)
    finally:
        fresh_env.close()
    assert len(first) > 1
    for step, (a, b, c) in enumerate(zip(first, again, fresh, strict=True)):
        assert a == b, f"{task}: the second episode differs at step {step}"
        assert a == c, f"{task}: the fresh env differs at step {step}"


def test_reused_jvm_is_the_explicit_non_reproducible_option() -> None:
    """The opt-in keeps one JVM: its second reset runs in the same process."""
    env = ScienceWorldEnv(task="boil", split="test", reuse_jvm=True)
    try:
        env.reset(seed=0)
        pid = env.simulator.pid
        env.reset(seed=0)
        assert env.simulator.pid == pid
    finally:
        env.close()
    default = ScienceWorldEnv(task="boil", split="test")
    try:
        default.reset(seed=0)
        pid = default.simulator.pid
        default.reset(seed=0)
        assert default.simulator.pid != pid  # a fresh JVM per episode
    finally:
        default.close()
