"""The memory wrappers around a toy text env (fast)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from empo_gym.memory import MemoryStore, MemoryVectorWrapper, MemoryWrapper, compose_prompt
from empo_gym.memory.tips import TIP_BLOCK_OPEN, Episode, split_tips
from empo_gym.toy import ToyTextEnv

if "empo_gym/MemoryToy-test" not in gym.registry:
    gym.register("empo_gym/MemoryToy-test", entry_point=ToyTextEnv, kwargs={"unicode": True})

WIN = ["go north", "take key", "open chest"]
LOSE = ["go north", "go south", "go north", "go south"]


def play(env, actions, **options):
    obs, info = env.reset(seed=0, options=options or None)
    seen = [(obs, info)]
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        seen.append((obs, info))
        if term or trunc:
            break
    return seen


@pytest.mark.filterwarnings("ignore:.*is different from the unwrapped")
def test_check_env_passes():
    check_env(MemoryWrapper(ToyTextEnv(unicode=True)), skip_render_check=True)


def test_tips_separate_from_raw_observation_and_exactly_strippable():
    env = MemoryWrapper(ToyTextEnv(unicode=True))
    play(env, WIN)
    play(env, LOSE + ["go north"] * 4)
    seen = play(env, WIN, use_memory=True)
    obs, info = seen[0]
    raw = ToyTextEnv(unicode=True).reset(seed=0)[0]
    assert obs["observation"] == raw  # tips never inside the raw observation
    tips = split_tips(obs["tips"])
    assert tips == info["tips"] and len(tips) >= 2
    assert obs["tip_block"].startswith(TIP_BLOCK_OPEN) and obs["tip_block"].endswith("</tip>")
    assert "<tip>" not in obs["observation"]
    prompt = compose_prompt(obs)
    assert prompt.startswith(raw) and compose_prompt(obs, with_tips=False) == raw
    # the winning memory ranks first (stored score 100 beats 20)
    assert "score 100/100" in tips[0]
    assert env.observation_space.contains(obs)


def test_memory_on_off_per_episode_and_writes_after_every_episode():
    env = MemoryWrapper(ToyTextEnv())
    seen = play(env, WIN, use_memory=False)
    assert all(o["tips"] == "" for o, _ in seen)
    assert all(i["intrinsic_reward"] == 0.0 for _, i in seen)
    assert "memory_tip" in seen[-1][1] and len(env.store) == 3  # plain episodes write too
    seen = play(env, WIN, use_memory=True)
    assert seen[0][0]["tips"] != "" and seen[0][1]["use_memory"] is True
    seen = play(env, WIN)  # default use_memory=False again
    assert seen[0][0]["tips"] == ""


def test_one_entry_per_step_with_empo2_wording_and_partitions():
    env = MemoryWrapper(ToyTextEnv())
    play(env, WIN)
    entries = env.store.entries("toy-chest/0")
    assert [e.step for e in entries] == [0, 1, 2]
    assert [e.action for e in entries] == WIN
    assert entries[1].key == "You are in a vault. There is a key and a chest. Exits: south."
    assert entries[2].text.endswith(
        "; At that timestep, the specific action you took was open chest; "
        "Eventually you got the score 100/100."
    )
    assert {e.score for e in entries} == {100.0}
    env.reset(seed=0, options={"variation": 1, "use_memory": True})  # other partition: no tips
    assert env.unwrapped._variation == 1
    obs, info = env.reset(options={"memory_partition": "custom", "use_memory": True})
    assert info["memory_partition"] == "custom" and obs["tips"] == ""


def test_eval_mode_writes_nothing_and_reads_existing():
    env = MemoryWrapper(ToyTextEnv())
    play(env, WIN)
    n = len(env.store)
    seen = play(env, LOSE, use_memory=True, eval=True)
    assert len(env.store) == n and "memory_tip" not in seen[-1][1]
    assert seen[0][0]["tips"] != ""  # reading existing memory is allowed
    assert all(i["intrinsic_reward"] == 0.0 for _, i in seen)
    assert env.core.novelty.count("toy-chest/0") == 0
    ev = MemoryWrapper(ToyTextEnv(), env.store, training=False)
    play(ev, LOSE, use_memory=True)
    assert len(env.store) == n


def test_intrinsic_reward_reported_not_mixed_unless_asked():
    env = MemoryWrapper(ToyTextEnv())
    seen = play(env, ["go north", "go south", "go north"], use_memory=True)
    r_int = [i["intrinsic_reward"] for _, i in seen[1:]]
    assert r_int[0] > 0 and r_int[2] < r_int[0]  # revisiting the vault is less novel
    env.reset(seed=0, options={"use_memory": True})
    _, r, *_ = env.step("go north")
    assert r == pytest.approx(0.2)
    mixed = MemoryWrapper(ToyTextEnv(), add_intrinsic_to_reward=True)
    mixed.reset(seed=0, options={"use_memory": True})
    _, r, *_, info = mixed.step("go north")
    assert r == pytest.approx(0.2 + info["intrinsic_reward"]) and info["intrinsic_reward"] > 0
    off = MemoryWrapper(ToyTextEnv(), novelty=False)
    assert all(i["intrinsic_reward"] == 0.0 for _, i in play(off, WIN, use_memory=True))


def test_custom_tip_writer_gets_episodes():
    calls: list[list[Episode]] = []

    def writer(trajs: list[Episode]) -> list[str]:
        calls.append(trajs)
        return ["Take the key\nbefore the chest."] * len(trajs)

    env = MemoryWrapper(ToyTextEnv(), tip_writer=writer)
    seen = play(env, WIN)
    (traj,) = calls[0]
    assert traj.success and traj.final_score == 100 and traj.task == "Open the chest."
    assert [s.action for s in traj.steps] == WIN and traj.partition == "toy-chest/0"
    assert seen[-1][1]["memory_tip"] == "Take the key before the chest."
    assert env.store.entries()[0].text.startswith("Take the key before the chest.;")


def test_unfinished_episode_writes_nothing_and_errors():
    env = MemoryWrapper(ToyTextEnv())
    env.reset(seed=0)
    env.step("go north")
    env.reset(seed=0)
    assert len(env.store) == 0
    with pytest.raises(TypeError, match="use_memory"):
        env.reset(options={"use_memory": "yes"})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"bogus": 1})  # non-memory options reach the env
    fresh = MemoryWrapper(ToyTextEnv())
    with pytest.raises(RuntimeError, match="reset"):
        fresh.step("go north")
    with pytest.raises(TypeError, match="text observation"):
        MemoryWrapper(gym.make("CartPole-v1"))


def test_store_path_is_loaded(tmp_path):
    env = MemoryWrapper(ToyTextEnv())
    play(env, WIN)
    path = env.store.save(tmp_path / "m.safetensors")
    again = MemoryWrapper(ToyTextEnv(), path)
    assert again.store.entries() == env.store.entries()
    assert isinstance(again.store, MemoryStore)
    play(again, LOSE + ["go north"] * 4)  # a path store merges every finished episode into it
    on_disk = MemoryStore.load(path)
    assert len(on_disk) == len(again.store) > len(env.store)
    other = MemoryWrapper(ToyTextEnv(), path)
    play(other, ["go north", "take key", "go south", "go north", "open chest"])
    assert len(MemoryStore.load(path)) == len(on_disk) + 5


def _vector_episode(envs, use_memory):
    obs, info = envs.reset(seed=[0, 1], options={"use_memory": use_memory})
    out = [obs]
    for a in WIN:
        obs, r, term, trunc, info = envs.step([a, a])
        out.append(obs)
    assert term.all()
    return out, info


@pytest.mark.parametrize("use_memory", [[True, False], [False, True]])
def test_vector_wrapper_shared_store_on_off_per_env(use_memory):
    envs = MemoryVectorWrapper(gym.vector.SyncVectorEnv([lambda: ToyTextEnv(unicode=True)] * 2))
    _, info = _vector_episode(envs, False)
    assert list(info["_memory_tip"]) == [True, True]
    assert (
        len(envs.store) == 3
    )  # both sub-envs share partition toy-chest/0: identical entries dedup
    obs, info = envs.reset(seed=[0, 1], options={"use_memory": use_memory})
    assert [bool(t) for t in obs["tips"]] == use_memory
    assert all("<tip>" not in o for o in obs["observation"])
    assert envs.observation_space.contains(obs)
    # NEXT_STEP autoreset starts new episodes with next_use_memory
    for a in WIN:
        obs, *_ = envs.step([a, a])
    envs.next_use_memory[:] = [True, True]
    obs, r, term, trunc, info = envs.step(["x", "x"])  # the autoreset step
    assert all(o.startswith("You are in a hall.") for o in obs["observation"])
    assert all(obs["tips"]) and not term.any()


def test_vector_wrapper_batches_tip_writing():
    sizes = []

    def writer(trajs):
        sizes.append(len(trajs))
        return ["tip"] * len(trajs)

    envs = MemoryVectorWrapper(
        gym.vector.SyncVectorEnv([ToyTextEnv] * 3), tip_writer=writer, use_memory=True
    )
    envs.reset(seed=0)
    for a in WIN:
        envs.step([a] * 3)
    assert sizes == [3]


def test_async_make_vec_with_wrapper_non_ascii():
    # default shared_memory=True (UnicodeText codec). NB: gymnasium 1.4 with shared_memory=False
    # does not clear a worker's autoreset flag on an explicit reset (its step after a finished
    # episode is swallowed), a gymnasium bug unrelated to memory.
    envs = gym.make_vec(
        "empo_gym/MemoryToy-test",
        num_envs=2,
        vectorization_mode="async",
        wrappers=[
            lambda env: MemoryWrapper(
                env, tip_writer=lambda trajs: ["Ça brûle ✓ 你好"] * len(trajs)
            )
        ],
    )
    try:
        for use in (False, True):
            out, info = _vector_episode(envs, use)
            assert out[0]["observation"][0].endswith("你好 ✓")
            assert [bool(t) for t in out[0]["tips"]] == [use, use]
            assert np.all(info["intrinsic_reward"] >= 0)
        assert out[0]["tips"][0].startswith("Ça brûle ✓ 你好;")  # tips keep non-ASCII text
    finally:
        envs.close()


def test_async_shared_memory_codec_round_trips_dict_of_text():
    from gymnasium.vector.utils import shared_memory as shm

    import empo_gym.spaces  # noqa: F401  (registers the codec)

    env = MemoryWrapper(ToyTextEnv(unicode=True))
    space = env.observation_space
    buf = shm.create_shared_memory(space, n=2)
    env.reset(seed=0)
    play(env, WIN)
    obs, _ = env.reset(seed=0, options={"use_memory": True})
    shm.write_to_shared_memory(space, 1, obs, buf)
    got = shm.read_from_shared_memory(space, buf, n=2)
    assert {k: v[1] for k, v in got.items()} == obs


def test_async_default_shared_memory_raw_observation():
    envs = gym.vector.AsyncVectorEnv([lambda: MemoryWrapper(ToyTextEnv())] * 2)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs["observation"][0].startswith("You are in a hall.")
        obs, *_ = envs.step(["go north", "go north"])
        assert obs["observation"][1].startswith("You are in a vault.")
    finally:
        envs.close()


def test_write_tips_false_lets_a_trainer_write_into_the_shared_store():
    from empo_gym.memory import episode_entries
    from empo_gym.memory.tips import Step

    store = MemoryStore("hashing")
    envs = [MemoryWrapper(ToyTextEnv(), store, write_tips=False) for _ in range(2)]
    seen = play(envs[0], WIN, use_memory=True)
    assert len(store) == 0 and "memory_tip" not in seen[-1][1]
    assert seen[-1][1]["intrinsic_reward"] > 0  # novelty still reported
    states = [o["observation"] for o, _ in seen[:-1]]
    traj = Episode(
        "Open the chest.",
        seen[0][1]["memory_partition"],
        [Step(s, a) for s, a in zip(states, WIN, strict=True)],
        final_score=100,
        success=True,
    )
    assert store.add(episode_entries(traj, "LLM tip.")) == 3
    obs, info = envs[1].reset(seed=0, options={"use_memory": True})  # the other env reads it
    assert split_tips(obs["tips"])[0].startswith("LLM tip.;")


def test_vector_wrapper_disabled_autoreset_with_reset_mask():
    from gymnasium.vector import AutoresetMode

    base = gym.vector.SyncVectorEnv([ToyTextEnv] * 2, autoreset_mode=AutoresetMode.DISABLED)
    envs = MemoryVectorWrapper(base)
    envs.reset(seed=0)
    for a in WIN:
        obs, r, term, trunc, info = envs.step([a, "go north"])
    assert list(term) == [True, False] and len(envs.store) == 3
    obs, info = envs.reset(options={"reset_mask": np.array([True, False]), "use_memory": True})
    assert obs["tips"][0] and obs["observation"][0].startswith("You are in a hall.")
    obs, r, term, trunc, info = envs.step(["go north", "take key"])
    assert obs["tips"][0] and not obs["tips"][1]  # env 1 still in its memory-free episode


def test_vector_wrapper_rejects_same_step_autoreset():
    from gymnasium.vector import AutoresetMode

    base = gym.vector.SyncVectorEnv([ToyTextEnv], autoreset_mode=AutoresetMode.SAME_STEP)
    with pytest.raises(ValueError, match="NEXT_STEP or DISABLED"):
        MemoryVectorWrapper(base)
