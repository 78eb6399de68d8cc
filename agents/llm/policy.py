"""What a policy is: the :class:`Policy` protocols and the records they exchange.

Three protocols, by who needs what:

* :class:`Policy` -- chat in, text out (agents; :class:`~empo_gym.agents.llm.openai_policy.
  OpenAIPolicy` implements only this).
* :class:`TokenPolicy` -- a :class:`Policy` with token-level access: token-exact prompts,
  generation from token ids, log-probabilities (the rollout runner records full turns with it).
* :class:`TrainablePolicy` -- what the GRPO / EMPO² trainer drives: the ``model`` it updates in
  place and the hooks around that (sampling state for checkpoints, caches to drop).
* :class:`ServedPolicy` -- a trainable policy that samples on a separate inference engine
  (:class:`~empo_gym.agents.llm.vllm_policy.VLLMPolicy`): the trainer pauses it during the
  update and syncs the new weights to it after.

:class:`~empo_gym.agents.llm.transformers_policy.TransformersPolicy` implements all three. The
protocols are ``runtime_checkable``: callers check them with ``isinstance`` and
:func:`check_policy` names what is missing.

This module imports no torch at runtime, so a server-backed policy stays light.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from empo_gym.protocols import missing_members

if TYPE_CHECKING:
    import torch

Message = dict[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": str}``."""


@dataclass
class SamplingConfig:
    """Sampling settings of a policy.

    Attributes:
        temperature: Softmax temperature; 0 means greedy decoding.
        top_p: Nucleus sampling mass (1.0 disables it).
        max_new_tokens: Longest response in tokens.
        seed: When set, every ``generate`` call draws from its own generator seeded
            ``seed + call_index`` (reproducible runs).
        stop_token_ids: Tokens that end a row besides EOS (kept in the response, finish
            reason ``stop``), e.g. :meth:`TokenPolicy.sentence_end_ids` for one sentence.

    Example:
        >>> SamplingConfig(temperature=0.4).greedy
        False
        >>> SamplingConfig(temperature=0).greedy
        True
    """

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 32
    seed: int | None = None
    stop_token_ids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature!r}; expected >= 0 (0 = greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p!r}; expected a value in (0, 1]")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={self.max_new_tokens!r}; expected >= 1")

    @property
    def greedy(self) -> bool:
        """True when decoding is greedy (temperature 0)."""
        return self.temperature == 0

    @property
    def logprob_temperature(self) -> float:
        """Temperature the log-probabilities are computed at (1.0 for greedy decoding)."""
        return self.temperature if self.temperature > 0 else 1.0


@dataclass
class Generation:
    """One sampled response.

    Attributes:
        prompt_ids: Token ids the model was conditioned on.
        response_ids: Sampled token ids (ends with the EOS token when the model stopped).
        logprobs: Log-probability of each response token under the sampling policy, at the
            sampling temperature, before top-p truncation (what importance ratios need).
        text: The decoded response, special tokens removed.
        finish_reason: ``"stop"`` (EOS sampled) or ``"length"`` (``max_new_tokens`` reached).
    """

    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str = "stop"


@dataclass
class EncodedPrompt:
    """A chat prompt tokenised with and without its tip block.

    Attributes:
        ids: Prompt ids as fed to the model (with the tip block when there is one).
        ids_no_tips: The same prompt without the tip block.
        tip_span: ``(start, end)`` of the tip block inside ``ids`` (``None`` when no tips):
            ``ids[:start] + ids[end:] == ids_no_tips``.

    Example:
        >>> p = EncodedPrompt(ids=[1, 2, 9, 9, 3], ids_no_tips=[1, 2, 3], tip_span=(2, 4))
        >>> p.used_tips
        True
    """

    ids: list[int]
    ids_no_tips: list[int]
    tip_span: tuple[int, int] | None = None

    @property
    def used_tips(self) -> bool:
        """Whether the prompt carries a tip block."""
        return self.tip_span is not None and self.tip_span[1] > self.tip_span[0]


@runtime_checkable
class Policy(Protocol):
    """What agents and the rollout runner need from a policy: chat in, text out.

    ``generate`` answers a batch of chat conversations; ``close`` releases what the policy
    holds (a model, connections). Token-level policies also satisfy :class:`TokenPolicy`.
    """

    name: str
    sampling: SamplingConfig

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        sampling: SamplingConfig | None = None,
    ) -> list[Generation]:
        """Sample one response per conversation (``sampling`` overrides the policy's own)."""
        ...

    def close(self) -> None:
        """Release the model / connections; the policy is not used afterwards."""
        ...


