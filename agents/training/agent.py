"""The learning agents ``grpo`` and ``empo``: train with the trainer, then act with the policy.

``empo-gym run --agent empo --env webshop`` builds :class:`EMPOAgent`, calls :meth:`train`
(rollouts on the env's *train* split through :class:`~empo_gym.agents.llm.rollout.RolloutRunner`,
updates by :func:`empo_gym.agents.training.trainer.train`, a learning curve PNG next to the
metrics), and the harness then evaluates it on the test split through :meth:`act_batch` -- without
memory, at the evaluation temperature (0.4), as the paper evaluates.
"""

from __future__ import annotations

import datetime as _dt
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from empo_gym.agents.base import Agent
from empo_gym.agents.training.config import GRPOConfig, config_from_dict
from empo_gym.agents.training.process_group import ProcessGroup
from empo_gym.atomic_io import check_writable_dir
from empo_gym.run_metrics import METRICS_FILE, read_metrics
from empo_gym.yaml_config import read_yaml

if TYPE_CHECKING:  # the model stack loads only when a policy is built
    from empo_gym.agents.llm.transformers_policy import TransformersPolicy


class LearningAgent(Agent):
    """Common part of GRPO and EMPO²: config, policy, training envs, evaluation delegate.

    Args:
        config: A YAML path or a mapping in the trainer's config layout (``preset`` + fields).
        preset: ``quick`` (CPU, ~10 minutes, the default), ``paper`` or ``default``.
        **overrides: Config fields (``iterations=2``, ``model=...``, ``lr=...``).
    """

    learns: ClassVar[bool] = True
    algorithm: ClassVar[str] = "grpo"

    def __init__(
        self, config: str | dict[str, Any] | None = None, preset: str = "quick", **overrides: Any
    ):
        data: dict[str, Any] = {}
        if isinstance(config, str):
            data = read_yaml(config)
        elif isinstance(config, dict):
            data = dict(config)
        data.setdefault("preset", preset)
        data.update(overrides)
        self._data = data
        # validated now (unknown keys, bad values) -- before any model loads
        self.cfg: GRPOConfig = config_from_dict(dict(data), agent=self.algorithm)
        self.policy: TransformersPolicy | None = None
        self.run_dir: Path | None = None
        self.train_summary: dict[str, Any] = {}
        self._actor: Any = None
        self._prepared_for: tuple[str, str | None] | None = None
        self._closed_acting: dict[str, Any] | None = None  # the actor's config, kept at close
        self._run_lock: Any = None  # the output_dir's RunLock while prepared

    # -- identity --------------------------------------------------------------------------
    @property
    def model(self) -> str | None:
        """The base model name (the leaderboard row says it was trained: see ``config``)."""
        return self.cfg.model

    @property
    def eval_episodes(self) -> int | None:
        """The trainer config's ``eval_episodes`` (the paper: 20 ScienceWorld, 500 WebShop)."""
        return self.cfg.eval_episodes

    def config(self) -> dict[str, Any]:
        """Trainer settings, the training summary and the last evaluation's acting (sampling,
        parse counts), recorded in the leaderboard entry."""
        return {
            "trainer": self.cfg.to_dict(),
            "training": self.train_summary,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "acting": self._actor.config() if self._actor is not None else self._closed_acting,
        }

    # -- training --------------------------------------------------------------------------
    def prepare(self, env_name: str, task: str | None) -> None:
        """Settle the config for the env being run (env-specific presets, task, run directory),
        so the untrained policy acts as it will be trained: same prompts, limits, parsing."""
        from empo_gym.agents.training.run_lock import RunLock

        self._configure_for(env_name, task)
        self._prepared_for = (env_name, task)
        # only rank 0 of an `accelerate launch` run evaluates (the untrained policy too)
        self.is_main_process = ProcessGroup.launched().is_main
        check_writable_dir(self.cfg.output_dir, "output_dir")
        if self.is_main_process and self._run_lock is None:
            # held from before the untrained evaluation until close() (the trainer runs under
            # it): a second run on this output_dir is refused before it loads a model
            self._run_lock = RunLock(self.cfg.output_dir).acquire()
            metrics = Path(self.cfg.output_dir) / METRICS_FILE
            if metrics.exists():  # a resumed run: a damaged metrics file fails now, not later
                read_metrics(metrics)

    def _configure_for(self, env_name: str, task: str | None) -> None:
        """Re-validate the config for the env being run (env-specific presets and task)."""
        data = dict(self._data)
        data.setdefault("env", env_name)
        if task is not None:
            data["task"] = task
        if "output_dir" not in data:
            if ProcessGroup.launched().distributed:
                raise ValueError(
                    "output_dir is not set; under accelerate launch every process must share "
                    "one run directory: set output_dir in the --config YAML"
                )
            # + random hex: two runs started in the same second get two directories (not one
            # run refused by the other's run lock)
            stamp = _dt.datetime.now().strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)
            name = "-".join(x for x in (self.algorithm, env_name, task, stamp) if x)
            data["output_dir"] = str(Path("runs") / name)
        self.cfg = config_from_dict(data, agent=self.algorithm)

    def train(self, env_name: str, task: str | None) -> None:
        """Train on the env's train split; write metrics.jsonl, checkpoints and a curve PNG."""
        from empo_gym.agents.training.curves import plot_curves
        from empo_gym.agents.training.setup import build_training, make_policy, reference_model
        from empo_gym.agents.training.trainer import train as run_training

        if self._prepared_for != (env_name, task):
            self.prepare(env_name, task)
        cfg = self.cfg
        if self.policy is None:  # else: the untrained evaluation's policy, trained in place
            self.policy = make_policy(cfg)
        self._actor = None  # the trained evaluation starts with fresh episode state and counts
        setup = build_training(cfg)
        algorithm = setup.algorithm

        def progress(row: dict[str, Any]) -> None:
            print(
                f"[{cfg.agent}] iteration {row['iteration'] + 1}/{cfg.iterations}: "
                f"success {row['success']:.2f} return {row['return']:.3f} "
                f"modes {row['rollout_mode']}/{row['update_mode']} "
                f"({row['iter_s']:.0f} s)",
                flush=True,
            )

        try:
            result = run_training(
                cfg,
                self.policy,
                setup.rollout_fn,
                setup.tasks,
                algorithm=algorithm,
                ref_model=reference_model(cfg, self.policy),
                on_iteration=progress,
                run_lock=self._run_lock,
            )
        finally:
            setup.close()
        self.run_dir = Path(cfg.output_dir)
        self.is_main_process = result.main_process
        if not result.main_process:  # accelerate launch: rank 0 plots and evaluates
            return
        curve = plot_curves({cfg.agent: self.run_dir}, self.run_dir / "curve.png")
        hist = result.history
        self.train_summary = {
            "iterations": result.iterations,
            "first_success": hist[0]["success"] if hist else None,
            "last_success": hist[-1]["success"] if hist else None,
            "mean_iter_s": sum(h["iter_s"] for h in hist) / len(hist) if hist else None,
            "memory_share": (
                sum(h["memory_s"] for h in hist) / max(1e-9, sum(h["iter_s"] for h in hist))
                if hist
                else None
            ),
            "curve": str(curve),
            "metrics": str(self.run_dir / "metrics.jsonl"),
        }
        self.train_summary.update(algorithm.stats())  # EMPO²: memory size, tips written

    # -- acting (evaluation) ---------------------------------------------------------------
    def _ensure_actor(self) -> Any:
        if self._actor is None:
            from empo_gym.agents.llm.naive import NaiveLLMAgent

            if self.policy is None:
                from empo_gym.agents.training.setup import make_policy

                self.policy = make_policy(self.cfg)
            self._actor = NaiveLLMAgent(
                policy=self.policy,
                temperature=self.cfg.eval_temperature,
                max_new_tokens=self.cfg.max_response_tokens,
                seed=self.cfg.seed,
                max_history=self.cfg.prompt_history,
                max_context_tokens=self.cfg.max_context_tokens,
                prompt_style=self.cfg.prompt_style,
                action_format=self.cfg.action_format,
            )
        return self._actor

    def env_kwargs(self, env_name: str) -> dict[str, Any]:
        """Evaluate with the same episode limit the agent trained with."""
        self._ensure_actor().env_kwargs(env_name)
        return {"max_steps": self.cfg.max_steps}

    def reset(self, slot: int, observation: Any, info: dict[str, Any]) -> None:
        """Start an evaluation episode (no memory)."""
        self._ensure_actor().reset(slot, observation, info)

    def act(self, slot: int, observation: Any, info: dict[str, Any]) -> str:
        """One action (see :meth:`act_batch`)."""
        return self.act_batch([slot], [observation], [info])[0]

    def act_batch(self, slots, observations, infos) -> list[str]:  # type: ignore[override]
        """All active slots in one batched generation at the evaluation temperature."""
        return self._ensure_actor().act_batch(slots, observations, infos)

    def observe(self, slot, action, observation, reward, terminated, truncated, info) -> None:  # type: ignore[override]
        """Keep the episode history for the prompt."""
        self._ensure_actor().observe(slot, action, observation, reward, terminated, truncated, info)

    def close(self) -> None:
        """Release the model (the evaluation's acting summary stays in :meth:`config`)."""
        if self._actor is not None:
            self._closed_acting = self._actor.config()
        if self.policy is not None:
            self.policy.close()
        self.policy, self._actor = None, None
        if self._run_lock is not None:
            self._run_lock.release()
            self._run_lock = None


class GRPOAgent(LearningAgent):
    """Group-relative PPO on plain rollouts (the paper's baseline)."""

    name: ClassVar[str] = "grpo"
    algorithm: ClassVar[str] = "grpo"


class EMPOAgent(LearningAgent):
    """EMPO²: GRPO plus memory rollouts, policy-written tips, off-policy distillation and the
    novelty bonus; evaluated without memory."""

    name: ClassVar[str] = "empo"
    algorithm: ClassVar[str] = "empo"
