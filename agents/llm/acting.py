"""Prompt -> generate -> parse: the one path from episode states to actions for an LLM policy.

The rollout runner (training) and the LLM agents (evaluation, memory-only inference) all act
through :class:`Actor`, so a trained policy is evaluated on exactly the prompts, tokens and
parsing it was trained with. Per batch the actor

1. builds each episode's prompt in its env's style (tips kept apart from the message text),
2. keeps every prompt within ``max_context_tokens``: the oldest history steps are dropped first;
   the task text, the tip block and the current observation always stay,
3. answers all prompts with ONE batched generation (token ids for a token-level policy, so
   training can score the response with and without the tips exactly),
4. parses each answer onto the episode's admissible actions.

Example:
    >>> from empo_gym.agents.llm.policy import Generation, SamplingConfig
    >>> from empo_gym.agents.llm.prompts import EpisodeState
    >>> class Echo:  # a text-only policy that always opens the door
    ...     name, sampling = "echo", SamplingConfig()
    ...     def generate(self, conversations, sampling=None):
    ...         return [Generation([], [], [], text="open door") for _ in conversations]
    ...     def close(self):
    ...         pass
    >>> info = {"task": "leave", "admissible_actions": ["open door"]}
    >>> state = EpisodeState.start("A hall.", info)
    >>> [d.action for d in Actor(Echo(), "scienceworld").decide([state], [None])]
    ['open door']
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from empo_gym.agents.llm.parsing import ParseResult, ParseStats, parse_action, style_for
from empo_gym.agents.llm.policy import (
    EncodedPrompt,
    Generation,
    Policy,
    SamplingConfig,
    TokenPolicy,
    check_policy,
)
from empo_gym.agents.llm.prompts import EpisodeState, Prompt, build_prompt

__all__ = ["ActStats", "Actor", "ContextLimitError", "Decision"]


class ContextLimitError(ValueError):
    """A prompt does not fit ``max_context_tokens`` even with no history at all."""


@dataclass
class ActStats:
    """Counts and timings of an actor's generations (accumulated over calls)."""

    batch_sizes: list[int] = field(default_factory=list)
    """Prompts answered by each batched generation."""
    generated_tokens: int = 0
    """Response tokens sampled."""
    generate_seconds: float = 0.0
    """Time inside the policy's generation."""
    parse: ParseStats = field(default_factory=ParseStats)
    """Parse outcome counts."""
    history_dropped: int = 0
    """History steps left out of prompts to stay within ``max_context_tokens``."""


@dataclass
class Decision:
    """One episode's step through the actor."""

    prompt: Prompt
    """The prompt (messages without tips, plus the tip block apart)."""
    encoded: EncodedPrompt
    """Its token ids (with and without tips); empty for a text-only policy."""
    generation: Generation
    """The sampled response."""
    parsed: ParseResult
    """The response projected onto the admissible actions."""

    @property
    def action(self) -> str:
        """The action to send to the env."""
        return self.parsed.action


