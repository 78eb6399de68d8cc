"""The memory session: the one embed -> record -> retrieve driver of wrapper and agent."""

from __future__ import annotations

import numpy as np
import pytest

from empo_gym.memory import EpisodeRecorder, MemorySession, MemoryStore, TemplateTipWriter
from tests.counting import CountingEmbedder


def _session(**kw) -> MemorySession:
    return MemorySession(EpisodeRecorder(MemoryStore(CountingEmbedder())), **kw)


def _fill(session: MemorySession, partition: str, state: str, action: str) -> None:
    eid = session.start(task="t", partition=partition)
    session.look([state], episodes=[eid], partitions=[partition])
    assert session.record(eid, action, score=50)
    session.end(eid, score=50, success=False)
    session.flush(TemplateTipWriter())


def test_look_embeds_each_needed_state_once_records_and_retrieves_by_partition():
    session = _session()
    _fill(session, "a", "a red room", "go north")
    emb = session.store.embedder
    emb.texts.clear()
    eid = session.start(task="t", partition="a")
    tips, vecs = session.look(
        ["a red room", "a red room", "unused", "novelty only"],
        episodes=[eid, None, None, None],
        partitions=["a", "b", "a", "a"],
        retrieve=[True, True, False, False],
        embed=[False, False, False, True],
    )
    # one embedder call for the states that need a vector; the unused one is a zero row
    assert emb.texts == ["a red room", "a red room", "novelty only"]
    assert not vecs[2].any() and vecs[0] == pytest.approx(vecs[1])
    # partition "a" holds the memory, "b" never sees it, the third state did not ask
    assert len(tips[0]) == 1 and "go north" in tips[0][0] and tips[1:] == [[], [], []]
    # the recorded state keeps the vector it was retrieved with (the entry's key)
    assert session.record(eid, "open door")
    ep = session.end(eid, score=0, success=False)
    assert ep is not None and np.array_equal(ep.keys[0], vecs[0])


def test_max_tips_chars_keeps_whole_flattened_memories():
    session = _session(max_tips_chars=10)
    _fill(session, "a", "a red room", "go north")
    tips, _ = session.look(["a red room"], episodes=[None], partitions=["a"])
    assert tips == [[]]  # the one memory is longer than 10 characters: dropped whole
    unbounded = MemorySession(session.recorder)
    (memories,), _ = unbounded.look(["a red room"], episodes=[None], partitions=["a"])
    assert memories == [e.text for e in session.store.entries("a")]


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 states but 1 episodes"):
        _session().look(["x", "y"], episodes=[None], partitions=["a", "a"])
    with pytest.raises(TypeError, match="EpisodeRecorder"):
        MemorySession(MemoryStore("hashing"))  # type: ignore[arg-type]
