"""Retrieval semantics, persistence and crash safety of the tip memory store."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from empo_gym.memory.embedders import HashingEmbedder
from empo_gym.memory.store import MemoryEntry, MemoryFileError, MemoryStore

ROOT = Path(__file__).resolve().parents[2]


class FixedEmbedder:
    """Embeds 'vec:a,b' as the unit vector (a, b, 0...) so similarities are exact."""

    name = "fixed-4"
    dim = 4

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 4), np.float32)
        for i, t in enumerate(texts):
            vals = [float(x) for x in t.split(":", 1)[1].split(",")]
            out[i, : len(vals)] = vals
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def entry(text: str, key: str = "vec:1,0", score: float = 0.0, partition: str = "s", **kw):
    return MemoryEntry(text, key=key, score=score, partition=partition, **kw)


def cos_key(c: float) -> str:
    """A key whose cosine with vec:1,0 is exactly c."""
    return f"vec:{c},{np.sqrt(max(0.0, 1 - c * c))}"


def test_threshold_is_strict_cosine_above_half():
    store = MemoryStore(FixedEmbedder())
    store.add(
        [entry("above", cos_key(0.51)), entry("at", cos_key(0.5)), entry("below", cos_key(0.3))]
    )
    assert [e.text for e in store.query("s", "vec:1,0")] == ["above"]
    sims = store.query_batch(["s"], ["vec:1,0"], with_similarity=True)[0]
    assert sims[0][1] == pytest.approx(0.51, abs=1e-5)


def test_ranked_by_score_not_similarity_and_top_k():
    store = MemoryStore(FixedEmbedder(), top_k=10)
    store.add([entry(f"m{i}", cos_key(0.99 - i * 0.02), score=i) for i in range(15)])
    got = store.query("s", "vec:1,0")
    assert [e.score for e in got] == [14, 13, 12, 11, 10, 9, 8, 7, 6, 5]
    assert len(store.query("s", "vec:1,0", k=3)) == 3


def test_score_ties_prefer_newer():
    store = MemoryStore(FixedEmbedder())
    store.add([entry("old", score=5), entry("new", "vec:0.9,0.1", score=5)])
    assert [e.text for e in store.query("s", "vec:1,0")] == ["new", "old"]


def test_dedup_by_content():
    store = MemoryStore(FixedEmbedder())
    assert store.add([entry("tip"), entry("tip")]) == 1
    assert store.add([entry("tip", score=99)]) == 0  # same key and text: kept once
    assert store.add([entry("tip", key="vec:0,1")]) == 1  # another state: another entry
    assert len(store) == 2


def test_fifo_eviction_per_partition():
    store = MemoryStore(FixedEmbedder(), capacity=3)
    store.add([entry(f"m{i}", score=i) for i in range(5)])
    store.add([entry("other", partition="t")])
    assert [e.text for e in store.entries("s")] == ["m2", "m3", "m4"]
    assert len(store.entries("t")) == 1
    # an evicted entry can be added again (its content left the de-dup index)
    assert store.add([entry("m0")]) == 1
    assert [e.text for e in store.entries("s")] == ["m3", "m4", "m0"]
    np.testing.assert_allclose(store.embeddings("s")[:, 0], 1.0)


def test_partition_isolation():
    store = MemoryStore(FixedEmbedder())
    store.add([entry("a", partition="task/0"), entry("b", partition="task/1")])
    assert [e.text for e in store.query("task/0", "vec:1,0")] == ["a"]
    assert [e.text for e in store.query("task/1", "vec:1,0")] == ["b"]
    assert store.query("task/2", "vec:1,0") == []


def test_batched_query_matches_single():
    store = MemoryStore("hashing")
    states = [f"you are in room {i} with a {w}" for i, w in enumerate(["door", "key", "cat"] * 5)]
    store.add(
        [entry(f"tip {i}", key=s, score=i, partition=f"s{i % 3}") for i, s in enumerate(states)]
    )
    partitions = [f"s{i % 3}" for i in range(len(states))]
    batch = store.query_batch(partitions, states)
    assert batch == [store.query(p, st) for p, st in zip(partitions, states, strict=True)]


def test_bad_inputs_raise_clear_errors():
    store = MemoryStore("hashing")
    with pytest.raises(TypeError, match="MemoryEntry"):
        store.add(["not an entry"])
    with pytest.raises(TypeError, match="partition"):
        MemoryEntry("t", key="k", score=1, partition=3)
    with pytest.raises(ValueError, match="capacity"):
        MemoryStore("hashing", capacity=0)
    with pytest.raises(ValueError, match="shape"):
        store.add([entry("x")], embeddings=np.zeros((1, 3)))


def _filled(n_partitions: int = 3) -> MemoryStore:
    store = MemoryStore(HashingEmbedder(dim=64), capacity=5)
    store.add(
        [
            entry(
                f"tip ünïcode ✓ {i}",
                key=f"state {i} 你好",
                score=i * 1.5,
                partition=f"s{i % n_partitions}",
                step=i,
                action=f"act {i}",
                metadata={"i": i, "nested": [1, "x"]},
            )
            for i in range(12)
        ]
    )
    return store


def _same(a: MemoryStore, b: MemoryStore) -> None:
    assert a.partitions() == b.partitions()
    assert a.embedder.name == b.embedder.name
    assert (a.capacity, a.threshold, a.top_k) == (b.capacity, b.threshold, b.top_k)
    for s in a.partitions():
        assert a.entries(s) == b.entries(s)
        np.testing.assert_array_equal(a.embeddings(s), b.embeddings(s))
        assert a.query(s, "state 3 你好") == b.query(s, "state 3 你好")


def test_persistence_round_trip(tmp_path):
    store = _filled()
    path = store.save(tmp_path / "m.memory.safetensors")
    loaded = MemoryStore.load(path)  # embedder rebuilt from the file's record
    _same(store, loaded)
    # FIFO order survives: adding continues to evict the oldest
    loaded.add([entry("new", key="state new", partition="s0")])
    store.add([entry("new", key="state new", partition="s0")])
    _same(store, loaded)
    assert not list(tmp_path.glob("*.tmp"))


def test_empty_store_round_trip(tmp_path):
    store = MemoryStore("hashing")
    store.save(tmp_path / "e.safetensors")
    assert len(MemoryStore.load(tmp_path / "e.safetensors")) == 0


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage bytes", b"\x08\x00\x00\x00\x00\x00\x00\x00{}\x00\x00\x00\x00\x00\x00", b"{}"],
)
def test_corrupt_file_names_the_file(tmp_path, content):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(MemoryFileError, match="bad.safetensors"):
        MemoryStore.load(path)


def test_foreign_safetensors_and_wrong_embedder(tmp_path):
    from safetensors.numpy import save_file

    foreign = tmp_path / "model.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(foreign))
    with pytest.raises(MemoryFileError, match="model.safetensors.*not an empo_gym memory file"):
        MemoryStore.load(foreign)
    path = _filled().save(tmp_path / "m.safetensors")
    with pytest.raises(MemoryFileError, match="m.safetensors.*hashing-64"):
        MemoryStore.load(path, HashingEmbedder(dim=32))
    with pytest.raises(MemoryFileError, match="does not exist"):
        MemoryStore.load(tmp_path / "missing.safetensors")


def test_truncated_file_is_corrupt_and_failed_load_keeps_store(tmp_path):
    store = _filled()
    path = store.save(tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    before = store.entries()
    with pytest.raises(MemoryFileError, match="m.safetensors"):
        MemoryStore.load(path)
    assert store.entries() == before
    # a failed merge-save leaves the in-memory store untouched and the file as it was
    with pytest.raises(MemoryFileError):
        store.save(path, merge=True)
    assert store.entries() == before
    assert path.read_bytes() == data[: len(data) // 2]


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    store = _filled()
    path = store.save(tmp_path / "m.safetensors")
    data = path.read_bytes()
    store.add([entry("more", key="another state", partition="s9")])

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == data
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert "s9" in store.partitions()


@pytest.mark.parametrize("kill_at", ["fsync", "replace", "write"])
def test_writer_killed_mid_write_leaves_previous_file(tmp_path, kill_at):
    store = _filled()
    path = store.save(tmp_path / "m.safetensors")
    original = MemoryStore.load(path)
    script = textwrap.dedent(
        f"""
        import os, io
        from empo_gym.memory.store import MemoryStore, MemoryEntry
        s = MemoryStore.load({str(path)!r})
        s.add([MemoryEntry("x" * 100000, key="k", score=1, partition="big")])
        kill_at = {kill_at!r}
        if kill_at == "replace":
            os.replace = lambda *a, **k: os._exit(9)
        elif kill_at == "fsync":
            os.fsync = lambda *a, **k: os._exit(9)
        else:
            real_fdopen = os.fdopen
            class Half(io.RawIOBase):
                def __init__(self, f): self.f = f
                def write(self, b):
                    self.f.write(bytes(b)[: len(b) // 2]); self.f.flush(); os._exit(9)
                def __enter__(self): return self
                def __exit__(self, *a): pass
            os.fdopen = lambda fd, mode: Half(real_fdopen(fd, mode))
        s.save({str(path)!r})
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()
    _same(original, MemoryStore.load(path))


def _append_worker(path: str, k: int) -> None:
    s = MemoryStore(HashingEmbedder(dim=64))
    for j in range(5):
        s.add([entry(f"w{k} tip {j}", key=f"w{k} state {j}", partition=f"s{j % 2}")])
        s.save(path, merge=True)


def test_concurrent_appends_lose_nothing(tmp_path):
    path = str(tmp_path / "shared.safetensors")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append_worker, args=(path, k)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    texts = {e.text for e in MemoryStore.load(path).entries()}
    assert texts == {f"w{k} tip {j}" for k in range(4) for j in range(5)}


def test_merge_save_adopts_other_entries(tmp_path):
    path = tmp_path / "m.safetensors"
    a = MemoryStore(HashingEmbedder(dim=64))
    b = MemoryStore(HashingEmbedder(dim=64))
    a.add([entry("from a", key="state a")])
    b.add([entry("from b", key="state b")])
    a.save(path, merge=True)
    b.save(path, merge=True)
    assert [e.text for e in b.entries()] == ["from a", "from b"]
    assert [e.text for e in MemoryStore.load(path).entries()] == ["from a", "from b"]


def _data_offset(path: Path) -> int:
    """Where a safetensors file's tensor bytes start (after its 8-byte length and header)."""
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def test_a_flipped_byte_in_the_stored_vectors_is_refused(tmp_path):
    """Without the checksum this loaded silently and retrieval then found nothing."""
    store = _filled()
    path = store.save(tmp_path / "m.memory.safetensors")
    data = bytearray(path.read_bytes())
    data[_data_offset(path) + 5] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(MemoryFileError, match="checksum") as err:
        MemoryStore.load(path)
    assert str(path) in str(err.value)


def test_non_finite_vectors_are_refused_on_add_and_on_load(tmp_path):
    from safetensors.numpy import save_file

    store = MemoryStore(FixedEmbedder())
    for bad in (np.nan, np.inf):
        vecs = np.array([[1, 0, 0, 0], [bad, 0, 0, 0]], np.float32)
        with pytest.raises(ValueError, match=r"non-finite .* row\(s\) \[1\]"):
            store.add([entry("a"), entry("b")], vecs)
        assert len(store) == 0

    class NaNEmbedder(FixedEmbedder):
        def __call__(self, texts):
            return np.full((len(texts), 4), np.nan, np.float32)

    with pytest.raises(ValueError, match="embedder 'fixed-4' has non-finite"):
        MemoryStore(NaNEmbedder()).add([entry("a")])
    # a file of an older empo_gym (no checksum) holding NaN vectors
    good = MemoryStore(FixedEmbedder())
    good.add([entry("a")])
    path = good.save(tmp_path / "m.memory.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        header = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    header.pop("checksum")
    tensors["partition0"][:] = np.nan
    save_file(tensors, str(path), metadata=header)
    with pytest.raises(MemoryFileError, match="non-finite"):
        MemoryStore.load(path, FixedEmbedder())


DATA = Path(__file__).parent / "data"


def test_a_version_1_file_with_slots_still_loads_and_is_rewritten_with_partitions(tmp_path):
    # written by empo_gym before memory partitions were renamed from "slots" (header key
    # "slots", entry key "slot", file version 1)
    store = MemoryStore.load(DATA / "v1.memory.safetensors")
    assert store.partitions() == ["toy-chest/0", "toy-chest/1"] and len(store) == 2
    (entry,) = store.entries("toy-chest/0")
    assert entry.partition == "toy-chest/0" and entry.action == "go north"
    assert store.query("toy-chest/0", "You are in a hall. Exits: north.")[0] == entry
    path = store.save(tmp_path / "v2.memory.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        header = f.metadata()
    assert header["version"] == "2" and "partitions" in header and "slots" not in header
    again = MemoryStore.load(path)
    assert again.entries() == store.entries()
    # merging into an old file reads it, then writes the new format
    old = tmp_path / "old.memory.safetensors"
    old.write_bytes((DATA / "v1.memory.safetensors").read_bytes())
    fresh = MemoryStore("hashing")
    fresh.add([entry_of("new", "toy-chest/0")])
    fresh.save(old, merge=True)
    assert len(MemoryStore.load(old)) == 3


def entry_of(text: str, partition: str) -> MemoryEntry:
    return MemoryEntry(text, key="a new state", score=1.0, partition=partition)
