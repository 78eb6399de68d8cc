"""Smoke tests of every ``empo-gym`` command (fast ones on a toy env; JVM ones slow-marked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from empo_gym.cli import app

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_envs_lists_envs_tasks_and_splits() -> None:
    res = _run("envs")
    assert res.exit_code == 0
    for text in ("scienceworld", "empo_gym/ScienceWorld-v0", "webshop", "boil", "bio1-bio2"):
        assert text in res.output


def test_envs_names_the_webshop_catalogue(tmp_path) -> None:
    from empo_gym.bench.webshop import write_original_files

    res = _run("envs")
    assert "webshop catalogue: generated (1000 products" in res.output
    data = write_original_files(tmp_path / "data", 60)
    res = _run("envs", "--data-dir", str(data))
    assert res.exit_code == 0
    assert f"original data in {data}" in " ".join(res.output.split())
    assert "items_shuffle.json" in res.output and "items_human_ins.json" in res.output
    res = runner.invoke(app, ["envs", "--data-dir", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_run_webshop_on_original_data_files(tmp_path) -> None:
    from empo_gym.bench.webshop import write_original_files

    data = write_original_files(tmp_path / "data", 60)
    out = tmp_path / "board"
    args = ["run", "--agent", "oracle", "--env", "webshop", "--data-dir", str(data)]
    args += ["--num-products", "all", "--episodes", "3", "--out", str(out)]
    res = _run(*args, "--reward", "corrected")
    assert res.exit_code == 0, res.output
    entry = json.loads(next(out.glob("*.json")).read_text())
    assert entry["metrics"]["success_rate"] == 1.0
    assert entry["provenance"]["reward_rule"] == "webshop:corrected"
    assert entry["provenance"]["catalogue"] == f"original data {data} (60 products)"
    res = runner.invoke(app, [*args, "--num-products", "many"])
    assert res.exit_code == 2 and "--num-products must be" in res.output
    res = runner.invoke(app, ["run", "--agent", "random", "--env", "guess", "--data-dir", "x"])
    assert res.exit_code == 2 and "applies to env 'webshop' only" in res.output


def test_run_writes_a_leaderboard_entry(tmp_path) -> None:
    res = _run(
        "run", "--agent", "random", "--env", "guess", "--episodes", "5", "--out", str(tmp_path)
    )
    assert res.exit_code == 0, res.output
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    entry = json.loads(files[0].read_text())
    assert entry["agent"] == "random" and entry["metrics"]["episodes"] == 5
    res = _run("leaderboard", str(tmp_path), "--format", "json")
    assert res.exit_code == 0
    assert json.loads(res.output)[0]["agent"] == "random"
    res = _run("leaderboard", str(tmp_path), "--format", "markdown", "--agent", "random")
    assert "| guess |" in res.output
    res = _run("leaderboard", str(tmp_path))
    assert "random" in res.output


def test_run_with_yaml_config(tmp_path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("agent: {seed: 3}\nepisodes: 2\nnum_envs: 2\n")
    res = _run(
        "run",
        "--agent",
        "random",
        "--env",
        "guess",
        "--config",
        str(cfg),
        "--out",
        str(tmp_path / "out"),
    )
    assert res.exit_code == 0, res.output
    entry = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert entry["metrics"]["episodes"] == 2 and entry["config"]["agent"] == {"seed": 3}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent", "wizard", "--env", "guess"], "unknown agent 'wizard'; expected one of:"),
        (["--agent", "random", "--env", "mars"], "unknown env 'mars'; expected one of:"),
        (
            ["--agent", "random", "--env", "scienceworld", "--task", "fly"],
            "unknown task 'fly' for env 'scienceworld'; expected one of:",
        ),
        (
            ["--agent", "random", "--env", "guess", "--split", "dev"],
            "unknown split 'dev' for env 'guess'; expected one of: train, test",
        ),
    ],
)
def test_bad_choices_get_a_one_line_error(args, message) -> None:
    res = runner.invoke(app, ["run", *args])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert message in out
    assert "Traceback" not in res.output


def test_bad_config_key_is_rejected(tmp_path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("episodez: 2\n")
    res = runner.invoke(app, ["run", "--agent", "random", "--env", "guess", "--config", str(cfg)])
    assert res.exit_code == 2 and "unknown config key 'episodez'" in " ".join(res.output.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--agent", "grpo", "--model", "m"],
            "(--base-url) applies to agents that act with a served model (naive, memory-only); "
            "agent 'grpo' trains its own model: drop --base-url",
        ),
        (["--agent", "random"], "agent 'random' takes no served model: drop --base-url"),
        (["--agent", "naive"], "needs model=NAME (--model): the name the server serves"),
    ],
)
def test_base_url_misuse_is_a_one_line_error_naming_the_flag(args, message) -> None:
    url = "http://127.0.0.1:9/v1"  # nothing listens there: the checks come before any request
    res = runner.invoke(app, ["run", *args, "--env", "guess", "--base-url", url])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split()) and "Traceback" not in res.output
    res = runner.invoke(
        app, ["run", "--agent", "naive", "--env", "guess", "--base-url", "h:1", "--model", "m"]
    )
    assert res.exit_code == 2 and "base_url='h:1'; expected an http(s) URL" in res.output


def test_run_evaluates_a_served_model(tmp_path) -> None:
    from empo_gym.agents.llm.policy import Generation, SamplingConfig
    from empo_gym.agents.llm.policy_server import PolicyServer

    class Canned:  # a text-only Policy behind the loopback server: no model loads
        name = "canned"
        sampling = SamplingConfig()

        def generate(self, conversations, sampling=None):
            return [Generation([], [], [], "look") for _ in conversations]

        def close(self) -> None:
            """Nothing to release."""

    with PolicyServer(Canned()) as server:
        args = ["run", "--agent", "memory-only", "--env", "guess", "--base-url", server.base_url]
        res = _run(*args, "--model", "served-x", "--episodes", "2", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    entry = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert entry["model"] == "served-x" and entry["metrics"]["episodes"] == 2
    assert entry["config"]["agent"]["base_url"] == server.base_url


def test_leaderboard_reports_malformed_file(tmp_path) -> None:
    (tmp_path / "broken.json").write_text('{"schema_version": 1}')
    res = runner.invoke(app, ["leaderboard", str(tmp_path)])
    assert res.exit_code == 2
    assert "broken.json" in res.output and "'agent'" in res.output


@pytest.mark.slow
def test_scienceworld_oracle_beats_random_on_the_leaderboard(tmp_path) -> None:
    res = _run(
        "run",
        "--agent",
        "oracle",
        "--env",
        "scienceworld",
        "--task",
        "boil",
        "--episodes",
        "3",
        "--out",
        str(tmp_path),
    )
    assert res.exit_code == 0, res.output
    res = _run(
        "run",
        "--agent",
        "random",
        "--env",
        "scienceworld",
        "--task",
        "boil",
        "--episodes",
        "3",
        "--out",
        str(tmp_path),
        "--num-envs",
        "3",
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(_run("leaderboard", str(tmp_path), "--format", "json").output)
    by_agent = {r["agent"]: r for r in rows}
    assert by_agent["oracle"]["success_rate"] == 1.0
    assert by_agent["random"]["mean_score"] < by_agent["oracle"]["mean_score"]


@pytest.mark.slow
def test_bench_scienceworld_prints_json_last_line() -> None:
    res = _run("bench", "scienceworld", "--steps", "8", "--rounds", "1")
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.output.strip().splitlines()[-1])
    for key in (
        "wrapper_overhead_ratio",
        "jvm_rss_mb_default",
        "jvm_rss_mb_capped",
        "capped_step_slowdown_ratio",
        "resets_per_s",
        "vector2_steps_per_s",
    ):
        assert metrics[key] > 0
    assert metrics["jvm_rss_mb_capped"] < metrics["jvm_rss_mb_default"]


def test_bench_webshop_small_sizes() -> None:
    res = runner.invoke(
        app,
        ["bench", "webshop", "--sizes", "200,500", "--no-memory", "--original-products", "300"],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout.strip().splitlines()[-1])
    assert metrics["search_p50_ms_500"] > 0 or any(k.startswith("search_p50") for k in metrics)
    assert metrics["build_parts_s_500"]["nouns"] > 0
    for key in ("file_mb", "build_s", "build_rss_mb", "load_s", "load_rss_mb"):
        assert metrics[f"original_{key}_300"] > 0, key
    res = runner.invoke(app, ["bench", "webshop", "--sizes", "ten"])
    assert res.exit_code == 2 and "--sizes must be" in res.output


@pytest.mark.parametrize("agent", ["oracle", "rule", "random"])
def test_webshop_agents_run(tmp_path, agent: str) -> None:
    res = _run(
        "run", "--agent", agent, "--env", "webshop", "--episodes", "10", "--out", str(tmp_path)
    )
    assert res.exit_code == 0, res.output
    entry = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert entry["provenance"]["noun_method"].startswith("spacy:en_core_web_sm-")
    assert entry["provenance"]["reward_rule"] == "webshop:original"
    if agent == "oracle":
        assert entry["metrics"]["success_rate"] == 1.0
    else:
        assert entry["metrics"]["mean_score"] < 100.0


@pytest.mark.slow
def test_bench_memory_prints_json_last_line() -> None:
    res = runner.invoke(
        app,
        [
            "bench",
            "memory",
            "--embedders",
            "hashing",
            "--entries",
            "2000",
            "--big-entries",
            "5000",
            "--queries",
            "20",
            "--episodes",
            "1",
            "--task",
            "find-plant",
        ],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout.strip().splitlines()[-1])
    assert metrics["overhead_fraction"] >= 0
    assert any(k.startswith("query_p50_ms") for k in metrics)


def test_bench_memory_rejects_unknown_embedder() -> None:
    res = runner.invoke(app, ["bench", "memory", "--embedders", "word2vec"])
    assert res.exit_code == 2 and "word2vec" in res.output


@pytest.mark.slow
def test_bench_rollout_prints_json_last_line() -> None:
    res = runner.invoke(
        app,
        ["bench", "rollout", "--group-size", "2", "--turns", "1", "--max-new-tokens", "4"],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout.strip().splitlines()[-1])
    for key in (
        "batched_tok_s",
        "sequential_tok_s",
        "batched_vs_sequential_ratio",
        "generate_ceiling_ratio",
    ):
        assert metrics[key] > 0


@pytest.mark.slow
def test_naive_llm_agent_on_webshop_end_to_end(tmp_path) -> None:
    cfg = tmp_path / "naive.yaml"
    cfg.write_text("agent: {max_new_tokens: 40}\nenv_kwargs: {max_steps: 3}\nnum_envs: 2\n")
    res = _run(
        "run",
        "--agent",
        "naive",
        "--env",
        "webshop",
        "--episodes",
        "2",
        "--config",
        str(cfg),
        "--out",
        str(tmp_path / "lb"),
    )
    assert res.exit_code == 0, res.output
    entry = json.loads(next((tmp_path / "lb").glob("*.json")).read_text())
    assert entry["model"] and "smollm2" in entry["model"].lower()
    assert entry["metrics"]["episodes"] == 2
    assert all(e["steps"] >= 1 for e in entry["episodes"])


def test_plot_draws_a_png(tmp_path) -> None:
    for name, base in (("a", 0.0), ("b", 0.5)):
        run = tmp_path / name
        run.mkdir()
        rows = [{"iteration": i, "success": base + 0.1 * i, "return": base} for i in range(4)]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "curve.png"
    res = _run("plot", f"empo={tmp_path / 'a'}", f"grpo={tmp_path / 'b'}", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = runner.invoke(app, ["plot", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no metrics.jsonl" in res.output


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("agent: {lr: -1.0}\n", "lr"),
        ("agent: {group_size: 1}\n", "group_size"),
        ("agent: {learning_rate: 0.1}\n", "learning_rate"),
        ("agent: {memory_prob: 1.5}\n", "memory_prob"),
    ],
)
def test_bad_training_config_fails_before_any_model_loads(tmp_path, yaml_text, message) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    res = runner.invoke(app, ["run", "--agent", "empo", "--env", "webshop", "--config", str(cfg)])
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert "training" not in res.output  # rejected before training started


def test_ood_rejects_unknown_transfer() -> None:
    res = runner.invoke(app, ["ood", "--transfer", "bio9-bio10"])
    assert res.exit_code == 2 and "bio1-bio2" in res.output


@pytest.mark.slow
def test_bench_train_prints_json_last_line() -> None:
    res = runner.invoke(
        app,
        [
            "bench",
            "train",
            "--iterations",
            "2",
            "--warmup",
            "1",
            "--tasks-per-iter",
            "1",
            "--group-size",
            "2",
            "--max-steps",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout.strip().splitlines()[-1])
    for key in (
        "grpo_s_per_iter",
        "empo_s_per_iter",
        "empo_vs_grpo_iteration_ratio",
        "memory_share_of_iteration",
        "update_tok_s",
        "paired_ratio_median",
        "empo_vs_grpo_ratio_skipping_zero_adv",
        "tip_share_of_iteration",
    ):
        assert key in metrics
    assert metrics["grpo_s_per_iter"] > 0 and metrics["empo_s_per_iter"] > 0
    assert metrics["equal_update_work"] is True
    assert "interleaved" in res.output


@pytest.mark.slow
def test_empo_run_trains_then_evaluates(tmp_path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "agent: {iterations: 1, tasks_per_iter: 1, group_size: 2, max_steps: 2,\n"
        f"        max_response_tokens: 8, memory_prob: 1.0, output_dir: '{tmp_path / 'run'}'}}\n"
        "episodes: 2\nnum_envs: 2\n"
    )
    res = _run(
        "run",
        "--agent",
        "empo",
        "--env",
        "webshop",
        "--config",
        str(cfg),
        "--out",
        str(tmp_path / "lb"),
    )
    assert res.exit_code == 0, res.output
    rows = {
        e["checkpoint"]: e
        for e in (json.loads(f.read_text()) for f in (tmp_path / "lb").glob("*.json"))
    }
    entry, initial = rows["trained"], rows["initial"]
    assert entry["agent"] == "empo" and entry["metrics"]["episodes"] == 2
    assert entry["config"]["agent"]["training"]["iterations"] == 1
    assert initial["config"]["agent"]["training"] == {}  # evaluated before training
    assert initial["provenance"]["seeds"] == entry["provenance"]["seeds"]
    assert entry["comparison"]["episodes"] == 2 and "difference:" in res.output
    assert (tmp_path / "run" / "metrics.jsonl").exists()
    assert (tmp_path / "run" / "curve.png").exists()
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert row["rollout_mode"] == "memory" and row["memory_size"] > 0


@pytest.mark.slow
def test_bench_explore_prints_json_last_line(tmp_path, monkeypatch) -> None:
    """A tiny bench: both arms run, curves and plot written, settings recorded."""
    monkeypatch.setenv("EMPO_GYM_CACHE", str(tmp_path / "cache"))
    config = tmp_path / "bench.yaml"
    config.write_text(
        "reader_steps: 20\ntrain_layouts: 1\ntasks_per_iter: 1\ngroup_size: 2\n"
        "eval_group: 2\nood_trials: 2\nood_layouts: 1\n"
    )
    res = runner.invoke(
        app,
        [
            "bench", "explore", "--seeds", "2", "--iterations", "2", "--eval-every", "1",
            "--config", str(config), "--out", str(tmp_path / "out"),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout.strip().splitlines()[-1])
    assert metrics["settings"]["group_size"] == 2 and metrics["settings"]["seeds"] == 2
    assert metrics["random_policy_success"] == pytest.approx(3**-5)
    for key in ("grpo_final_success", "empo_final_success", "grpo_iterations_to_threshold"):
        assert key in metrics
    assert (tmp_path / "out" / "explore.png").exists()
    assert (tmp_path / "out" / "explore.json").exists()


def test_run_of_a_learning_agent_prints_before_after_and_the_paired_difference(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from empo_gym.agents.registry import _AGENTS

    monkeypatch.setitem(_AGENTS, "learner", {"*": "tests.test_pipeline:GuessLearner"})
    res = _run(
        "run", "--agent", "learner", "--env", "guess", "--episodes", "8", "--out", str(tmp_path)
    )
    assert res.exit_code == 0, res.output
    assert (
        "untrained: success_rate=" in res.output and "trained:   success_rate=1.000" in res.output
    )
    assert "difference: +" in res.output and "paired over 8 episodes" in res.output
    assert len(list(tmp_path.glob("*.json"))) == 2
    res = _run("leaderboard", str(tmp_path), "--format", "markdown")
    assert "| learner (untrained) |" in res.output and "| learner |" in res.output
    res = _run("leaderboard", str(tmp_path), "--format", "json", "--agent", "learner")
    assert sorted(r["agent"] for r in json.loads(res.output)) == ["learner", "learner (untrained)"]


def test_plan_prints_a_memory_table_and_a_verdict() -> None:
    paper = str(Path(__file__).parent.parent / "baselines" / "grpo_webshop_paper.yaml")
    res = _run("plan", "--config", paper, "--gpus", "8", "--gpu-mem", "80")
    assert res.exit_code == 0, res.output
    assert "7.62 B params, fsdp2 on 8 x 80 GB" in res.output
    assert "activations (checkpointed)" in res.output and "fits: peak" in res.output
    tight = runner.invoke(app, ["plan", "--config", paper, "--gpus", "1", "--gpu-mem", "24"])
    assert tight.exit_code == 1 and "DOES NOT FIT" in tight.output
    bad = runner.invoke(app, ["plan", "--config", paper, "--gpus", "0"])
    assert bad.exit_code == 2 and "gpus=0; expected >= 1" in bad.output
