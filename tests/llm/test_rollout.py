"""The rollout runner and the naive agent on a toy text env with the tiny model."""

from __future__ import annotations

import gymnasium as gym
import pytest

from empo_gym.agents.llm.naive import NaiveLLMAgent
from empo_gym.agents.llm.rollout import ResetSpec, RolloutRunner
from empo_gym.toy import ECHO_ACTIONS, ToyTextEnv


def test_groups_share_first_observation_and_finished_envs_leave(tiny_policy):
    envs = [ToyTextEnv("echo") for _ in range(6)]
    engine = RolloutRunner(tiny_policy, envs, "toy", max_turns=10)
    specs = [ResetSpec(seed=11, options={"length": 2}), ResetSpec(seed=22, options={"length": 4})]
    trajs = engine.run(specs, group_size=3)
    assert [(t.group_id, t.member) for t in trajs] == [
        ("g0", 0),
        ("g0", 1),
        ("g0", 2),
        ("g1", 0),
        ("g1", 1),
        ("g1", 2),
    ]
    for gid, length in (("g0", 2), ("g1", 4)):
        group = [t for t in trajs if t.group_id == gid]
        assert len({t.info["first_observation"] for t in group}) == 1
        assert len({tuple(t.turns[0].prompt_ids) for t in group}) == 1
        assert all(len(t.turns) == length and t.info["terminated"] for t in group)
    assert trajs[0].info["first_observation"] != trajs[3].info["first_observation"]
    # One batched generation per turn; the short group leaves after 2 turns.
    assert engine.stats.batch_sizes == [6, 6, 3, 3]
    for env in envs:
        assert len(env.resets) == 1
    for t in trajs:
        for turn in t.turns:
            assert len(turn.logprobs) == len(turn.response_ids) > 0
            assert turn.prompt_ids == turn.prompt_ids_no_tips and not turn.used_tips
            assert turn.action in ECHO_ACTIONS and turn.raw_output is not None
        assert t.score == t.episode_return


def test_more_rollouts_than_envs_refill_slots(tiny_policy):
    envs = [ToyTextEnv("echo") for _ in range(2)]
    engine = RolloutRunner(tiny_policy, envs, "toy")
    trajs = engine.run([ResetSpec(seed=1, options={"length": 1}), 5], group_size=2)
    assert len(trajs) == 4 and engine.stats.batch_sizes[:1] == [2]
    assert {t.info["seed"] for t in trajs} == {1, 5}
    assert sum(len(e.resets) for e in envs) == 4
    assert all(len(t.turns) == 3 for t in trajs if t.info["seed"] == 5)


def test_max_turns_truncates(tiny_policy):
    engine = RolloutRunner(tiny_policy, [ToyTextEnv("echo")], "toy", max_turns=2)
    (traj,) = engine.run([ResetSpec(seed=3, options={"length": 9})], group_size=1)
    assert len(traj.turns) == 2 and traj.info["truncated"] and not traj.info["terminated"]


def test_memory_mode_records_tips_and_their_span(tiny_policy):
    envs = [ToyTextEnv("echo", with_tips=True) for _ in range(2)]
    engine = RolloutRunner(tiny_policy, envs, "toy")
    trajs = engine.run([ResetSpec(seed=4, options={"length": 2})], group_size=2, memory_mode=True)
    for t in trajs:
        assert t.memory_mode
        for turn in t.turns:
            assert turn.used_tips and turn.tips == ["tip for 4", "look around first"]
            s, e = turn.tip_span
            assert turn.prompt_ids[:s] + turn.prompt_ids[e:] == turn.prompt_ids_no_tips
            assert "</tip>" in tiny_policy.tokenizer.decode(turn.prompt_ids[s:e])
    # Off-policy scoring without tips works on the recorded ids.
    turn = trajs[0].turns[0]
    lp = tiny_policy.logprobs([turn.prompt_ids_no_tips], [turn.response_ids])[0]
    assert len(lp) == len(turn.response_ids)
    # Without memory mode the same env's tips are ignored.
    plain = RolloutRunner(tiny_policy, envs, "toy").run([4], group_size=1)[0]
    assert not plain.turns[0].used_tips and not plain.memory_mode


def test_sync_vector_env_is_accepted(tiny_policy):
    venv = gym.vector.SyncVectorEnv([lambda: ToyTextEnv("echo") for _ in range(2)])
    trajs = RolloutRunner(tiny_policy, venv, "toy").run([ResetSpec(seed=2)], group_size=2)
    assert len(trajs) == 2 and all(len(t.turns) == 3 for t in trajs)


