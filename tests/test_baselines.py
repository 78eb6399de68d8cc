"""Every YAML file in baselines/ loads (unknown keys are errors); training configs validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from empo_gym.agents.training.config import config_from_dict
from empo_gym.pipeline import RunConfig
from empo_gym.yaml_config import load_yaml

BASELINES = sorted((Path(__file__).parent.parent / "baselines").glob("*.yaml"))


def test_there_are_paper_and_quick_baselines() -> None:
    names = {p.name for p in BASELINES}
    assert {"empo_scienceworld_paper.yaml", "grpo_webshop_paper.yaml"} <= names
    assert "empo_webshop_quick.yaml" in names


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: p.name)
def test_baseline_config_loads(path: Path) -> None:
    cfg = load_yaml(RunConfig, path)
    assert cfg.episodes >= 1
    algo = path.name.split("_")[0]
    if algo in {"empo", "grpo"}:
        env = path.name.split("_")[1]
        trainer = config_from_dict({**cfg.agent, "env": env}, agent=algo)
        assert trainer.agent == algo
        if "paper" in path.name:
            assert trainer.lr == 1e-6 and trainer.group_size == 8
            assert trainer.kl_coef == (0.01 if env == "webshop" else 0.0)
