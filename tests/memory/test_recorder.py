"""The episode recorder, the one partition rule, and the wrapper's recording modes (fast)."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import empo_gym.memory as memory
from empo_gym.memory import (
    Episode,
    EpisodeRecorder,
    MemoryStore,
    MemoryWrapper,
    Step,
    TemplateTipWriter,
    memory_partition,
)
from empo_gym.toy import ToyTextEnv
from tests.counting import CountingEmbedder

WIN = ["go north", "take key", "open chest"]


class CountingWriter:
    """Template tips, counting the calls and the episodes of each."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, episodes: list[Episode]) -> list[str]:
        self.calls.append(len(episodes))
        return TemplateTipWriter()(episodes)


def _record(rec: EpisodeRecorder, partition: str, states: list[str], actions: list[str]) -> int:
    eid = rec.start(task="Open the chest.", partition=partition)
    for state, action in zip(states, actions, strict=True):
        rec.see(eid, state, rec.store.embedder([state])[0])
        assert rec.act(eid, action, score=10.0)
    return eid


def test_flush_writes_all_queued_episodes_with_one_writer_call_and_the_recorded_keys():
    emb = CountingEmbedder()
    rec = EpisodeRecorder(MemoryStore(emb))
    for partition, states in [("a", ["hall", "vault"]), ("b", ["hall"]), ("a", ["cellar"])]:
        eid = _record(rec, partition, states, WIN[: len(states)])
        rec.end(eid, final_score=50, success=False)
    keys = np.concatenate([ep.keys for ep in rec.pending])
    embedded = len(emb.texts)
    writer = CountingWriter()
    written = rec.flush(writer)
    assert writer.calls == [3]  # one batched call for every queued episode
    assert [ep.partition for ep in written] == ["a", "b", "a"] and rec.pending == []
    assert all(ep.tip and ep.tip.startswith("In 'Open the chest.'") for ep in written)
    assert len(emb.texts) == embedded  # storing embedded nothing: the recorded keys are used
    stored = np.concatenate([rec.store.embeddings("a"), rec.store.embeddings("b")])
    assert sorted(map(tuple, stored.tolist())) == sorted(map(tuple, keys.tolist()))
    assert [e.key for e in rec.store.entries("a")] == ["hall", "vault", "cellar"]
    assert rec.entries_added == 4
    assert rec.flush(writer) == [] and writer.calls == [3]  # nothing queued: no writer call


def test_episodes_without_keys_are_embedded_in_one_batch():
    emb = CountingEmbedder()
    rec = EpisodeRecorder(MemoryStore(emb))
    eps = [Episode("t", "s", [Step("hall", "go north"), Step("vault", "take key")]) for _ in "ab"]
    rec.flush(TemplateTipWriter(), eps)
    assert emb.texts == ["hall", "vault", "hall", "vault"]
    assert all(ep.keys is not None and ep.keys.shape == (2, emb.dim) for ep in eps)


def test_running_stopped_and_finished_episodes_are_claimed_with_the_callers_outcome():
    rec = EpisodeRecorder(MemoryStore("hashing"))
    finished = _record(rec, "s", ["hall"], ["go north"])
    rec.end(finished, final_score=20, success=False)
    stopped = _record(rec, "s", ["hall", "vault"], ["go north", "take key"])
    rec.stop(stopped)
    running = _record(rec, "s", ["hall"], ["go north"])
    for eid in (finished, stopped, running):
        ep = rec.claim(eid, final_score=70, success=True)
        assert ep is not None and ep.episode_id == eid
        assert (ep.final_score, ep.success) == (70.0, True)
        assert ep.keys is not None and len(ep.keys) == len(ep.steps)
    assert rec.claim(running, final_score=0, success=False) is None  # taken once
    assert rec.claim(None, final_score=0, success=False) is None
    assert not rec.is_running(running)


def test_unfinished_episodes_drop_or_wait_and_bad_use_errors():
    rec = EpisodeRecorder(MemoryStore("hashing"))
    dropped = _record(rec, "s", ["hall"], ["go north"])
    rec.drop(dropped)
    assert rec.claim(dropped, final_score=0, success=False) is None
    waiting = _record(rec, "s", ["hall"], ["go north"])
    rec.stop(waiting)
    assert rec.pending == []  # a stopped episode is never flushed by itself
    assert rec.discard() == 1 and rec.claim(waiting, final_score=0, success=False) is None
    eid = rec.start(task="t", partition="s")
    assert rec.act(eid, "go north") is False  # no state seen: nothing to record
    assert rec.end(eid, final_score=0, success=False) is None  # no steps: not queued
    with pytest.raises(KeyError, match="not running"):
        rec.see(eid, "hall", np.zeros(384, np.float32))
    with pytest.raises(TypeError, match="MemoryStore"):
        EpisodeRecorder("hashing")  # type: ignore[arg-type]
    eid = _record(rec, "s", ["hall"], ["go north"])
    rec.end(eid, final_score=0, success=False)
    with pytest.raises(ValueError, match="returned 0 tips for 1 episodes"):
        rec.flush(lambda episodes: [])


