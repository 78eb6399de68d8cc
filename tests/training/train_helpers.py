"""Helpers of the training tests: a tiny random Llama and hand-made trajectories."""

from __future__ import annotations

import os

import torch

from empo_gym.agents.llm.trajectory import Trajectory, Turn
from empo_gym.agents.training.empo import EMPO, EMPOConfig
from tests.tiny_llama import tiny_llama

VOCAB = 128
BANDIT_VOCAB = 16
PAD = 0


def make_tiny_model(seed: int = 0, vocab: int = VOCAB) -> torch.nn.Module:
    """A randomly initialised 2-layer Llama (hidden 32, vocab 128): a few ms per forward."""
    return tiny_llama(vocab, seed, bos_token_id=1, eos_token_id=2)


def subprocess_env(**extra: str) -> dict[str, str]:
    """This process's environment for a training subprocess: one thread per library, offline,
    and no variables of an enclosing launcher (they would make workers join the wrong group)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ACCELERATE_", "TORCHELASTIC_"))
        and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    }
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
        HF_HUB_OFFLINE="1",
        **extra,
    )
    return env


@torch.no_grad()
def score(model: torch.nn.Module, prompt: list[int], response: list[int]) -> list[float]:
    """Log-probabilities of ``response`` after ``prompt`` under ``model``."""
    from empo_gym.agents.llm.logprobs import token_logprobs

    logp, _ = token_logprobs(model, [prompt], [response], PAD)
    return logp[0, : len(response)].tolist()


def make_turn(
    model: torch.nn.Module | None,
    prompt: list[int],
    response: list[int],
    *,
    prompt_no_tips: list[int] | None = None,
    reward: float = 0.0,
    intrinsic: float = 0.0,
    logprobs: list[float] | None = None,
) -> Turn:
    """A turn whose old log-probs are the model's under the sampling prompt (or given)."""
    if logprobs is None:
        logprobs = score(model, prompt, response) if model is not None else [-0.5] * len(response)
    return Turn(
        prompt_ids=list(prompt),
        prompt_ids_no_tips=list(prompt if prompt_no_tips is None else prompt_no_tips),
        response_ids=list(response),
        logprobs=logprobs,
        reward=reward,
        intrinsic_reward=intrinsic,
        used_tips=prompt_no_tips is not None,
    )


def make_traj(group: str, member: int, turns: list[Turn]) -> Trajectory:
    """A trajectory of ``turns``."""
    return Trajectory(group_id=group, member=member, turns=turns)


# --- a one-step bandit "environment" for trainer tests ---------------------------------------
TARGET = 7
"""The one rewarded action token of the bandit."""
TIP_TOKENS = [12, 13]
"""Token ids of the (fake) tip block inserted into memory-mode prompts."""


class BanditPolicy:
    """A ``TrainablePolicy`` over a tiny model with a small vocabulary (the trainer's protocol,
    no more: :func:`bandit_rollout` samples from ``model`` directly)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.pad_id = PAD

    def sampling_state(self) -> dict[str, int]:
        """Nothing of its own: it samples from the global torch RNG, which checkpoints restore."""
        return {}

    def load_sampling_state(self, state: dict[str, int]) -> None:
        """Nothing to restore (see :meth:`sampling_state`)."""

    def clear_prefix_cache(self) -> None:
        """It caches nothing between calls."""


def bandit_rollout(
    policy: BanditPolicy, tasks: list[int], group_size: int, use_memory: bool
) -> list[Trajectory]:
    """Sample one token per episode; reward 1 when it is :data:`TARGET` (global torch RNG)."""
    trajs = []
    for ti, task in enumerate(tasks):
        plain = [1, 3 + task % 2, 5]
        prompt = [1, *TIP_TOKENS, 3 + task % 2, 5] if use_memory else plain
        logits = policy.model(input_ids=torch.tensor([prompt] * group_size)).logits[:, -1]
        logp_all = torch.log_softmax(logits.float(), dim=-1)  # [G, V]
        tokens = torch.multinomial(logp_all.exp(), 1).squeeze(-1)  # [G]
        for m in range(group_size):
            tok = int(tokens[m])
            reward = 1.0 if tok == TARGET else 0.0
            turn = Turn(
                prompt_ids=prompt,
                prompt_ids_no_tips=plain,
                response_ids=[tok],
                logprobs=[float(logp_all[m, tok])],
                reward=reward,
                used_tips=use_memory,
            )
            trajs.append(
                Trajectory(
                    f"t{ti}",
                    m,
                    [turn],
                    score=100 * reward,
                    success=bool(reward),
                    memory_mode=use_memory,
                )
            )
    return trajs


class ListMemory(EMPO):
    """EMPO² with a fake memory side: the real mode draws; one entry per trajectory, novelty
    1/(n+1) per action."""

    def __init__(self, cfg: EMPOConfig) -> None:
        super().__init__(cfg)
        self.entries: list[list[int]] = []

    def after_rollouts(self, policy, trajectories, rollout_mode) -> None:
        for traj in trajectories:
            for turn in traj.turns:
                n = sum(e == [*turn.response_ids] for e in self.entries)
                turn.intrinsic_reward = 1.0 / (n + 1) if rollout_mode.use_memory else 0.0
                self.entries.append(list(turn.response_ids))

    def size(self) -> int:
        return len(self.entries)

    def save(self, directory) -> None:
        import json

        (directory / "memory.json").write_text(json.dumps(self.entries))

    def load(self, directory) -> None:
        import json

        self.entries = json.loads((directory / "memory.json").read_text())