@runtime_checkable
class TokenPolicy(Policy, Protocol):
    """A :class:`Policy` with token-level access (the rollout runner records full turns with it).

    ``model`` / ``tokenizer`` / ``pad_id`` feed
    :func:`empo_gym.agents.llm.logprobs.token_logprobs` directly.
    """

    model: torch.nn.Module
    tokenizer: Any
    pad_id: int

    def encode_prompt(
        self, messages: Sequence[Message], tip_block: str | None = None
    ) -> EncodedPrompt:
        """Token ids of a chat prompt with and without its tip block."""
        ...

    def generate_ids(
        self,
        prompt_ids: Sequence[Sequence[int]],
        sampling: SamplingConfig | None = None,
        *,
        route_keys: Sequence[str | None] | None = None,
    ) -> list[Generation]:
        """Sample one response per tokenised prompt; ``route_keys`` (one per prompt, e.g. the
        trajectory) let a multi-server backend keep each trajectory on one server."""
        ...

    def logprobs(
        self,
        prompt_ids: Sequence[Sequence[int]],
        response_ids: Sequence[Sequence[int]],
        *,
        temperature: float | None = None,
    ) -> list[list[float]]:
        """Per-token log-probabilities of responses under prompts."""
        ...

    def sentence_end_ids(self) -> frozenset[int]:
        """Tokens that end a sentence (:func:`one_sentence` stops rows there)."""
        ...


@runtime_checkable
class TrainablePolicy(Protocol):
    """What the GRPO / EMPO² trainer needs from the policy it trains.

    The trainer updates ``model`` in place (sampling uses the same module), pads batches with
    ``pad_id``, saves :meth:`sampling_state` in checkpoints and restores it on resume, and calls
    :meth:`clear_prefix_cache` after every weight change. The trainer hands the policy on to its
    rollout function and algorithm, which may need more (e.g. :class:`TokenPolicy`).
    """

    model: torch.nn.Module
    pad_id: int

    def sampling_state(self) -> dict[str, int]:
        """What makes the next seeded generation reproducible (JSON-serialisable)."""
        ...

    def load_sampling_state(self, state: dict[str, int]) -> None:
        """Restore a :meth:`sampling_state` (a resumed run samples like an uninterrupted one)."""
        ...

    def clear_prefix_cache(self) -> None:
        """Forget whatever was computed with the old weights (they just changed in place)."""
        ...


@runtime_checkable
class ServedPolicy(Protocol):
    """A trainable policy whose sampler is a separate inference engine (vLLM servers).

    The trainer calls :meth:`pause` before each update (a colocated engine frees the
    accelerator) and :meth:`sync_weights` after every weight change.
    """

    def pause(self) -> None:
        """Free the engine's accelerator memory while the trainer updates (or do nothing)."""
        ...

    def sync_weights(
        self,
        model: torch.nn.Module,
        *,
        main: bool = True,
        rank: int = 0,
        state_dict: dict[str, torch.Tensor] | None = None,
    ) -> float:
        """Give the engine the trainer's current weights (``state_dict``: the whole model's,
        gathered from shards, when ``model``'s own are sharded); return the seconds it took."""
        ...


def check_policy(policy: object, protocol: type, *, needed_by: str) -> None:
    """Raise a TypeError naming the missing members when ``policy`` does not satisfy ``protocol``.

    Args:
        policy: The object given as a policy.
        protocol: :class:`Policy`, :class:`TokenPolicy` or :class:`TrainablePolicy`.
        needed_by: Who needs it (named in the message).

    Example:
        >>> check_policy(object(), Policy, needed_by="RolloutRunner")
        Traceback (most recent call last):
        ...
        TypeError: RolloutRunner needs a Policy; got object, which lacks name, sampling, ...
    """
    if isinstance(policy, protocol):
        return
    # Empty only for objects whose attributes come from __getattr__ (isinstance looks them up
    # statically on newer Pythons).
    missing = missing_members(policy, protocol) or ["members defined on its class"]
    raise TypeError(
        f"{needed_by} needs a {protocol.__name__}; got {type(policy).__name__}, which lacks "
        f"{', '.join(missing)} (define them, or use TransformersPolicy)"
    )


def one_sentence(policy: Policy, sampling: SamplingConfig) -> SamplingConfig:
    """``sampling`` that also stops each row at its first sentence end, when ``policy`` is a
    :class:`TokenPolicy` (it knows its sentence-end tokens); unchanged otherwise. EMPO²'s tips
    are one sentence: tokens after it would be paid for and thrown away.

    Example:
        >>> one_sentence(object(), SamplingConfig()).stop_token_ids
        frozenset()
    """
    if not isinstance(policy, TokenPolicy):
        return sampling
    ends = policy.sentence_end_ids()
    return dataclasses.replace(sampling, stop_token_ids=sampling.stop_token_ids | ends)
