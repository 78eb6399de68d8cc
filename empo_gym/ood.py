"""The EMPO² out-of-distribution (OOD) transfer tasks as a Gymnasium env.

The protocol: train on task A (the *source*), then run on task B (the *target*) with memory and
no weight updates. ``empo_gym/ScienceWorldOOD-v0`` exposes both stages of one pair, so any RL
code can train on A and test on B without empo-gym's agents.

Example:
    >>> import gymnasium as gym
    >>> import empo_gym
    >>> env = gym.make("empo_gym/ScienceWorldOOD-v0", transfer="bio2-electricity")
    >>> env.unwrapped.source_task, env.unwrapped.target_task, env.unwrapped.task
    ('lifespan-longest-lived', 'test-conductivity', 'test-conductivity')
    >>> env.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from empo_gym.scienceworld.env import ScienceWorldEnv


@dataclass(frozen=True)
class Transfer:
    """One OOD pair: train on ``source``, run on ``target``."""

    name: str
    source: str
    target: str
    paper_grpo: float
    """The paper's GRPO score on the target (best of 10 trials)."""
    paper_empo: float
    """The paper's EMPO² score on the target (best of 10 trials)."""


#: The paper's three pairs (the EMPO² paper's out-of-distribution protocol).
TRANSFERS: dict[str, Transfer] = {
    t.name: t
    for t in (
        Transfer("bio1-bio2", "identify-life-stages-2", "lifespan-shortest-lived", -6.2, 32.3),
        Transfer("bio2-electricity", "lifespan-longest-lived", "test-conductivity", 22.5, 88.1),
        Transfer(
            "electricity-chemistry",
            "power-component",
            "chemistry-mix-paint-secondary-color",
            -21.4,
            18.9,
        ),
    )
}
STAGES = ("source", "target")


def get_transfer(name: str) -> Transfer:
    """Look up a transfer pair by name, or raise listing the valid names."""
    if name not in TRANSFERS:
        raise ValueError(f"unknown transfer {name!r}; expected one of: {', '.join(TRANSFERS)}")
    return TRANSFERS[name]


class ScienceWorldOODEnv(ScienceWorldEnv):
    """ScienceWorld restricted to one stage of an OOD transfer pair.

    ``stage="source"`` runs task A (train on it); ``stage="target"`` runs task B (evaluate with
    memory, no weight updates). ``info`` carries ``transfer``, ``stage``, ``source_task`` and
    ``target_task``.

    Args:
        transfer: ``bio1-bio2``, ``bio2-electricity`` or ``electricity-chemistry``.
        stage: ``source`` or ``target`` (default ``target``: the OOD evaluation).
        split: Variations to draw from (``train``, ``dev``, ``test``); ``None``: ``train`` for
            the source stage (it is trained on), ``test`` for the target stage.
        **kwargs: Passed to :class:`~empo_gym.scienceworld.env.ScienceWorldEnv`.
    """

    def __init__(
        self,
        transfer: str = "bio1-bio2",
        stage: str = "target",
        split: str | None = None,
        **kwargs: Any,
    ):
        self.transfer = get_transfer(transfer)
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; expected one of: {', '.join(STAGES)}")
        if "task" in kwargs:
            raise ValueError("ScienceWorldOODEnv picks its task from `transfer` and `stage`")
        self.stage = stage
        task = self.transfer.source if stage == "source" else self.transfer.target
        if split is None:
            split = "train" if stage == "source" else "test"
        super().__init__(task=task, split=split, **kwargs)

    @property
    def source_task(self) -> str:
        """Task A of the pair."""
        return self.transfer.source

    @property
    def target_task(self) -> str:
        """Task B of the pair."""
        return self.transfer.target

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """Reset to a variation of this stage's task (``options`` may only set ``variation``)."""
        if options and options.get("task") not in (None, self.task):
            raise ValueError(
                f"the OOD env's task is fixed to {self.task!r} by transfer "
                f"{self.transfer.name!r} and stage {self.stage!r}; got task {options['task']!r}"
            )
        obs, info = super().reset(seed=seed, options=options)
        return obs, self._ood_info(info)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Step the underlying ScienceWorld env."""
        obs, reward, term, trunc, info = super().step(action)
        return obs, reward, term, trunc, self._ood_info(info)

    def _ood_info(self, info: dict[str, Any]) -> dict[str, Any]:
        info.update(
            transfer=self.transfer.name,
            stage=self.stage,
            source_task=self.source_task,
            target_task=self.target_task,
        )
        return info
