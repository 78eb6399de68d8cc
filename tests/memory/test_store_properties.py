"""Property test: the store agrees with a brute-force reference of the EMPO² semantics."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from empo_gym.memory.embedders import cosine_matrix
from empo_gym.memory.store import MemoryEntry, MemoryStore

WORDS = ["door", "key", "stove", "pot", "water", "hall", "kitchen", "open", "look"]

texts = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join)
ops = st.lists(
    st.tuples(
        texts, st.sampled_from(["t1", "t2"]), st.sampled_from(["a", "b"]), st.integers(-3, 3)
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=ops, queries=st.lists(texts, min_size=1, max_size=5), cap=st.integers(1, 8))
def test_matches_reference(ops, queries, cap):
    store = MemoryStore("hashing", capacity=cap, top_k=3)
    ref: dict[str, list[tuple[str, str, float, int]]] = {}  # partition -> [(key, text, score, seq)]
    for seq, (key, text, partition, score) in enumerate(ops):
        store.add([MemoryEntry(text, key=key, score=score, partition=partition)])
        rows = ref.setdefault(partition, [])
        if not any(r[0] == key and r[1] == text for r in rows):
            rows.append((key, text, float(score), seq))
            if len(rows) > cap:
                rows.pop(0)
    for partition in ("a", "b"):
        rows = ref.get(partition, [])
        assert [(e.key, e.text) for e in store.entries(partition)] == [(r[0], r[1]) for r in rows]
        keys = store.embeddings(partition)
        if rows:  # stored key embeddings are the embedder's output, bit for bit
            np.testing.assert_array_equal(keys, store.embedder([r[0] for r in rows]))
        for q in queries:
            # same similarity routine as the store, so values at the threshold compare equal
            sims = cosine_matrix(keys, store.embedder([q]))[:, 0]
            cand = [r for r, s in zip(rows, sims, strict=True) if s > store.threshold]
            cand.sort(key=lambda r: (-r[2], -r[3]))
            distinct = [r for i, r in enumerate(cand) if r[1] not in {c[1] for c in cand[:i]}]
            got = store.query(partition, q)
            assert [(e.key, e.text) for e in got] == [(r[0], r[1]) for r in distinct[:3]]
    assert np.isfinite(store.embeddings("a")).all()
