"""Regenerate data/gold_prefixes.json: the first gold actions of seed 0 on the test split.

The determinism test replays these actions; they are inputs (any fixed action list would do),
stored because generating a gold path costs 5-15 s per task. Run:
``.venv/bin/python tests/scienceworld/make_gold_prefixes.py`` (about 5 minutes).
"""

from __future__ import annotations

import json
from pathlib import Path

from empo_gym.atomic_io import write_text_atomic
from empo_gym.scienceworld.env import ScienceWorldEnv
from empo_gym.scienceworld.tasks import TASK_NAMES

#: Gold actions kept per task (the test may use fewer).
KEEP = 12
SEED = 0
SPLIT = "test"
PATH = Path(__file__).parent / "data" / "gold_prefixes.json"


def main() -> None:
    """Write the gold prefixes of every task."""
    env = ScienceWorldEnv(split=SPLIT, oracle_info=True)
    out = {}
    for task in TASK_NAMES:
        _, info = env.reset(seed=SEED, options={"task": task})
        gold = info["oracle"]["gold_actions"]
        out[task] = {"variation": info["variation"], "gold_actions": gold[:KEEP]}
        print(task, info["variation"], len(gold), flush=True)
    env.close()
    write_text_atomic(PATH, json.dumps({"seed": SEED, "split": SPLIT, "tasks": out}, indent=1))


if __name__ == "__main__":
    main()