def test_flush_merges_into_the_store_path(tmp_path):
    path = tmp_path / "mem.safetensors"
    rec = EpisodeRecorder(MemoryStore("hashing"), store_path=path)
    rec.end(_record(rec, "s", ["hall"], ["go north"]), final_score=0, success=False)
    rec.flush(TemplateTipWriter())
    assert len(MemoryStore.load(path)) == 1


def test_one_partition_rule():
    assert memory_partition({"task": "boil", "variation": 3}) == "boil/3"
    assert memory_partition({"task": "webshop", "goal_index": 0}) == "webshop/0"
    assert memory_partition({"task": "boil", "variation": 3}, by="task") == "boil"
    assert memory_partition({"variation": 3}, default="fallback") == "fallback"
    with pytest.raises(ValueError, match="no 'task' key"):
        memory_partition({"variation": 3})
    with pytest.raises(
        ValueError, match="unknown partition mode 'goal'; expected one of: instance"
    ):
        memory_partition({"task": "t"}, by="goal")
    # the wrapper, the memory-only agent and the rollout engine use this very function
    from empo_gym.agents.llm import memory_only, rollout

    assert MemoryWrapper(ToyTextEnv()).core.partition_fn is memory_partition
    assert memory_only.memory_partition is memory_partition
    assert rollout.memory_partition is memory_partition


def test_old_names_warn_and_still_work():
    with pytest.warns(DeprecationWarning, match="MemoryObservationWrapper is deprecated") as got:
        env = memory.MemoryObservationWrapper(ToyTextEnv(), novelty=False)
    assert len(got) == 1 and isinstance(env, MemoryWrapper)
    env.reset(seed=0)
    for a in WIN:
        env.step(a)
    assert len(env.store) == 3
    for old, new in [
        ("Trajectory", Episode),
        ("default_slot", memory_partition),
        ("memory_slot", memory_partition),
        ("SLOT_MODES", memory.PARTITION_MODES),
        ("trajectory_entries", memory.episode_entries),
    ]:
        with pytest.warns(DeprecationWarning, match=f"{old} is deprecated"):
            assert getattr(memory, old) is new
    from empo_gym.memory import tips

    with pytest.warns(DeprecationWarning):
        assert tips.Trajectory is Episode
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MemoryWrapper(ToyTextEnv())  # the new name is quiet


def test_wrapper_sharing_a_recorder_queues_episodes_instead_of_writing():
    rec = EpisodeRecorder(MemoryStore("hashing"))
    envs = [MemoryWrapper(ToyTextEnv(), recorder=rec) for _ in range(2)]
    assert all(e.store is rec.store and e.recorder is rec for e in envs)
    _, info = envs[0].reset(seed=0)
    eid = info["memory_episode"]
    for a in WIN:
        _, _, term, _, step_info = envs[0].step(a)
    assert term and "memory_tip" not in step_info and len(rec.store) == 0
    (ep,) = rec.pending
    assert ep.episode_id == eid and [s.action for s in ep.steps] == WIN and ep.success
    envs[1].reset(seed=0)
    envs[1].step("go north")
    envs[1].reset(seed=0)  # cut short: kept for a trainer to claim, never flushed by itself
    assert len(rec.pending) == 1
    rec.flush(TemplateTipWriter())
    _, info = envs[1].reset(seed=0, options={"use_memory": True})
    assert len(info["tips"]) == 1  # the other env reads what the flush wrote
    _, info = envs[1].reset(seed=0, options={"eval": True})
    assert "memory_episode" not in info  # evaluation episodes are not recorded
    with pytest.raises(ValueError, match="not the recorder's store"):
        MemoryWrapper(ToyTextEnv(), MemoryStore("hashing"), recorder=rec)
    with pytest.raises(ValueError, match="write_tips=False with a recorder"):
        MemoryWrapper(ToyTextEnv(), recorder=rec, write_tips=False)
    with pytest.raises(TypeError, match="EpisodeRecorder"):
        MemoryWrapper(ToyTextEnv(), recorder=object())  # type: ignore[arg-type]


def test_wrapper_embeds_a_state_only_for_what_uses_it():
    emb = CountingEmbedder()
    quiet = MemoryWrapper(ToyTextEnv(), MemoryStore(emb), write_tips=False, novelty=False)
    quiet.reset(seed=0)
    for a in WIN:
        quiet.step(a)
    assert emb.texts == []  # no retrieval, no novelty, no recording: nothing to embed
    writing = MemoryWrapper(ToyTextEnv(), MemoryStore(emb), novelty=False)
    obs, _ = writing.reset(seed=0)
    states = [obs["observation"]]
    for a in WIN:
        obs, *_ = writing.step(a)
        states.append(obs["observation"])
    assert emb.texts == states[:-1]  # each step's state once; the end state is no step's


def test_vector_wrapper_reports_episode_ids_of_a_shared_recorder():
    rec = EpisodeRecorder(MemoryStore("hashing"))
    envs = memory.MemoryVectorWrapper(gym.vector.SyncVectorEnv([ToyTextEnv] * 2), recorder=rec)
    _, info = envs.reset(seed=0)
    assert list(info["_memory_episode"]) == [True, True]
    ids = list(info["memory_episode"])
    for a in WIN:
        _, _, term, _, info = envs.step([a, a])
    assert term.all() and [ep.episode_id for ep in rec.pending] == ids
    assert len(rec.store) == 0
