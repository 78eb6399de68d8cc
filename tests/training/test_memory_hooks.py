"""EMPO²'s training-side memory: novelty into turns, policy-written tips into the store."""

from __future__ import annotations

from empo_gym.agents.llm.policy import Generation, SamplingConfig
from empo_gym.agents.llm.trajectory import Trajectory, Turn
from empo_gym.agents.training.memory_hooks import STORE_FILE, EMPOMemory, to_tip_trajectory
from empo_gym.memory import MemoryStore, NoveltyReward


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
        info={"instruction": "boil water", "memory_slot": "boil/0"},
    )


def test_tips_are_written_in_one_batch_and_stored_per_step() -> None:
    store = MemoryStore("hashing")
    policy = EchoTipPolicy()
    hooks = EMPOMemory(store, novelty=None)
    trajs = [_traj("g0", ["hall", "kitchen"], 40.0, False), _traj("g1", ["hall"], 0.0, False)]
    hooks.after_rollouts(policy, trajs, memory_mode=False)
    assert policy.calls == [2]  # one batched generation for all trajectories
    assert hooks.size() == 3  # one entry per step of each trajectory
    assert trajs[0].tip == "Open the door first. Then look."
    texts = [e.text for e in store.entries("boil/0")]
    assert any("the specific action you took was act 1" in t and "40" in t for t in texts)


def test_novelty_only_in_memory_rollouts() -> None:
    store = MemoryStore("hashing")
    hooks = EMPOMemory(store, novelty=NoveltyReward(store.embedder))
    plain = [_traj("g0", ["a red room", "a blue room"], 0.0, False)]
    hooks.after_rollouts(EchoTipPolicy(), plain, memory_mode=False)
    assert all(t.intrinsic_reward == 0.0 for t in plain[0].turns)
    mem = [_traj("g1", ["a red room", "a red room"], 0.0, True)]
    hooks.after_rollouts(EchoTipPolicy(), mem, memory_mode=True)
    r = [t.intrinsic_reward for t in mem[0].turns]
    assert r[0] == 1.0 and r[1] == 0.5  # the repeated state has one similar entry: 1/(1+1)


def test_save_load_round_trip(tmp_path) -> None:
    store = MemoryStore("hashing")
    hooks = EMPOMemory(store)
    hooks.after_rollouts(EchoTipPolicy(), [_traj("g0", ["x", "y"], 10.0, False)], False)
    hooks.save(tmp_path)
    assert (tmp_path / STORE_FILE).exists()
    fresh = EMPOMemory(MemoryStore("hashing"))
    fresh.load(tmp_path)
    assert sorted(e.text for e in fresh.store.entries()) == sorted(e.text for e in store.entries())


def test_tip_view_of_a_rollout() -> None:
    view = to_tip_trajectory(_traj("g0", ["hall"], 5.0, True))
    assert (view.task, view.slot, view.final_score, view.used_memory) == (
        "boil water",
        "boil/0",
        5.0,
        True,
    )
    assert view.steps[0].state == "hall" and view.steps[0].action == "act 0"


def test_the_tip_writing_fake_is_a_text_policy() -> None:
    from empo_gym.agents.llm.policy import Policy, TokenPolicy

    assert isinstance(EchoTipPolicy(), Policy) and not isinstance(EchoTipPolicy(), TokenPolicy)
