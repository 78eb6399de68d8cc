"""The shared prompt -> generate -> parse path: context bound, and the agent using it."""

from __future__ import annotations

import pytest

from empo_gym.agents.llm.acting import Actor, ActStats, ContextLimitError
from empo_gym.agents.llm.naive import NaiveLLMAgent
from empo_gym.agents.llm.policy import SamplingConfig
from empo_gym.agents.llm.prompts import EpisodeState
from empo_gym.agents.llm.rollout import ResetSpec, RolloutRunner
from empo_gym.toy import ToyTextEnv

LIMIT = 900
LONG = 120  # ScienceWorld's longest episodes (measure-melting-point) run to 120 steps


class VerboseToyEnv(ToyTextEnv):
    """ToyTextEnv with long observations, so that history soon outgrows the context."""

    def step(self, action: str):
        obs, reward, term, trunc, info = super().step(action)
        pad = " The room is full of glassware, thermometers and labelled jars." * 2
        if isinstance(obs, dict):
            return {**obs, "observation": obs["observation"] + pad}, reward, term, trunc, info
        return obs + pad, reward, term, trunc, info


@pytest.mark.slow  # ~20 s: 120 generations over ~900-token prompts
def test_a_120_step_episode_never_exceeds_max_context_tokens(tiny_policy, smol_tokenizer):
    engine = RolloutRunner(
        tiny_policy,
        [VerboseToyEnv("echo", with_tips=True)],
        "scienceworld",
        max_turns=LONG,
        sampling=SamplingConfig(temperature=1.0, max_new_tokens=3, seed=0),
        prompt_kwargs={"max_history": LONG},  # only the token bound limits the history
        max_context_tokens=LIMIT,
    )
    (traj,) = engine.run([ResetSpec(seed=5, options={"length": LONG})], 1, memory_mode=True)
    assert len(traj.turns) == LONG
    lengths = [len(t.prompt_ids) for t in traj.turns]
    assert max(lengths) <= LIMIT
    assert engine.stats.history_dropped > 0  # the bound was what kept them short
    last = smol_tokenizer.decode(traj.turns[-1].prompt_ids)
    assert "Find the key (room 5)." in last  # the task text is kept
    assert "<tip>" in last and "look around first" in last  # so is the tip block
    assert f"Step {LONG - 1}: you did" in last  # and the most recent history
    assert "Step 1: you did" not in last  # the oldest went first
    # the same final state unbounded would not have fitted: the test can fail
    state = EpisodeState(
        instruction="Find the key (room 5).",
        observation=traj.info["final_observation"],
        history=traj.info["history"],
        step=LONG,
    )
    unbounded = Actor(tiny_policy, "scienceworld", prompt_kwargs={"max_history": LONG})
    prompt, encoded = unbounded.prompt(state, ["look around first"])
    assert encoded is not None and len(encoded.ids) > LIMIT


def test_a_prompt_that_cannot_fit_raises_a_clear_error(tiny_policy):
    actor = Actor(tiny_policy, "scienceworld", max_context_tokens=50)
    state = EpisodeState.start("A hall.", {"task": "boil water", "admissible_actions": ["wait"]})
    needed = len(Actor(tiny_policy, "scienceworld").prompt(state, None)[1].ids)
    with pytest.raises(ContextLimitError, match=f"needs {needed} tokens without any history.*=50"):
        actor.decide([state], [None])
    with pytest.raises(ValueError, match="max_context_tokens=0"):
        Actor(tiny_policy, "scienceworld", max_context_tokens=0)


def test_the_bound_keeps_the_most_history_that_fits(tiny_policy):
    history = [(f"action {i}", f"Step {i}: the room is quiet and dusty. " * 3) for i in range(30)]
    state = EpisodeState(
        instruction="Find the key.", observation="A hall.", info={}, history=history, step=30
    )
    free = Actor(tiny_policy, "scienceworld", prompt_kwargs={"max_history": 30})
    bounded = Actor(
        tiny_policy, "scienceworld", prompt_kwargs={"max_history": 30}, max_context_tokens=500
    )
    stats = ActStats()
    _, encoded = bounded.prompt(state, None, stats)
    kept = len(history) - stats.history_dropped
    assert encoded is not None and len(encoded.ids) <= 500 and 0 < kept < len(history)

    def tokens(keep: int) -> list[int]:
        shorter = EpisodeState(state.instruction, state.observation, {}, history[-keep:], 30)
        enc = free.prompt(shorter, None)[1]
        assert enc is not None
        return enc.ids

    assert tokens(kept) == encoded.ids  # exactly the `kept` most recent steps
    assert len(tokens(kept + 1)) > 500  # one more would not fit


def test_the_naive_agent_acts_through_the_bounded_path(tiny_policy):
    agent = NaiveLLMAgent(
        policy=tiny_policy, env="scienceworld", max_history=LONG, max_context_tokens=600
    )
    env = VerboseToyEnv("echo")
    obs, info = env.reset(seed=1, options={"length": 20})
    agent.reset(0, obs, info)
    for _ in range(20):
        action = agent.act(0, obs, info)
        obs, reward, term, trunc, info = env.step(action)
        agent.observe(0, action, obs, reward, term, trunc, info)
    stats: ActStats = agent.act_stats
    assert len(stats.batch_sizes) == 20 and stats.parse.total == 20
    assert stats.history_dropped > 0
    assert agent.config()["history_dropped"] == stats.history_dropped
