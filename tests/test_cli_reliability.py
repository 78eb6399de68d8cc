"""Bad input to ``empo-gym`` fails before any work, as one ``error:`` line with exit status 2.

The cases run the real command in a subprocess (what a user sees: stderr, exit status, no
traceback); the learning agents' cases must fail before a model loads, which an in-process test
checks by making every model load raise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.training.train_helpers import subprocess_env

#: Generous bound for a validation failure on a loaded 2-core box (the import is ~2-5 s);
#: loading SmolLM2 and evaluating would take far longer.
FAST_S = 30


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "empo_gym.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )


def _one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "afile").write_text("not a directory")
    return tmp_path


# (extra run arguments, text the one error line must contain)
BAD_RUNS = [
    (["--episodes", "0"], "episodes must be a positive int, got 0"),
    (["--seed", "-5"], "seed must be an int >= 0"),
    (["--num-envs", "0"], "num_envs must be a positive int, got 0"),
    (["--out", "afile"], "out_dir 'afile' is a file"),
    (["--out", "afile/sub"], "out_dir 'afile/sub' is under"),
    (["--out", "/proc/self/empo-out"], "'/proc/self/empo-out'"),  # not writable, even for root
    (["--trajectories", "."], "trajectories_path '.' is a directory"),
    (["--trajectories", "afile/t.jsonl"], "afile"),
    (["--config", sys.executable], "not a text file"),
    (["--model", "/no/such"], "cannot resolve model '/no/such'"),
    (["--model", "afile"], "afile is a file but not a model"),
]


MODEL_CASES = {"--model"}
#: The learning agents are the costly ones to get wrong (they train before evaluating): every
#: case; the others cover what applies to them.
CASES = [
    pytest.param(agent, args, message, id=f"{agent} {' '.join(args)}")
    for agent in ("grpo", "random", "naive", "empo")
    for args, message in BAD_RUNS
    if agent == "grpo"
    or (agent == "random" and args[0] not in MODEL_CASES)
    or (agent == "naive" and args[0] in MODEL_CASES)
    or (agent == "empo" and args[0] in {"--episodes", "--seed", "--out"} and "/proc" not in args[1])
]


@pytest.mark.parametrize(("agent", "args", "message"), CASES)
def test_bad_run_input_is_one_line_exit_2_before_any_work(workdir, agent, args, message) -> None:
    t0 = time.perf_counter()
    res = _cli("run", "--agent", agent, "--env", "webshop", "--episodes", "1", *args, cwd=workdir)
    wall = time.perf_counter() - t0
    line = _one_error_line(res)
    assert message in line, line
    assert "Traceback" not in res.stderr and "evaluating" not in res.stderr
    assert wall < FAST_S, f"{wall:.1f} s: the error came after real work"
    assert not list(workdir.rglob("*.json")), "a result was written"
    if "--config" in args:
        assert sys.executable in line  # names the file


def test_trajectories_of_a_learning_agent_check_the_untrained_file_too(workdir) -> None:
    (workdir / "t.initial.jsonl").mkdir()
    res = _cli(
        "run", "--agent", "grpo", "--env", "webshop", "--trajectories", "t.jsonl", cwd=workdir
    )
    assert "t.initial.jsonl" in _one_error_line(res)


def test_corrupt_metrics_line_of_a_resumed_run_fails_before_the_model_loads(workdir) -> None:
    run_dir = workdir / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"iteration": 0}\n{not json\n{"iteration": 2}\n')
    (workdir / "cfg.yaml").write_text(f"agent: {{output_dir: '{run_dir}'}}\n")
    res = _cli("run", "--agent", "grpo", "--env", "webshop", "--config", "cfg.yaml", cwd=workdir)
    line = _one_error_line(res)
    assert "metrics.jsonl:2" in line and "not JSON" in line


def test_second_run_on_a_locked_output_dir_is_refused(workdir) -> None:
    run_dir = workdir / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from empo_gym.agents.training.run_lock import RunLock\n"
            f"RunLock({str(run_dir)!r}).acquire(); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        (workdir / "cfg.yaml").write_text(f"agent: {{output_dir: '{run_dir}'}}\n")
        res = _cli(
            "run", "--agent", "empo", "--env", "webshop", "--config", "cfg.yaml", cwd=workdir
        )
        line = _one_error_line(res)
        assert f"is in use by process {holder.pid}" in line
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("agent", ["grpo", "empo"])
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"episodes": 0}, "episodes"),
        ({"seed": -1}, "seed"),
        ({"out_dir": "afile"}, "out_dir"),
        ({"out_dir": "afile/sub"}, "out_dir"),
    ],
)
def test_learning_agent_bad_input_fails_before_any_model_load(
    tmp_path, monkeypatch, agent, bad, message
) -> None:
    """In process: every model load raises, so the input error coming first proves none ran."""
    import empo_gym.agents.llm.models as models
    from empo_gym.pipeline import run

    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(models, "load_model_and_tokenizer", no_load)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    kwargs = {"out_dir": tmp_path / "lb", **bad}
    with pytest.raises(ValueError, match=message):
        run(agent, "webshop", config=None, model=None, **kwargs)
    assert not (tmp_path / "lb").exists() and not (tmp_path / "runs").exists()


def test_leaderboard_skips_a_bad_file_with_a_one_line_warning(tmp_path) -> None:
    from empo_gym import leaderboard as lb
    from empo_gym.agents.scripted.random_agent import RandomAgent
    from empo_gym.harness import evaluate

    result = evaluate(RandomAgent(seed=0), "guess", episodes=2)
    lb.write_entry(lb.entry_from_result(result, agent=RandomAgent(seed=0)), tmp_path)
    (tmp_path / "latin1.json").write_bytes(b'{"agent": "caf\xe9"}')
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "nan.json").write_text('{"schema_version": 1, "x": NaN}')
    res = _cli("leaderboard", str(tmp_path), "--format", "json", "--hide-reported", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)  # strict JSON
    assert [r["agent"] for r in rows] == ["random"]
    warnings = res.stderr.strip().splitlines()
    assert len(warnings) == 3 and "Traceback" not in res.stderr
    for name, why in [("latin1.json", "not UTF-8"), ("deep.json", "nested"), ("nan.json", "NaN")]:
        assert any(name in w and why in w and w.startswith("warning: skipped") for w in warnings)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ood", "--transfer", "bio1-bio2", "--seed", "-5"], "seed must be an int >= 0"),
        (["ood", "--transfer", "bio1-bio2", "--out", "afile"], "out_dir 'afile' is a file"),
        (
            ["ood", "--transfer", "bio1-bio2", "--leaderboard-out", "afile/x"],
            "leaderboard_dir 'afile/x' is under",
        ),
        (["ood", "--transfer", "bio1-bio2", "--model", "/no/such"], "'/no/such'"),
        (["bench", "memory", "--entries", "0"], "--entries must be a positive int, got 0"),
        (["bench", "explore", "--out", "afile"], "--out 'afile' is a file"),
        (["leaderboard", "afile"], "no readable result file"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_other_commands_fail_in_one_line_before_any_work(workdir, args, message) -> None:
    t0 = time.perf_counter()
    res = _cli(*args, cwd=workdir)
    wall = time.perf_counter() - t0
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2 and lines[-1].startswith("error: ") and message in lines[-1]
    assert len(lines) == (2 if args[0] == "leaderboard" else 1), res.stderr  # + the warning
    assert "Traceback" not in res.stderr and wall < FAST_S
