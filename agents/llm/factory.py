"""Pick a policy implementation from ``--model`` / ``--base-url`` style options.

The one module that knows both implementations, so neither imports the other.
"""

from __future__ import annotations

from typing import Any

from empo_gym.agents.llm.openai_policy import DEFAULT_KEY_ENV, OpenAIPolicy
from empo_gym.agents.llm.policy import Policy, SamplingConfig
from empo_gym.agents.llm.transformers_policy import TransformersPolicy


def load_policy(
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key_env: str = DEFAULT_KEY_ENV,
    sampling: SamplingConfig | None = None,
    **kwargs: Any,
) -> Policy:
    """A policy for ``--model`` / ``--base-url`` style options.

    With ``base_url``, an :class:`~empo_gym.agents.llm.openai_policy.OpenAIPolicy` for ``model``
    on that server; otherwise a :class:`~empo_gym.agents.llm.transformers_policy.TransformersPolicy`
    (``model`` = alias, directory, ``.gguf`` or hub id; default ``smollm2-135m-instruct``).
    ``kwargs`` go to the chosen class.

    Raises:
        ValueError: ``base_url`` without ``model`` (the server needs a model name).

    Example:
        >>> load_policy("m", base_url="http://127.0.0.1:9/v1").endpoint
        'http://127.0.0.1:9/v1/chat/completions'
    """
    if base_url:
        if not model:
            raise ValueError(f"base_url={base_url!r} needs model=...; expected the server's name")
        return OpenAIPolicy(base_url, model, api_key_env=api_key_env, sampling=sampling, **kwargs)
    return TransformersPolicy(model, sampling=sampling, **kwargs)
