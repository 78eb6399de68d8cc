"""The policy as EMPO²'s tip writer (used by the ``memory-only`` agent and the trainer).

After an episode the policy itself writes a one-sentence tip: the episode becomes the memory
module's tip prompt (:func:`empo_gym.memory.tips.build_tip_prompt`) as one user message, all
episodes are answered by ONE batched generation that stops at the first sentence end, and the
answers are flattened (:class:`empo_gym.memory.tips.PromptTipWriter`).
"""

from __future__ import annotations

from typing import Any

from empo_gym.agents.llm.policy import SamplingConfig, one_sentence
from empo_gym.memory.tips import PromptTipWriter

__all__ = ["policy_tip_writer"]


def policy_tip_writer(policy: Any, sampling: SamplingConfig) -> PromptTipWriter:
    """A tip writer (``list[Episode] -> list[str]``) that asks ``policy`` in one generation.

    Args:
        policy: Anything with the policy ``generate(conversations, sampling)`` API.
        sampling: Temperature, token budget and seed of the tips.

    Example:
        >>> from empo_gym.agents.llm.policy import Generation
        >>> from empo_gym.memory import Episode, Step
        >>> class Echo:
        ...     def generate(self, conversations, sampling=None):
        ...         return [Generation([], [], [], " Open it.\\n", "stop") for _ in conversations]
        >>> writer = policy_tip_writer(Echo(), SamplingConfig(max_new_tokens=8))
        >>> writer([Episode("open the box", "box/0", [Step("a box", "open box")])] * 2)
        ['Open it.', 'Open it.']
    """

    def generate(prompts: list[str]) -> list[str]:
        conversations = [[{"role": "user", "content": p}] for p in prompts]
        return [g.text for g in policy.generate(conversations, one_sentence(policy, sampling))]

    return PromptTipWriter(generate)