def test_bad_arguments():
    with pytest.raises(ValueError, match="no envs"):
        RolloutRunner(object(), [], "toy")  # type: ignore[arg-type]


def test_naive_agent_act_batch_drives_envs(tiny_policy):
    agent = NaiveLLMAgent(policy=tiny_policy, env="toy", max_new_tokens=6)
    assert agent.name == "naive" and agent.env_kwargs("toy") == {}
    envs = [ToyTextEnv("echo") for _ in range(3)]
    obs, infos = zip(*(e.reset(seed=i) for i, e in enumerate(envs)), strict=True)
    obs, infos = list(obs), list(infos)
    for slot in range(3):
        agent.reset(slot, obs[slot], infos[slot])
    for _ in range(3):
        actions = agent.act_batch([0, 1, 2], obs, infos)
        assert all(a in ECHO_ACTIONS for a in actions)
        for slot, (env, action) in enumerate(zip(envs, actions, strict=True)):
            o, r, term, trunc, info = env.step(action)
            agent.observe(slot, action, o, r, term, trunc, info)
            obs[slot], infos[slot] = o, info
    assert agent.states[0].step == 3 and agent.parse_stats.total == 9
    assert agent.config()["parse"]["total"] == 9
    assert agent.act(0, obs[0], infos[0]) in ECHO_ACTIONS


def test_memory_wrapper_dict_format_and_use_memory_option(tiny_policy):
    from gymnasium import spaces

    class WrappedToy(ToyTextEnv):
        """Mimics the memory wrapper: Dict observations and a ``use_memory`` reset option."""

        def __init__(self) -> None:
            super().__init__("echo")
            self.observation_space = spaces.Dict(
                {
                    "observation": spaces.Text(1000),
                    "tips": spaces.Text(1000),
                    "tip_block": spaces.Text(1000),
                }
            )

        def _obs(self, text):
            use = bool((self.resets[-1][1] or {}).get("use_memory")) if self.resets else False
            tips = "m1\nm2" if use else ""
            block = (
                (
                    "<tip> Here are some memories you collected in your previous exploration:\n"
                    "m1\nm2\n</tip>"
                )
                if use
                else ""
            )
            return {"observation": text, "tips": tips, "tip_block": block}

    env = WrappedToy()
    (traj,) = RolloutRunner(tiny_policy, [env], "toy").run([7], group_size=1, memory_mode=True)
    assert env.resets[-1][1] == {"use_memory": True}
    assert all(t.used_tips and t.tips == ["m1", "m2"] for t in traj.turns)
    (plain,) = RolloutRunner(tiny_policy, [env], "toy").run([7], group_size=1)
    assert env.resets[-1][1] == {"use_memory": False}
    assert not any(t.used_tips for t in plain.turns)


def test_engine_checks_the_policy_protocols(tiny_policy):
    from empo_gym.agents.llm.openai_policy import OpenAIPolicy

    assert RolloutRunner(tiny_policy, [ToyTextEnv("echo")], "toy").token_level
    remote = OpenAIPolicy("http://127.0.0.1:9/v1", model="m")  # text only: no token records
    assert not RolloutRunner(remote, [ToyTextEnv("echo")], "toy").token_level
    with pytest.raises(TypeError, match="RolloutRunner needs a Policy; got object, which lacks"):
        RolloutRunner(object(), [ToyTextEnv("echo")], "toy")  # type: ignore[arg-type]


def test_the_runner_is_the_trainers_rollout_function(tiny_policy):
    """``runner(policy, tasks, group_size, use_memory)``: one group per drawn task with a fresh
    id (a task drawn twice is two groups); the policy comes with the call."""
    runner = RolloutRunner(None, [ToyTextEnv("echo") for _ in range(4)], "toy", max_turns=2)
    with pytest.raises(RuntimeError, match="RolloutRunner has no policy yet"):
        runner.run([3], group_size=1)
    trajs = runner(tiny_policy, [ResetSpec(seed=3, group_id="mine"), 3], 2, False)
    assert runner.policy is tiny_policy
    assert [(t.group_id, t.member) for t in trajs] == [("g0", 0), ("g0", 1), ("g1", 0), ("g1", 1)]
    assert all(t.info["seed"] == 3 and not t.memory_mode for t in trajs)
    first = {t.group_id: t.info["first_observation"] for t in trajs}
    assert first["g0"] == first["g1"]  # the same task, drawn twice
