"""Records of multi-turn LLM rollouts, shared by the rollout runner and the trainers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Turn:
    """One generation step of an LLM agent in an environment.

    Token ids are stored for both prompt variants so that an off-policy update can score the
    response under the prompt *without* tips exactly (no string surgery at training time).
    """

    prompt_ids: list[int]
    """Prompt fed to the model when sampling (contains the tip block when ``used_tips``)."""
    prompt_ids_no_tips: list[int]
    """The same prompt rendered without the tip block (equal to ``prompt_ids`` otherwise)."""
    response_ids: list[int]
    """Sampled response tokens (the loss is taken over these only)."""
    logprobs: list[float]
    """Log-probabilities of ``response_ids`` under ``prompt_ids`` by the sampling policy."""
    reward: float = 0.0
    """Environment reward received after this turn's action."""
    intrinsic_reward: float = 0.0
    """Exploration bonus for this turn (EMPO² novelty), kept apart from ``reward``."""
    used_tips: bool = False
    """Whether retrieved tips were in the prompt."""
    action: str = ""
    """The action sent to the environment (after projection onto admissible actions)."""
    raw_output: str = ""
    """The model's raw text, kept for inspection and parse statistics."""
    parse_ok: bool = True
    """False when the raw output could not be parsed and a fallback action was used."""
    observation: str = ""
    """The raw observation (without tips) the action answered: the state memory is keyed by."""
    tip_span: tuple[int, int] | None = None
    """``(start, end)`` of the tip block inside ``prompt_ids`` when ``used_tips``:
    ``prompt_ids[:start] + prompt_ids[end:] == prompt_ids_no_tips``."""
    tips: list[str] = field(default_factory=list)
    """The tips that were in the prompt (empty when ``used_tips`` is False)."""


@dataclass
class Trajectory:
    """A whole episode of one rollout, member ``member`` of the group ``group_id``."""

    group_id: str
    member: int
    turns: list[Turn] = field(default_factory=list)
    score: float = 0.0
    """The env's final native score (ScienceWorld -100..100, WebShop 0..100)."""
    success: bool = False
    memory_mode: bool = False
    """True when the episode was rolled out with memory (tips) enabled."""
    tip: str | None = None
    """The one-sentence tip the policy wrote after the episode (EMPO²)."""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def episode_return(self) -> float:
        """Sum of the environment rewards."""
        return float(sum(t.reward for t in self.turns))
