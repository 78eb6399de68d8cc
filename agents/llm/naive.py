"""The ``naive`` agent: the LLM zero-shot, batched across the harness's slots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from empo_gym.agents.base import Agent
from empo_gym.agents.llm.acting import Actor, ActStats
from empo_gym.agents.llm.factory import load_policy
from empo_gym.agents.llm.models import DEFAULT_MODEL
from empo_gym.agents.llm.openai_policy import check_base_url
from empo_gym.agents.llm.parsing import ParseStats
from empo_gym.agents.llm.policy import Policy, SamplingConfig
from empo_gym.agents.llm.prompts import EpisodeState
from empo_gym.memory.observation import split_observation
from empo_gym.registry import env_profile

#: The paper's evaluation temperature.
EVAL_TEMPERATURE = 0.4


def guess_env_name(info: dict[str, Any]) -> str:
    """Guess the env short name from an info dict (WebShop actions look like ``click[...]``).

    Example:
        >>> guess_env_name({"admissible_actions": ["search[<query>]", "click[buy now]"]})
        'webshop'
        >>> guess_env_name({"admissible_actions": ["look around"]})
        'scienceworld'
    """
    actions = [str(a) for a in info.get("admissible_actions") or []]
    if actions and all(a.startswith(("search[", "click[")) for a in actions):
        return "webshop"
    return "scienceworld"


class NaiveLLMAgent(Agent):
    """Zero-shot LLM agent: prompt, one batched generation over all active slots, parse.

    Args:
        model: Model name / path for a
            :class:`~empo_gym.agents.llm.transformers_policy.TransformersPolicy`, or with
            ``base_url`` the served model's name (ignored with ``policy``).
        policy: A ready policy (shared with other agents or a server-backed one).
        base_url: An OpenAI-compatible server (``http://host:port/v1``) that serves ``model``:
            the agent evaluates it through an
            :class:`~empo_gym.agents.llm.openai_policy.OpenAIPolicy` instead of loading a model
            (``empo-gym run --base-url URL --model NAME``).
        env: Env short name; when None it is taken from :meth:`env_kwargs` or guessed.
        temperature: Sampling temperature (the paper evaluates at 0.4).
        top_p: Nucleus mass.
        max_new_tokens: Response budget; None = the env profile's ``max_action_tokens``.
        seed: Sampling seed.
        max_history: Steps of history shown in the prompt.
        max_context_tokens: Longest prompt in tokens; older history is dropped first (None:
            only ``max_history`` bounds it).
        prompt_style: A prompt style instead of the env profile's (e.g. a trained policy's).
        action_format: An answer format instead of the env profile's.
    """

    name: ClassVar[str] = "naive"

    def __init__(
        self,
        model: str | None = None,
        *,
        policy: Policy | None = None,
        base_url: str | None = None,
        env: str | None = None,
        temperature: float = EVAL_TEMPERATURE,
        top_p: float = 1.0,
        max_new_tokens: int | None = None,
        seed: int | None = 0,
        max_history: int | None = None,
        max_context_tokens: int | None = None,
        prompt_style: str | None = None,
        action_format: str | None = None,
    ) -> None:
        if base_url is not None:  # checked now: the policy is built at the first action
            check_base_url(base_url)
            if not model:
                raise ValueError(
                    f"base_url={base_url!r} needs model=NAME (--model): the name the server serves"
                )
        self._model_name = model or DEFAULT_MODEL
        self._policy = policy
        self.base_url = base_url
        self.env_name = env
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.max_history = max_history
        self.states: dict[int, EpisodeState] = {}
        self.tips: dict[int, Any] = {}
        self.max_context_tokens = max_context_tokens
        self.prompt_style = prompt_style
        self.action_format = action_format
        #: Generation and parse counts of every act_batch so far.
        self.act_stats = ActStats()
        self._actor: Actor | None = None

    @property
    def policy(self) -> Policy:
        """The policy, loaded on first use."""
        if self._policy is None:
            self._policy = load_policy(
                self._model_name, base_url=self.base_url, sampling=self._sampling()
            )
        return self._policy

    @property
    def model(self) -> str | None:
        """The model name (leaderboard)."""
        if self._policy is not None:
            return self._policy.name
        return self._model_name

    def _sampling(self) -> SamplingConfig:
        budget = self.max_new_tokens or env_profile(self.env_name or "").max_action_tokens
        return SamplingConfig(
            temperature=self.temperature, top_p=self.top_p, max_new_tokens=budget, seed=self.seed
        )

    def config(self) -> dict[str, Any]:
        """Settings recorded in the leaderboard entry (the server too when one serves it)."""
        served = {} if self.base_url is None else {"base_url": self.base_url}
        return {
            "model": self.model,
            **served,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self._sampling().max_new_tokens,
            "seed": self.seed,
            "prompt_style": self.prompt_style,
            "action_format": self.action_format,
            "parse": self.parse_stats.as_dict(),
            "history_dropped": self.act_stats.history_dropped,
        }

    def env_kwargs(self, env_name: str) -> dict[str, Any]:
        """Remember the env the harness runs (chooses prompt and parsing); no extra kwargs."""
        if self.env_name is None:
            self.env_name = env_name
        return {}

    def reset(self, slot: int, observation: Any, info: dict[str, Any]) -> None:
        """Start a new episode in ``slot``."""
        if self.env_name is None:
            self.env_name = guess_env_name(info)
        text, tips = split_observation(observation)
        self.states[slot] = EpisodeState.start(text, info)
        self.tips[slot] = tips

    def act(self, slot: int, observation: Any, info: dict[str, Any]) -> str:
        """The action for one slot (a batch of one)."""
        return self.act_batch([slot], [observation], [info])[0]

    @property
    def parse_stats(self) -> ParseStats:
        """Parse outcome counts of every answer so far."""
        return self.act_stats.parse

    def _actor_for(self, env_name: str) -> Actor:
        # the path training rollouts take too: same prompts, tokens, context bound, parsing
        if self._actor is None or self._actor.env_name != env_name:
            self._actor = Actor(
                self.policy,
                env_name,
                prompt_style=self.prompt_style,
                action_format=self.action_format,
                sampling=self._sampling(),
                prompt_kwargs={} if self.max_history is None else {"max_history": self.max_history},
                max_context_tokens=self.max_context_tokens,
            )
        return self._actor

    def act_batch(
        self,
        slots: Sequence[int],
        observations: Sequence[Any],
        infos: Sequence[dict[str, Any]],
    ) -> list[str]:
        """Answer all active slots with one batched generation."""
        env_name = self.env_name or (guess_env_name(infos[0]) if infos else "scienceworld")
        states, tips_per_slot = [], []
        for slot, obs, info in zip(slots, observations, infos, strict=True):
            text, tips = split_observation(obs)
            state = self.states.get(slot)
            if state is None:
                state = self.states[slot] = EpisodeState.start(text, info)
            state.observation, state.info = text, dict(info)
            states.append(state)
            tips_per_slot.append(tips)
        decisions = self._actor_for(env_name).decide(states, tips_per_slot, self.act_stats)
        return [d.action for d in decisions]

    def observe(
        self,
        slot: int,
        action: str,
        observation: Any,
        reward: float,
        terminated: bool,
        truncated: bool,
        info: dict[str, Any],
    ) -> None:
        """Append the step to the slot's history."""
        state = self.states.get(slot)
        if state is None:
            return
        text, tips = split_observation(observation)
        state.advance(action, text, info)
        self.tips[slot] = tips

    def close(self) -> None:
        """Release the model."""
        if self._policy is not None:
            self._policy.close()
        self._policy, self._actor = None, None
