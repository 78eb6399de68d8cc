"""EMPO² as the loop calls it: mode draws with p and q, memory-wrapped envs, novelty into
turns, policy-written tips into the store, its state in checkpoints."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from empo_gym.agents.llm.policy import Generation, SamplingConfig
from empo_gym.agents.llm.rollout import ResetSpec, RolloutRunner
from empo_gym.agents.llm.trajectory import Trajectory, Turn
from empo_gym.agents.training.algorithm import RolloutMode, UpdateMode
from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.empo import (
    EMPO,
    STORE_FILE,
    EMPOConfig,
    rollout_episode,
    sample_modes,
    sample_rollout_mode,
    sample_update_mode,
)
from empo_gym.memory import MemoryStore, MemoryWrapper, NoveltyReward
from empo_gym.toy import ToyTextEnv
from tests.counting import CountingEmbedder

NO_NOVELTY = EMPOConfig(intrinsic_reward=False)
"""EMPO² without the novelty bonus (the memory side alone)."""


class EchoTipPolicy:
    """Test double (a text-only ``Policy``): answers every tip prompt with a fixed sentence,
    counting calls."""

    name = "echo-tips"

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.sampling = SamplingConfig()

    def close(self) -> None:
        """Nothing to release."""

    def generate(self, conversations, sampling=None):
        self.calls.append(len(conversations))
        return [
            Generation([], [], [], "Open the door first. Then look.", "stop") for _ in conversations
        ]


def _traj(gid: str, states: list[str], score: float, memory: bool) -> Trajectory:
    turns = [
        Turn([1], [1], [2], [-0.1], observation=s, action=f"act {i}") for i, s in enumerate(states)
    ]
    return Trajectory(
        gid,
        0,
        turns,
        score=score,
        memory_mode=memory,
        info={"instruction": "boil water", "memory_partition": "boil/0"},
    )


def test_tips_are_written_in_one_batch_and_stored_per_step() -> None:
    store = MemoryStore("hashing")
    policy = EchoTipPolicy()
    hooks = EMPO(NO_NOVELTY, store=store)
    trajs = [_traj("g0", ["hall", "kitchen"], 40.0, False), _traj("g1", ["hall"], 0.0, False)]
    hooks.after_rollouts(policy, trajs, RolloutMode.PLAIN)
    assert policy.calls == [2]  # one batched generation for all trajectories
    assert hooks.size() == 3  # one entry per step of each trajectory
    assert trajs[0].tip == "Open the door first. Then look."
    texts = [e.text for e in store.entries("boil/0")]
    assert any("the specific action you took was act 1" in t and "40" in t for t in texts)


def test_novelty_only_in_memory_rollouts() -> None:
    store = MemoryStore("hashing")
    hooks = EMPO(EMPOConfig(), store=store, novelty=NoveltyReward(store.embedder))
    plain = [_traj("g0", ["a red room", "a blue room"], 0.0, False)]
    hooks.after_rollouts(EchoTipPolicy(), plain, RolloutMode.PLAIN)
    assert all(t.intrinsic_reward == 0.0 for t in plain[0].turns)
    mem = [_traj("g1", ["a red room", "a red room"], 0.0, True)]
    hooks.after_rollouts(EchoTipPolicy(), mem, RolloutMode.MEMORY)
    r = [t.intrinsic_reward for t in mem[0].turns]
    assert r[0] == 1.0 and r[1] == 0.5  # the repeated state has one similar entry: 1/(1+1)


def test_group_members_are_scored_against_the_same_counts() -> None:
    """Every member of a group sees the counts from before the group, not its siblings'
    states: identical members get identical bonuses (no ranking by member index)."""
    store = MemoryStore("hashing")
    hooks = EMPO(EMPOConfig(), store=store, novelty=NoveltyReward(store.embedder))
    states = ["You are in the armory.", "You are in the cellar.", "You are in the armory."]
    group = [_traj("g0", states, 0.0, True) for _ in range(4)]
    for member, traj in enumerate(group):
        traj.member = member
    hooks.after_rollouts(EchoTipPolicy(), group, RolloutMode.MEMORY)
    rewards = [[t.intrinsic_reward for t in traj.turns] for traj in group]
    assert rewards == [[1.0, 1.0, 0.5]] * 4  # the revisit within a trajectory still counts
    # the next group sees all four members' states: armory seen 8 times, cellar 4 times
    later = [_traj("g1", states[:2], 0.0, True)]
    hooks.after_rollouts(EchoTipPolicy(), later, RolloutMode.MEMORY)
    assert [t.intrinsic_reward for t in later[0].turns] == pytest.approx([1 / 9, 1 / 5])


def test_save_load_round_trip(tmp_path) -> None:
    store = MemoryStore("hashing")
    hooks = EMPO(NO_NOVELTY, store=store)
    hooks.after_rollouts(EchoTipPolicy(), [_traj("g0", ["x", "y"], 10.0, False)], RolloutMode.PLAIN)
    hooks.save(tmp_path)
    assert (tmp_path / STORE_FILE).exists()
    fresh = EMPO(NO_NOVELTY, store=MemoryStore("hashing"))
    fresh.load(tmp_path)
    assert sorted(e.text for e in fresh.store.entries()) == sorted(e.text for e in store.entries())


def test_tip_view_of_a_rollout() -> None:
    view = rollout_episode(_traj("g0", ["hall"], 5.0, True))
    assert (view.task, view.partition, view.final_score, view.used_memory) == (
        "boil water",
        "boil/0",
        5.0,
        True,
    )
    assert view.steps[0].state == "hall" and view.steps[0].action == "act 0"


def test_the_tip_writing_fake_is_a_text_policy() -> None:
    from empo_gym.agents.llm.policy import Policy, TokenPolicy

    assert isinstance(EchoTipPolicy(), Policy) and not isinstance(EchoTipPolicy(), TokenPolicy)


class ScriptedPolicy:
    """Test double for the rollout engine: a fixed cycle of actions, numbered tips."""

    WORDS = ["go north", "take key", "open chest", "go south", "look"]
    name = "scripted"

    def __init__(self) -> None:
        self.n = 0
        self.tip_calls: list[int] = []
        self.sampling = SamplingConfig()

    def close(self) -> None:
        """Nothing to release."""

    def generate(self, conversations, sampling=None):
        out, tips = [], 0
        for conv in conversations:
            self.n += 1
            if "Write ONE sentence" in conv[-1]["content"]:
                tips += 1
                out.append(Generation([], [], [], f" Tip {self.n}: try\n harder. ", "stop"))
            else:
                out.append(Generation([], [], [], self.WORDS[(self.n * 7) % 5], "stop"))
        if tips:
            self.tip_calls.append(tips)
        return out


def _train_memory(recorded: bool, env_steps: list[int], max_turns: int):
    """Three iterations (plain, memory, memory) of rollouts + hooks on memory-wrapped toy envs.

    ``recorded``: the hooks take the wrappers' recorded episodes (the training wiring);
    otherwise they rebuild every rollout from its turns (write_tips=False wrappers).
    """
    store = MemoryStore(CountingEmbedder())
    novelty = NoveltyReward(store.embedder)
    envs = [ToyTextEnv(max_steps=n) for n in env_steps]
    hooks = EMPO(EMPOConfig(), store=store, novelty=novelty)
    if recorded:  # the training wiring: the wrappers record into the algorithm's recorder
        wrapped = hooks.wrap_envs(envs)
    else:
        wrapped = [MemoryWrapper(e, store, write_tips=False, novelty=False) for e in envs]
    policy = ScriptedPolicy()
    engine = RolloutRunner(policy, wrapped, "toy", max_turns=max_turns)
    seen, states = [], []
    for it, mode in enumerate([RolloutMode.PLAIN, RolloutMode.MEMORY, RolloutMode.MEMORY]):
        specs = [ResetSpec(seed=0, options={"variation": it % 2}), ResetSpec(seed=1)]
        trajs = engine.run(specs, 3, memory_mode=mode.use_memory)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # every rollout matches its record
            hooks.after_rollouts(policy, trajs, mode)
        seen.append([(t.tip, [u.intrinsic_reward for u in t.turns]) for t in trajs])
        states += [u.observation for t in trajs for u in t.turns]
    entries = [(e.text, e.key, e.partition, e.step, e.score) for e in store.entries()]
    keys = {s: store.embeddings(s) for s in store.partitions()}
    return seen, entries, keys, store.embedder.texts, states, policy.tip_calls


@pytest.mark.parametrize(
    ("env_steps", "max_turns"),
    [([4, 4, 4], 4), ([3, 8, 8], 4)],  # the env ends every episode / the engine cuts some
)
def test_recorded_episodes_write_what_rebuilt_ones_write(env_steps, max_turns) -> None:
    got, entries, keys, _, _, tip_calls = _train_memory(True, env_steps, max_turns)
    want, want_entries, want_keys, _, _, want_calls = _train_memory(False, env_steps, max_turns)
    assert got == want  # tips and novelty, trajectory by trajectory, turn by turn
    assert entries == want_entries and len(entries) > 0
    assert keys.keys() == want_keys.keys()
    assert all(np.array_equal(keys[s], want_keys[s]) for s in keys)
    assert tip_calls == want_calls == [6, 6, 6]  # one batched tip generation per iteration
    assert any(r != 1.0 for _, rewards in got[2] for r in rewards)  # novelty did count


def test_a_training_iteration_embeds_each_state_once() -> None:
    _, _, _, embedded, states, _ = _train_memory(True, [4, 4, 4], 4)
    # wrappers embed each turn's state once (retrieval key, novelty and stored key alike);
    # the hooks embed nothing
    assert sorted(embedded) == sorted(states)
    _, _, _, rebuilt, _, _ = _train_memory(False, [4, 4, 4], 4)
    assert len(rebuilt) > len(states)  # rebuilding embeds states again


def test_hooks_write_where_the_wrappers_read() -> None:
    """The wrappers record into the algorithm's recorder over the store it writes (a recorder
    of another store cannot be handed in: EMPO builds both)."""
    store = MemoryStore("hashing")
    empo = EMPO(EMPOConfig(), store=store)
    assert empo.recorder.store is store
    wrapped = empo.wrap_envs([ToyTextEnv(), ToyTextEnv()])
    assert all(w.recorder is empo.recorder and w.store is store for w in wrapped)
    assert empo.wrappers == wrapped  # their retrieval seconds join the timings


def test_settings_reach_the_memory_the_novelty_and_the_tips() -> None:
    cfg = EMPOConfig(
        memory_top_k=3, memory_capacity=7, novelty_threshold=0.8, tip_max_tokens=9, seed=4
    )
    empo = EMPO(cfg)
    assert (empo.store.top_k, empo.store.capacity) == (3, 7)
    assert empo.novelty is not None and empo.novelty.threshold == 0.8
    assert (empo.tip_sampling.max_new_tokens, empo.tip_sampling.seed) == (9, 4)
    assert EMPO(NO_NOVELTY).novelty is None
    with pytest.raises(TypeError, match="EMPO needs an EMPOConfig"):
        EMPO(GRPOConfig())  # type: ignore[arg-type]


def test_modes_are_drawn_with_p_and_q() -> None:
    empo = EMPO(EMPOConfig(memory_prob=0.25, off_policy_prob=2 / 3))
    a, b = random.Random(5), random.Random(5)
    assert [empo.modes(a) for _ in range(50)] == [sample_modes(b, 0.25, 2 / 3) for _ in range(50)]
    assert EMPO(EMPOConfig(memory_prob=0.0)).modes(a) == (RolloutMode.PLAIN, UpdateMode.ON_POLICY)


def test_mode_draw_frequencies_match_p_and_q():
    rng = random.Random(0)
    n = 30000
    draws = [sample_modes(rng, 0.25, 2 / 3) for _ in range(n)]
    memory = sum(r is RolloutMode.MEMORY for r, _ in draws) / n
    off = sum(u is UpdateMode.OFF_POLICY for _, u in draws) / n
    tips = sum(u is UpdateMode.ON_POLICY_TIPS for _, u in draws) / n
    assert memory == pytest.approx(0.25, abs=0.01)
    assert off == pytest.approx(0.25 * 2 / 3, abs=0.01)  # reference code: r < 0.17
    assert tips == pytest.approx(0.25 / 3, abs=0.01)
    assert all(u is UpdateMode.ON_POLICY for r, u in draws if r is RolloutMode.PLAIN)


def test_probabilities_outside_unit_interval_rejected():
    with pytest.raises(ValueError, match="p=1.5"):
        sample_rollout_mode(random.Random(0), 1.5)
    with pytest.raises(ValueError, match="q=-0.1"):
        sample_update_mode(random.Random(0), -0.1)
