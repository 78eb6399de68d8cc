"""Every YAML file in baselines/ loads into its config dataclass (unknown keys are errors)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cli import RunConfig
from empo_gym.yaml_config import load_yaml

BASELINES = sorted((Path(__file__).parent.parent / "baselines").glob("*.yaml"))


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: p.name)
def test_baseline_config_loads(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    if "trainer" in data or "algorithm" in data:
        pytest.skip("training configs are checked by tests/training")
    cfg = load_yaml(RunConfig, path)
    assert cfg.episodes >= 1
