"""QA: ScienceWorld behaviours of issue 2 not covered elsewhere (real JVM, slow)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from empo_gym.scienceworld.env import ScienceWorldEnv
from tests.scienceworld.test_jvm_lifecycle import _wait_gone

pytestmark = pytest.mark.slow


def test_no_jvm_after_normal_interpreter_exit_without_close() -> None:
    script = textwrap.dedent(
        """
        from empo_gym.scienceworld.env import ScienceWorldEnv
        env = ScienceWorldEnv(task="find-plant")
        env.reset(seed=0)
        print(env.simulator.pid, flush=True)
        # no close(): the interpreter exits with the env still referenced
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    pid = int(out.stdout.strip().splitlines()[-1])
    assert _wait_gone(pid, timeout=20.0), "the JVM outlived a normally exiting Python process"


def test_two_envs_same_seed_same_variation_and_first_observation() -> None:
    # GRPO groups use separate env copies: they must agree, not just one env with itself
    a, b = ScienceWorldEnv(task="boil", split="train"), ScienceWorldEnv(task="boil", split="train")
    try:
        for seed in (0, 7):
            oa, ia = a.reset(seed=seed)
            ob, ib = b.reset(seed=seed)
            assert (ia["variation"], oa) == (ib["variation"], ob)
            assert ia["variation"] in a.variations("boil", "train")
    finally:
        a.close()
        b.close()


def test_task_id_option_and_per_task_step_limit() -> None:
    env = ScienceWorldEnv(split="dev")  # no fixed task
    try:
        _, info = env.reset(seed=0, options={"task": "6-1"})  # chemistry-mix by id
        assert info["task"] == "chemistry-mix"
        assert env.max_steps == 60 and info["max_steps"] == 60
        _, info = env.reset(seed=0, options={"task": "boil"})
        assert env.max_steps == 30
        # task drawn per reset when none is fixed; deterministic per seed
        t1 = env.reset(seed=3)[1]["task"]
        t2 = env.reset(seed=3)[1]["task"]
        assert t1 == t2
    finally:
        env.close()


def test_invalid_action_is_a_noop_on_the_score() -> None:
    env = ScienceWorldEnv(task="boil", max_steps=50)
    try:
        _, info = env.reset(seed=0)
        score0 = info["score"]
        for action in ("", "x" * 10_000, "fly to the moon", "ça va 你好"):
            obs, reward, term, trunc, info = env.step(action)
            assert reward == 0.0 and not term and info["score"] == score0
            assert info["invalid_action"] is True, action
            assert isinstance(obs, str) and obs
    finally:
        env.close()
