"""QA: memory-file errors and partition isolation through the wrapper, FIFO + dedup."""

from __future__ import annotations

import numpy as np
import pytest

from empo_gym.memory import MemoryStore, MemoryWrapper
from empo_gym.memory.store import MemoryEntry, MemoryFileError
from empo_gym.toy import ToyTextEnv

WIN = ["go north", "take key", "open chest"]


def play(env, actions, **options):
    obs, info = env.reset(seed=0, options=options or None)
    seen = [(obs, info)]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        seen.append((obs, info))
        if term or trunc:
            break
    return seen


@pytest.mark.parametrize("content", [b"not a memory file", b'{"schema_version": 1}'])
def test_wrapper_with_corrupt_memory_file_names_it_and_leaves_it(tmp_path, content):
    path = tmp_path / "tips.memory.safetensors"
    path.write_bytes(content)
    with pytest.raises(MemoryFileError, match="tips.memory.safetensors"):
        MemoryWrapper(ToyTextEnv(), store=str(path))
    assert path.read_bytes() == content  # a failed load writes nothing


def test_wrapper_with_new_memory_file_creates_it_after_an_episode(tmp_path):
    path = tmp_path / "sub" / "new.memory.safetensors"
    env = MemoryWrapper(ToyTextEnv(), store=str(path))
    assert len(env.store) == 0 and not path.exists()
    play(env, WIN)
    assert len(MemoryStore.load(path)) == len(WIN)


def test_partitions_are_isolated_through_the_wrapper():
    env = MemoryWrapper(ToyTextEnv())
    play(env, WIN, memory_partition="a")
    assert play(env, [], use_memory=True, memory_partition="a")[0][0]["tips"] != ""
    obs, info = play(env, [], use_memory=True, memory_partition="b")[0]
    assert obs["tips"] == "" and obs["tip_block"] == "" and info["tips"] == []


def test_fifo_and_dedup_interplay():
    # a duplicate of a live entry is dropped and does not refresh its age; once evicted, the
    # same content can come back as the newest entry
    store = MemoryStore("hashing", capacity=2)
    e = [MemoryEntry(f"t{i}", key=f"state number {i}", score=i, partition="s") for i in range(3)]
    assert store.add([e[0], e[1]]) == 2
    assert store.add([e[0]]) == 0
    assert store.add([e[2]]) == 1  # evicts e[0], the oldest, despite the duplicate add
    assert [x.text for x in store.entries("s")] == ["t1", "t2"]
    assert store.add([e[0]]) == 1
    assert [x.text for x in store.entries("s")] == ["t2", "t0"]


def test_top_k_and_threshold_settings_survive_reload(tmp_path):
    store = MemoryStore("hashing", capacity=7, threshold=0.25, top_k=3)
    store.add(
        [
            MemoryEntry(
                f"tip {i}",
                key="the same state",
                score=float(i),
                partition="s",
                step=i,
                action="look",
            )
            for i in range(1)
        ]
    )
    store.add(
        [
            MemoryEntry(f"tip {i}", key=f"the same state {i}", score=float(i), partition="s")
            for i in range(1, 6)
        ]
    )
    path = store.save(tmp_path / "m.safetensors")
    loaded = MemoryStore.load(path)
    assert (loaded.capacity, loaded.threshold, loaded.top_k) == (7, 0.25, 3)
    got = loaded.query("s", "the same state")
    assert len(got) == 3 and [x.score for x in got] == sorted((x.score for x in got), reverse=True)
    assert got == store.query("s", "the same state")
    np.testing.assert_array_equal(loaded.embeddings("s"), store.embeddings("s"))
