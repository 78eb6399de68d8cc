"""ScienceWorld under bad input and failure: variations of another split, the heap floor, a JVM
killed mid-episode, unencodable actions, the gold path generated once (JVM cases are slow)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from empo_gym.ood import ScienceWorldOODEnv
from empo_gym.scienceworld.env import ScienceWorldEnv
from empo_gym.scienceworld.jvm import MIN_HEAP_MB, ScienceWorldJVM, ScienceWorldJVMError
from empo_gym.scienceworld.tasks import (
    TASK_NAMES,
    VARIATION_SPLITS,
    split_of_variation,
    split_variations,
)


# ------------------------------------------------------------------ no JVM
def test_variation_of_another_split_is_rejected_before_any_jvm_starts() -> None:
    env = ScienceWorldEnv(task="boil", split="train")
    with pytest.raises(ValueError, match=r"variation 25 of task 'boil' belongs to split 'test'"):
        env.reset(options={"variation": 25})
    with pytest.raises(ValueError, match=r"int in \[0, 30\)"):
        env.reset(options={"variation": 30})
    assert env._sim is None


def test_split_tables_partition_every_task() -> None:
    for task, (total, _, _) in VARIATION_SPLITS.items():
        parts = [split_variations(task, s) for s in ("train", "dev", "test")]
        assert sorted(sum(parts, [])) == list(range(total)), task
        for split, part in zip(("train", "dev", "test"), parts, strict=True):
            assert part and {split_of_variation(task, v) for v in part} == {split}


def test_heap_below_the_floor_is_a_clear_error_at_construction() -> None:
    with pytest.raises(ValueError, match=rf"below the floor of {MIN_HEAP_MB} MB"):
        ScienceWorldEnv(jvm_max_heap_mb=64)
    with pytest.raises(ValueError, match="int number of MB"):
        ScienceWorldEnv(jvm_max_heap_mb="lots")


def test_ood_source_stage_trains_on_train_variations() -> None:
    assert ScienceWorldOODEnv(stage="source").split == "train"
    assert ScienceWorldOODEnv(stage="target").split == "test"
    assert ScienceWorldOODEnv(stage="source", split="dev").split == "dev"


# ------------------------------------------------------------------ real JVM
@pytest.mark.slow
def test_static_split_table_matches_the_jvm() -> None:
    sim = ScienceWorldJVM()
    try:
        for task in TASK_NAMES:
            sim.load(task, 0, "easy", False)
            assert sim.get_max_variations(task) == VARIATION_SPLITS[task][0], task
            assert sorted(sim.get_variations_train()) == split_variations(task, "train"), task
            assert sorted(sim.get_variations_dev()) == split_variations(task, "dev"), task
            assert sorted(sim.get_variations_test()) == split_variations(task, "test"), task
    finally:
        sim.close()


@pytest.mark.slow
def test_killed_jvm_raises_one_clear_error_and_reset_recovers() -> None:
    env = ScienceWorldEnv(task="boil", split="test")
    try:
        first, _ = env.reset(seed=1)
        env.step("look around")
        pid = env.simulator.pid
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(
            ScienceWorldJVMError, match=rf"JVM \(pid {pid}\) was killed by signal 9"
        ):
            env.step("look around")
        with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
            env.step("look around")
        assert env.reset(seed=1)[0] == first
        assert env.simulator.pid != pid
        _, _, _, _, info = env.step("look around")
        assert not info["invalid_action"]
    finally:
        env.close()


@pytest.mark.slow
def test_unencodable_action_is_an_invalid_noop() -> None:
    env = ScienceWorldEnv(task="boil", split="test", reuse_jvm=True)
    try:
        _, info0 = env.reset(seed=0)
        obs, reward, terminated, _, info = env.step("look around\udcff")
        assert info["invalid_action"] and reward == 0.0 and not terminated
        assert "cannot be encoded" in obs
        assert info["score"] == info0["score"] and not info["observation_truncated"]
        _, _, _, _, info = env.step("look around")  # the simulator is unharmed
        assert not info["invalid_action"]
    finally:
        env.close()


@pytest.mark.slow
def test_oracle_reset_generates_the_gold_path_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    load = ScienceWorldJVM.load

    class CountingServer:
        def __init__(self, server: Any) -> None:
            self._server = server

        def __getattr__(self, name: str) -> Any:
            if name in ("load", "reset"):
                calls.append(name)
            return getattr(self._server, name)

    def counting_load(self: ScienceWorldJVM, *args: Any, **kwargs: Any) -> None:
        if not isinstance(self.server, CountingServer):
            self.server = CountingServer(self.server)
        load(self, *args, **kwargs)

    monkeypatch.setattr(ScienceWorldJVM, "load", counting_load)
    env = ScienceWorldEnv(task="boil", split="test", oracle_info=True, reuse_jvm=True)
    try:
        _, info = env.reset(seed=0)
        assert info["oracle"]["gold_actions"]
        assert calls == ["load"]  # no server.reset(): it would regenerate the gold path
    finally:
        env.close()


@pytest.mark.slow
def test_out_of_memory_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("empo_gym.scienceworld.jvm.MIN_HEAP_MB", 64)
    env = ScienceWorldEnv(
        task="boil", split="test", oracle_info=True, jvm_max_heap_mb=64, reuse_jvm=True
    )
    try:
        with pytest.raises(ScienceWorldJVMError, match=r"ran out of memory \(heap 64 MB\)"):
            env.reset(seed=0)
    finally:
        env.close()


@pytest.mark.slow
def test_boil_gold_path_succeeds_at_the_heap_floor() -> None:
    env = ScienceWorldEnv(
        task="boil",
        split="test",
        oracle_info=True,
        jvm_max_heap_mb=MIN_HEAP_MB,
        reuse_jvm=True,
        max_steps=500,  # the whole gold path (124 actions on this variation)
    )
    try:
        _, info = env.reset(seed=0)
        for action in info["oracle"]["gold_actions"]:
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        assert info["success"], info["score"]
    finally:
        env.close()


@pytest.mark.slow
def test_spare_jvm_of_a_closed_env_is_stopped() -> None:
    env = ScienceWorldEnv(task="boil", split="test")
    env.reset(seed=0)
    spare = env._supply._next
    assert spare is not None
    env.close()
    jvm = spare.result()
    jvm.process.wait(timeout=30)
    assert not jvm.alive
