"""Training presets: the settings a config's ``preset`` key puts under the user's own keys.

* ``default``: nothing (the dataclass defaults, the paper's ScienceWorld recipe).
* ``paper``: the EMPO² paper's recipe on an env (:data:`PAPER_TRAIN`; Qwen2.5-7B-Instruct,
  full-parameter, 8 x A100-class GPUs), with the env's action token budget.
* ``quick``: the CPU settings of ``empo-gym run`` (:data:`QUICK`; 2 cores, SmolLM2-135M, ~10
  minutes), adjusted per env (:data:`QUICK_TRAIN`) and for EMPO² (:data:`QUICK_EMPO`).

What a trainer runs with lives here; facts about an env (prompt style, answer format, action
token budget) stay in its profile (:mod:`empo_gym.registry`).

Example:
    >>> preset_base("quick", "grpo", "webshop")["prompt_style"]
    'webshop-menu'
    >>> preset_base("quick", "grpo", "coin")["max_steps"]
    15
    >>> preset_base("paper", "grpo", "scienceworld")["max_response_tokens"]
    32
    >>> preset_base("paper", "grpo", "doors")
    Traceback (most recent call last):
    ...
    ValueError: env='doors' has no paper preset; expected one of ['scienceworld', 'webshop']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from empo_gym.registry import TWX_ENVS, env_profile

__all__ = [
    "PAPER_MODEL",
    "PAPER_TRAIN",
    "PRESETS",
    "QUICK",
    "QUICK_EMPO",
    "QUICK_TRAIN",
    "preset_base",
    "register_presets",
]

#: The names a config's ``preset`` key accepts.
PRESETS = ("default", "paper", "quick")

#: The paper's base model, full-parameter (8 x A100-class GPUs).
PAPER_MODEL = "Qwen/Qwen2.5-7B-Instruct"

#: Trainer settings of the EMPO² paper's recipe per env (an env missing here has none).
PAPER_TRAIN: dict[str, Mapping[str, Any]] = {
    "scienceworld": {"model": PAPER_MODEL, "kl_coef": 0.0},
    "webshop": {
        "model": PAPER_MODEL,
        "kl_coef": 0.01,
        "max_steps": 15,
        "eval_episodes": 500,
    },
}

#: CPU settings of ``empo-gym run`` (2 cores, SmolLM2-135M, ~10 minutes).
QUICK: Mapping[str, Any] = {
    "model": "smollm2-135m-instruct",
    "iterations": 6,
    "tasks_per_iter": 2,
    "group_size": 4,
    "max_steps": 6,
    "max_response_tokens": 16,
    "max_context_tokens": 1024,
    "eval_episodes": 5,
    "lr": 1e-5,
    "micro_batch_size": 8,
    "checkpoint_every": 2,
    "output_dir": "runs/quick",
    # SmolLM2-135M sampling at temperature 1.0 draws a token below log-prob -5 in most
    # 16-token answers, so the paper's -5 masks nearly every turn (no update at all);
    # -10 still removes the pathological tails that make off-policy ratios explode.
    "low_prob_threshold": -10.0,
}
#: EMPO²-only quick settings: one sentence; on CPU every tip token is paid once per trajectory.
QUICK_EMPO: Mapping[str, Any] = {"tip_max_tokens": 32}

#: Per-env adjustments of :data:`QUICK` (an env missing here takes it as it is).
QUICK_TRAIN: dict[str, Mapping[str, Any]] = {
    # ScienceWorld's scores move with partial progress, so nearly every iteration updates
    # (~600-token prompts, ~25 unmasked turns): 4 iterations keep `run` near 10 minutes.
    "scienceworld": {"iterations": 4},
    # SmolLM2-135M never finishes a purchase with the paper's free-text <think>/<action>
    # answers in a few CPU steps (no reward, nothing to learn), so the quick preset answers
    # with the number of an action from a menu (prompt style webshop-menu, answer format
    # index; ~120-360-token prompts, 1-3 answer tokens): search, click a product and buy
    # fit in 4 steps. A CPU update costs ~13 ms per prompt token on one core, hence one
    # task of 4 rollouts per iteration and no KL term (kl_coef > 0 forwards every turn,
    # even those with zero advantage, plus a reference model).
    "webshop": {
        "iterations": 8,
        "tasks_per_iter": 1,
        "max_steps": 4,
        "max_response_tokens": 4,
        "kl_coef": 0.0,
        "prompt_style": "webshop-menu",
        "action_format": "index",
        "lr": 5e-5,
        "eval_episodes": 20,
    },
}


#: Quick presets of the TextWorldExpress games, per family. Their actions are short menu strings
#: ("open door to north": ~5 tokens), so 8 answer tokens suffice. Navigation games need room
#: to explore (Coin Collector's default 11 rooms: a random walk succeeds in 38% of 100-step
#: episodes, the gold path takes ~10-30 steps); the puzzles are short. The env's generation
#: parameters keep the games' defaults (the trainer config has no env kwargs). Measured: GRPO
#: quick on coin takes ~10 minutes of `empo-gym run` (591 s, 2 shared cores under load;
#: 70-140 s per iteration); SmolLM2-135M found the coin in one iteration's rollouts, not in the
#: 5 evaluation episodes. The other families are not timed.
_TWX_QUICK: dict[str, Mapping[str, Any]] = {
    "navigation": {"max_steps": 15, "max_response_tokens": 8, "iterations": 4},
    "household": {"max_steps": 15, "max_response_tokens": 8, "iterations": 4},
    "puzzle": {"max_steps": 8, "max_response_tokens": 8},
}
_TWX_FAMILY = {
    "coin": "navigation",
    "mapreader": "navigation",
    "cookingworld": "household",
    "twc": "household",
    "arithmetic": "puzzle",
    "sorting": "puzzle",
    "simonsays": "puzzle",
    "peckingorder": "puzzle",
}
QUICK_TRAIN.update({game: _TWX_QUICK[_TWX_FAMILY[game]] for game in TWX_ENVS})


def register_presets(
    env: str,
    *,
    paper: Mapping[str, Any] | None = None,
    quick: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> None:
    """Give an env (e.g. one added with :func:`empo_gym.registry.register_env`) its presets.

    Args:
        env: Short env name.
        paper: Trainer settings of the paper's recipe on ``env`` (None: leave as is).
        quick: Adjustments of :data:`QUICK` for ``env`` (None: leave as is).
        overwrite: Replace presets ``env`` already has (otherwise a ValueError).
    """
    for table, settings, name in ((PAPER_TRAIN, paper, "paper"), (QUICK_TRAIN, quick, "quick")):
        if settings is not None and env in table and not overwrite:
            raise ValueError(f"env {env!r} already has a {name} preset; pass overwrite=True")
    if paper is not None:
        PAPER_TRAIN[env] = dict(paper)
    if quick is not None:
        QUICK_TRAIN[env] = dict(quick)


def preset_base(preset: str, agent: str, env: str) -> dict[str, Any]:
    """The settings ``preset`` puts under the user's keys for ``agent`` on ``env``.

    Args:
        preset: One of :data:`PRESETS`.
        agent: ``grpo`` or ``empo`` (EMPO² adds :data:`QUICK_EMPO` to the quick preset).
        env: Short env name (an unregistered env takes the generic profile).

    Raises:
        ValueError: Unknown preset, or ``paper`` for an env without one (the message lists the
            envs that have one).
    """
    if preset == "default":
        return {}
    if preset == "paper":
        if env not in PAPER_TRAIN:
            raise ValueError(
                f"env={env!r} has no paper preset; expected one of {sorted(PAPER_TRAIN)}"
            )
        return {"max_response_tokens": env_profile(env).max_action_tokens, **PAPER_TRAIN[env]}
    if preset == "quick":
        base = {"kl_coef": 0.0, **QUICK, **QUICK_TRAIN.get(env, {})}
        if agent == "empo":
            base.update(QUICK_EMPO)
        return base
    raise ValueError(f"preset={preset!r}; expected one of {list(PRESETS)}")