class Actor:
    """Builds, bounds, generates and parses for one policy on one env (see the module doc).

    Args:
        policy: A :class:`~empo_gym.agents.llm.policy.Policy`; a
            :class:`~empo_gym.agents.llm.policy.TokenPolicy` gets token-level records and the
            context bound.
        env_name: Env short name (its profile picks the prompt style and the answer format).
        prompt_style: A prompt style instead of the profile's (a training preset's choice).
        action_format: An answer format instead of the profile's (goes with ``prompt_style``).
        sampling: Sampling override (else the policy's own).
        prompt_kwargs: Extra prompt-builder arguments (``max_history``, ...).
        prompt_fn: Replaces :func:`~empo_gym.agents.llm.prompts.build_prompt` (same signature).
        max_context_tokens: Longest prompt in tokens (None: unbounded). Only a token-level
            policy can be held to it; a text-only policy (an OpenAI-compatible endpoint) gets
            the builders' history and observation limits alone.
        needed_by: Who is building the actor (named when the policy is not a Policy).
    """

    def __init__(
        self,
        policy: Policy,
        env_name: str,
        *,
        prompt_style: str | None = None,
        action_format: str | None = None,
        sampling: SamplingConfig | None = None,
        prompt_kwargs: dict[str, Any] | None = None,
        prompt_fn: Callable[..., Prompt] | None = None,
        max_context_tokens: int | None = None,
        needed_by: str = "Actor",
    ) -> None:
        check_policy(policy, Policy, needed_by=needed_by)
        if max_context_tokens is not None and max_context_tokens < 1:
            raise ValueError(f"max_context_tokens={max_context_tokens!r}; expected >= 1 or None")
        self.policy = policy
        self.env_name = env_name
        self.style = action_format or style_for(env_name)
        self.sampling = sampling
        self.prompt_kwargs = dict(prompt_kwargs or {})
        if prompt_style is not None:  # a replacement prompt_fn without the keyword keeps working
            self.prompt_kwargs["style"] = prompt_style
        self.prompt_fn = prompt_fn or build_prompt
        self.max_context_tokens = max_context_tokens
        self.token_level = isinstance(policy, TokenPolicy)

    # ------------------------------------------------------------------ prompts
    def _build(self, state: EpisodeState, tips: Any) -> Prompt:
        return self.prompt_fn(self.env_name, state, tips, **self.prompt_kwargs)

    def _encode(self, prompt: Prompt) -> EncodedPrompt:
        return self.policy.encode_prompt(prompt.messages, prompt.tip_text or None)  # type: ignore[attr-defined]

    def prompt(
        self, state: EpisodeState, tips: Any, stats: ActStats | None = None
    ) -> tuple[Prompt, EncodedPrompt | None]:
        """The prompt of one episode, within the context bound, and its encoding.

        Raises:
            ContextLimitError: Even without history the prompt exceeds ``max_context_tokens``.
        """
        prompt = self._build(state, tips)
        if not self.token_level:
            return prompt, None
        encoded = self._encode(prompt)
        limit = self.max_context_tokens
        if limit is None or len(encoded.ids) <= limit:
            return prompt, encoded
        # Drop the oldest history first: find the most recent steps that still fit (the full
        # history did not). Prompt length grows with the steps kept, so a binary search works.
        best: tuple[int, Prompt, EncodedPrompt] | None = None
        bare_tokens = len(encoded.ids)  # with no history: the search tries keep=0 last
        lo, hi = 0, len(state.history) - 1  # candidate numbers of kept steps
        while lo <= hi:
            keep = (lo + hi) // 2
            p = self._build(
                dataclasses.replace(state, history=state.history[-keep:] if keep else []), tips
            )
            e = self._encode(p)
            if len(e.ids) <= limit:
                best, lo = (keep, p, e), keep + 1
            else:
                hi = keep - 1
                bare_tokens = len(e.ids)
        if best is None:
            raise ContextLimitError(
                f"the prompt needs {bare_tokens} tokens without any history (task text, "
                f"tips and the current observation), more than max_context_tokens={limit}; "
                "raise max_context_tokens or retrieve fewer tips"
            )
        kept, prompt, encoded = best
        if stats is not None:
            stats.history_dropped += len(state.history) - kept
        return prompt, encoded

    # ------------------------------------------------------------------- acting
    def decide(
        self,
        states: Sequence[EpisodeState],
        tips: Sequence[Any],
        stats: ActStats | None = None,
        *,
        route_keys: Sequence[str | None] | None = None,
    ) -> list[Decision]:
        """Answer every episode with one batched generation; one :class:`Decision` each.

        Args:
            states: The running episodes (their ``info["admissible_actions"]`` are parsed onto).
            tips: Each episode's tips (a list, the rendered block, or None).
            stats: Accumulates counts and timings.
            route_keys: One key per episode for a multi-server token-level policy (its rows
                stick to one server each); None leaves routing to the policy.
        """
        if len(states) != len(tips):
            raise ValueError(f"got {len(states)} states but {len(tips)} tip entries")
        if not states:
            return []
        built = [self.prompt(s, t, stats) for s, t in zip(states, tips, strict=True)]
        prompts = [p for p, _ in built]
        t0 = time.perf_counter()
        if self.token_level:
            encoded = [e for _, e in built if e is not None]
            ids = [e.ids for e in encoded]
            if route_keys is None:
                gens = self.policy.generate_ids(ids, self.sampling)  # type: ignore[attr-defined]
            else:
                gens = self.policy.generate_ids(ids, self.sampling, route_keys=route_keys)  # type: ignore[attr-defined]
        else:
            gens = self.policy.generate([p.with_tips() for p in prompts], self.sampling)
            encoded = [EncodedPrompt(ids=list(g.prompt_ids), ids_no_tips=[]) for g in gens]
        if len(gens) != len(prompts):
            raise RuntimeError(
                f"the policy returned {len(gens)} answers for {len(prompts)} prompts"
            )
        out = []
        for state, prompt, enc, gen in zip(states, prompts, encoded, gens, strict=True):
            # a menu prompt's answer is read against the menu it showed, in its order
            admissible = (
                prompt.actions
                if prompt.actions is not None
                else [str(a) for a in state.info.get("admissible_actions") or []]
            )
            parsed = parse_action(gen.text, admissible, self.style)
            out.append(Decision(prompt=prompt, encoded=enc, generation=gen, parsed=parsed))
        if stats is not None:
            stats.generate_seconds += time.perf_counter() - t0
            stats.batch_sizes.append(len(prompts))
            stats.generated_tokens += sum(len(g.response_ids) for g in gens)
            for d in out:
                stats.parse.add(d.parsed)
        return out
