"""``empo-gym bench rollout``: batched vs sequential multi-turn rollouts, and the generate ceiling.

The same episodes (one group of ``G`` rollouts from the identical initial state, fixed length)
are rolled out twice in one run with the same policy:

* **batched**: ``G`` envs in lockstep, one batched generation per turn
  (:class:`empo_gym.agents.llm.rollout.RolloutRunner`);
* **sequential**: one env, the ``G`` episodes one after the other (batch size 1).

Then the exact prompt batches of the batched run are replayed through the policy's bare
``generate_ids`` (no envs, prompts or parsing): the **generate ceiling**. Reported throughputs
are generated tokens per wall-clock second. The default env is a synthetic ScienceWorld-like
text env (deterministic, no JVM), so the figures measure the LLM side; ``env="scienceworld"``
uses the real simulator.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from empo_gym.spaces import UnicodeText

if TYPE_CHECKING:  # agent code loads only when the bench runs
    from empo_gym.agents.llm.policy import TokenPolicy

_ROOMS = ["kitchen", "hallway", "greenhouse", "workshop", "bathroom", "art studio", "outside"]
_OBJECTS = [
    "thermometer",
    "metal pot",
    "sink",
    "stove",
    "red apple",
    "flower pot",
    "seed jar",
    "lighter",
    "wood block",
    "cup",
    "battery",
    "wire",
    "light bulb",
    "orange",
    "bee",
]
_TASKS = [
    "Your task is to find a(n) living thing. First, focus on the thing. Then, move it to the "
    "purple box in the workshop.",
    "Your task is to boil water. For compounds without a boiling point, combusting the "
    "substance is also acceptable. First, focus on the substance. Then, take actions that will "
    "cause it to change its state of matter.",
    "Your task is to measure the melting point of chocolate, which is located around the "
    "kitchen. First, focus on the thermometer. Next, focus on the chocolate.",
]


class SyntheticTextEnv(gym.Env):
    """A deterministic ScienceWorld-like text env for benchmarks (no simulator).

    Observations read like ScienceWorld's (a room with objects and doors), the info carries
    ``admissible_actions`` / ``task`` / ``instruction`` / ``inventory`` / ``score``, and every
    episode lasts exactly ``length`` steps whatever the actions.

    Args:
        length: Steps per episode.

    Example:
        >>> env = SyntheticTextEnv(length=2)
        >>> obs, info = env.reset(seed=3)
        >>> obs == env.reset(seed=3)[0] and "look around" in info["admissible_actions"]
        True
        >>> env.step("look around")[2], env.step("open door to kitchen")[2]
        (False, True)
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, length: int = 4) -> None:
        self.length = int(length)
        self.observation_space = UnicodeText(4096)
        self.action_space = UnicodeText(256)
        self._rng = np.random.default_rng(0)
        self._t = 0
        self._task = _TASKS[0]
        self._room = _ROOMS[0]

    def _observation(self) -> str:
        objs = self._rng.choice(_OBJECTS, size=5, replace=False)
        doors = [r for r in _ROOMS if r != self._room][:3]
        return (
            f"This room is called the {self._room}. In it, you see: \n\tthe agent\n\t"
            + "\n\t".join(f"a {o}" for o in objs)
            + "\nYou also see:\n\t"
            + "\n\t".join(f"A door to the {d} (that is open)" for d in doors)
        )

    def _info(self) -> dict[str, Any]:
        actions = ["look around", "inventory", "wait"]
        actions += [f"go to {r}" for r in _ROOMS if r != self._room]
        actions += [f"open door to {r}" for r in _ROOMS if r != self._room]
        actions += [f"{v} {o}" for o in _OBJECTS for v in ("pick up", "look at", "focus on")]
        return {
            "admissible_actions": actions,
            "task": "synthetic",
            "instruction": self._task,
            "inventory": "In your inventory, you see:\n\tan orange",
            "score": float(self._t),
            "success": False,
            "success_rule": "none (benchmark env)",
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Start an episode; ``seed`` fixes the task, room and observations."""
        super().reset(seed=seed)
        self._rng = np.random.default_rng(seed)
        self._task = _TASKS[int(self._rng.integers(len(_TASKS)))]
        self._room = _ROOMS[int(self._rng.integers(len(_ROOMS)))]
        self._t = 0
        return self._observation(), self._info()

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Any action moves the episode one step on; it ends after ``length`` steps."""
        self._t += 1
        if action.startswith("go to "):
            self._room = action[len("go to ") :]
        obs = f"You did: {action[:80]}.\n" + self._observation()
        return obs, 0.0, self._t >= self.length, False, self._info()


class _RecordingPolicy:
    """Delegates to a token-level policy and records every prompt batch it generates for.

    It is a ``TokenPolicy`` itself, so the rollout runner drives it exactly like the inner one.
    """

    def __init__(self, policy: Any) -> None:
        self.inner = policy
        self.name = policy.name
        self.sampling = policy.sampling
        self.batches: list[list[list[int]]] = []

    @property
    def model(self) -> Any:
        return self.inner.model

    @property
    def tokenizer(self) -> Any:
        return self.inner.tokenizer

    @property
    def pad_id(self) -> int:
        return self.inner.pad_id

    def encode_prompt(self, messages: Any, tip_block: str | None = None) -> Any:
        return self.inner.encode_prompt(messages, tip_block)

    def generate_ids(
        self, prompt_ids: Sequence[Sequence[int]], sampling: Any = None, *, route_keys: Any = None
    ) -> Any:
        self.batches.append([list(p) for p in prompt_ids])
        return self.inner.generate_ids(prompt_ids, sampling, route_keys=route_keys)

    def generate(self, conversations: Any, sampling: Any = None) -> Any:
        return self.inner.generate(conversations, sampling)

    def logprobs(self, prompt_ids: Any, response_ids: Any, *, temperature: Any = None) -> Any:
        return self.inner.logprobs(prompt_ids, response_ids, temperature=temperature)

    def sentence_end_ids(self) -> frozenset[int]:
        return self.inner.sentence_end_ids()

    def close(self) -> None:
        """The inner policy belongs to the caller: nothing to release here."""


def _make_env_factory(env: str, task: str | None, turns: int) -> tuple[Callable[[], gym.Env], str]:
    if env == "synthetic":
        return (lambda: SyntheticTextEnv(length=turns)), "scienceworld"
    if env == "scienceworld":
        import empo_gym  # noqa: F401  (registers the ids)

        return (
            lambda: gym.make("empo_gym/ScienceWorld-v0", task=task or "find-plant", max_steps=turns)
        ), "scienceworld"
    raise ValueError(f"env={env!r}; expected 'synthetic' or 'scienceworld'")


def run_rollout_bench(
    model: str | None = None,
    *,
    env: str = "synthetic",
    task: str | None = None,
    group_size: int = 8,
    turns: int = 4,
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    seed: int = 0,
    threads: int | None = None,
    policy: TokenPolicy | None = None,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Measure batched vs sequential rollouts and the bare-generate ceiling (one run).

    Args:
        model: Model name / path (default ``smollm2-135m-instruct``); ignored with ``policy``.
        env: ``"synthetic"`` (no simulator) or ``"scienceworld"``.
        task: ScienceWorld task (``env="scienceworld"``; default ``find-plant``).
        group_size: G, rollouts of the group (and envs of the batched run).
        turns: Steps per episode.
        max_new_tokens: Response budget per turn (32 = the paper's ScienceWorld setting).
        temperature: Sampling temperature (1.0 = training rollouts).
        seed: Reset seed of the group and sampling seed.
        threads: torch intra-op threads (None = torch's default).
        policy: A ready token-level policy (tests); else a ``TransformersPolicy`` is loaded.
        log: Progress printer.

    Returns:
        ``batched_tok_s``, ``sequential_tok_s``, ``batched_vs_sequential_ratio``,
        ``generate_ceiling_tok_s``, ``generate_ceiling_ratio`` and the run's settings.
    """
    from empo_gym.agents.llm.policy import (
        SamplingConfig,
        TokenPolicy,
        TrainablePolicy,
        check_policy,
    )
    from empo_gym.agents.llm.rollout import ResetSpec, RolloutRunner
    from empo_gym.agents.llm.transformers_policy import TransformersPolicy

    if group_size < 1 or turns < 1:
        raise ValueError(f"group_size={group_size}, turns={turns}; expected both >= 1")
    sampling = SamplingConfig(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    t0 = time.perf_counter()
    if policy is None:
        policy = TransformersPolicy(model, sampling=sampling, num_threads=threads)
    else:
        check_policy(policy, TokenPolicy, needed_by="run_rollout_bench")
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
    load_s = time.perf_counter() - t0
    log(f"policy {policy.name} ready in {load_s:.1f} s")
    make_env, env_name = _make_env_factory(env, task, turns)
    spec = [ResetSpec(seed=seed, options=None, group_id="bench")]

    def clear() -> None:
        # A prefix KV cache kept from the previous run would flatter the next one's prefill.
        if isinstance(policy, TrainablePolicy):
            policy.clear_prefix_cache()

    # Warm-up (first-call allocations, thread pools) outside the timed runs.
    policy.generate_ids(
        [policy.encode_prompt([{"role": "user", "content": "hi"}]).ids],
        SamplingConfig(temperature=0, max_new_tokens=2),
    )

    results: dict[str, Any] = {}
    recorder = _RecordingPolicy(policy)
    envs = [make_env() for _ in range(group_size)]
    try:
        clear()
        engine = RolloutRunner(recorder, envs, env_name, max_turns=turns, sampling=sampling)
        engine.run(spec, group_size)
        batched = engine.stats
    finally:
        for e in envs:
            e.close()
    log(f"batched: {batched.generated_tokens} tokens in {batched.wall_seconds:.1f} s")

    single = make_env()
    try:
        clear()
        engine = RolloutRunner(policy, [single], env_name, max_turns=turns, sampling=sampling)
        engine.run(spec, group_size)
        sequential = engine.stats
    finally:
        single.close()
    log(f"sequential: {sequential.generated_tokens} tokens in {sequential.wall_seconds:.1f} s")

    clear()
    ceiling_tokens, t0 = 0, time.perf_counter()
    for batch in recorder.batches:
        gens = policy.generate_ids(batch, sampling)
        ceiling_tokens += sum(len(g.response_ids) for g in gens)
    ceiling_s = time.perf_counter() - t0
    log(f"bare generate: {ceiling_tokens} tokens in {ceiling_s:.1f} s")

    batched_tok_s = batched.tokens_per_second
    sequential_tok_s = sequential.tokens_per_second
    ceiling_tok_s = ceiling_tokens / ceiling_s if ceiling_s else 0.0
    prompt_lens = [len(p) for b in recorder.batches for p in b]
    results.update(
        batched_tok_s=round(batched_tok_s, 2),
        sequential_tok_s=round(sequential_tok_s, 2),
        batched_vs_sequential_ratio=round(batched_tok_s / sequential_tok_s, 3)
        if sequential_tok_s
        else None,
        generate_ceiling_tok_s=round(ceiling_tok_s, 2),
        generate_ceiling_ratio=round(batched_tok_s / ceiling_tok_s, 3) if ceiling_tok_s else None,
        batched_seconds=round(batched.wall_seconds, 2),
        sequential_seconds=round(sequential.wall_seconds, 2),
        ceiling_seconds=round(ceiling_s, 2),
        batched_tokens=batched.generated_tokens,
        sequential_tokens=sequential.generated_tokens,
        ceiling_tokens=ceiling_tokens,
        batched_env_seconds=round(batched.env_seconds, 3),
        batch_sizes=batched.batch_sizes,
        mean_prompt_tokens=round(sum(prompt_lens) / len(prompt_lens), 1) if prompt_lens else 0,
        group_size=group_size,
        turns=turns,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        env=env,
        model=policy.name,
        load_seconds=round(load_s, 2),
        threads=threads,
        cpu_count=os.cpu_count(),
        load_average=[round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    )
    return results
