"""load_policy: the implementation picked by ``--model`` / ``--base-url`` style options."""

from __future__ import annotations

import pytest

from empo_gym.agents.llm.factory import load_policy
from empo_gym.agents.llm.openai_policy import OpenAIPolicy
from empo_gym.agents.llm.policy import Policy, TokenPolicy


def test_load_policy_picks_the_server_policy_for_a_base_url():
    remote = load_policy("m", base_url="http://127.0.0.1:9/v1")
    assert isinstance(remote, OpenAIPolicy) and isinstance(remote, Policy)
    assert not isinstance(remote, TokenPolicy)
    with pytest.raises(ValueError, match="needs model"):
        load_policy(None, base_url="http://127.0.0.1:9/v1")
