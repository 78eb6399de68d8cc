"""One policy update of GRPO / EMPO² from finished trajectory groups.

Reads like the objective: returns -> group-relative advantages -> broadcast to every response
token of every turn -> low-probability turn masking -> clipped token-level loss (+ k3 KL) ->
gradient accumulation over micro-batches -> grad-norm clip -> AdamW step. The update mode only
decides which prompt the numerator is scored under (:mod:`empo_gym.agents.training.algorithm`).

Each turn of a trajectory is one row: ``prompt ids + response ids``, scored in one forward pass
by :func:`empo_gym.agents.llm.logprobs.token_logprobs`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from empo_gym.agents.llm.logprobs import shareable_prefix_len, token_logprobs
from empo_gym.agents.llm.lora import is_lora
from empo_gym.agents.llm.trajectory import Trajectory
from empo_gym.agents.training.algorithm import UpdateMode, denominator_prompt, numerator_prompt
from empo_gym.agents.training.config import GRPOConfig
from empo_gym.agents.training.engine import Engine
from empo_gym.agents.training.losses import (
    clipped_surrogate,
    group_advantages,
    kl_penalty,
    low_prob_turn_mask,
    masked_sum,
)


def trajectory_return(traj: Trajectory, intrinsic_scale: float = 0.0) -> float:
    """The return GRPO normalises: env rewards plus the scaled intrinsic rewards.

    ``intrinsic_scale`` is the config's ``intrinsic_return_scale``: 0 for GRPO; EMPO²'s novelty
    bonus (:mod:`empo_gym.agents.training.empo`) times ``intrinsic_scale`` when it is on.

    The reference code adds each turn's intrinsic reward on that turn's last token; with an
    outcome (trajectory-level) advantage that equals adding their sum to the return.

    Example:
        >>> from empo_gym.agents.llm.trajectory import Turn
        >>> t = Trajectory("g", 0, [Turn([1], [1], [2], [-0.5], reward=1.0, intrinsic_reward=0.5)])
        >>> trajectory_return(t), trajectory_return(t, intrinsic_scale=2.0)
        (1.0, 2.0)
    """
    bonus = sum(t.intrinsic_reward for t in traj.turns) if intrinsic_scale else 0.0
    return traj.episode_return + intrinsic_scale * bonus


@dataclass
class TurnBatch:
    """All turns of an iteration as rows ready for scoring.

    Attributes:
        prompt_ids: Numerator prompt of each row (depends on the update mode).
        response_ids: Response of each row.
        old_logp: Sampling-policy log-probabilities, [N, R] (0 on padding).
        response_mask: 1 on real response tokens, [N, R].
        mask: ``response_mask`` after low-probability turn masking, [N, R].
        advantages: Advantage of each row (its trajectory's), [N].
        returns: Return of each trajectory (in group order), [T].
        traj_index: Trajectory (position in ``returns``) of each row, [N].
    """

    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    old_logp: torch.Tensor
    response_mask: torch.Tensor
    mask: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    traj_index: torch.Tensor

    def __len__(self) -> int:
        return len(self.prompt_ids)

    @property
    def masked_frac(self) -> float:
        """Share of turns (with a response) removed by low-probability masking."""
        has_tokens = self.response_mask.sum(-1) > 0
        removed = has_tokens & (self.mask.sum(-1) == 0)
        return float(removed.sum()) / max(int(has_tokens.sum()), 1)


def _flatten(groups: Sequence[Sequence[Trajectory]]) -> list[Trajectory]:
    return [traj for group in groups for traj in group]


def build_turn_batch(
    groups: Sequence[Sequence[Trajectory]],
    mode: UpdateMode,
    cfg: GRPOConfig,
    old_logprobs: Sequence[Sequence[float]] | None = None,
) -> TurnBatch:
    """Rows of every turn of every trajectory, with advantages, old log-probs and masks.

    Args:
        groups: Trajectory groups (one group = the N rollouts of one task instance).
        mode: Update mode; picks the numerator prompt of each row.
        cfg: Trainer config (``adv_eps``, low-probability masking, intrinsic reward settings).
        old_logprobs: One list per turn (groups -> trajectories -> turns order) replacing
            ``Turn.logprobs`` (e.g. recomputed by :func:`recompute_old_logprobs`).

    Raises:
        ValueError: A turn's log-probabilities do not match its response length.
    """
    trajs = _flatten(groups)
    scale = cfg.intrinsic_return_scale
    returns = torch.tensor([trajectory_return(t, scale) for t in trajs], dtype=torch.float32)
    group_ids = [gi for gi, group in enumerate(groups) for _ in group]
    traj_adv = group_advantages(returns, group_ids, eps=cfg.adv_eps)  # [T]

    prompts: list[list[int]] = []
    responses: list[list[int]] = []
    olds: list[Sequence[float]] = []
    owner: list[int] = []
    k = 0
    for ti, traj in enumerate(trajs):
        for turn in traj.turns:
            old = turn.logprobs if old_logprobs is None else old_logprobs[k]
            k += 1
            if len(old) != len(turn.response_ids):
                raise ValueError(
                    f"trajectory {traj.group_id}/{traj.member}: turn with "
                    f"{len(turn.response_ids)} response tokens has {len(old)} old log-probs; "
                    "expected one per token"
                )
            prompts.append(numerator_prompt(turn, mode))
            responses.append(list(turn.response_ids))
            olds.append(old)
            owner.append(ti)
    if old_logprobs is not None and k != len(old_logprobs):
        raise ValueError(f"old_logprobs has {len(old_logprobs)} entries; expected {k} (one/turn)")

    n, r = len(responses), max((len(x) for x in responses), default=0)
    old_logp = torch.zeros((n, max(r, 1)), dtype=torch.float32)  # [N, R]
    response_mask = torch.zeros_like(old_logp)  # [N, R]
    for i, old in enumerate(olds):
        old_logp[i, : len(old)] = torch.tensor(list(old), dtype=torch.float32)
        response_mask[i, : len(old)] = 1.0
    mask = response_mask
    if cfg.low_prob_masking:
        mask = low_prob_turn_mask(old_logp, response_mask, cfg.low_prob_threshold)
    traj_index = torch.tensor(owner, dtype=torch.long)
    return TurnBatch(
        prompt_ids=prompts,
        response_ids=responses,
        old_logp=old_logp,
        response_mask=response_mask,
        mask=mask,
        advantages=traj_adv[traj_index] if n else torch.zeros(0),  # [N]
        returns=returns,
        traj_index=traj_index,
    )


@torch.no_grad()
def recompute_old_logprobs(
    model: torch.nn.Module,
    groups: Sequence[Sequence[Trajectory]],
    pad_id: int,
    temperature: float = 1.0,
    micro_batch_size: int = 8,
) -> list[list[float]]:
    """Score every turn's response under its sampling prompt with ``model`` (no gradient).

    Use when the sampler's numbers differ from the trainer's (e.g. a quantised sampler), so the
    on-policy ratio starts at exactly 1. Order: groups -> trajectories -> turns.
    """
    turns = [turn for traj in _flatten(groups) for turn in traj.turns]
    out: list[list[float]] = []
    for start in range(0, len(turns), micro_batch_size):
        chunk = turns[start : start + micro_batch_size]
        prompts = [denominator_prompt(t, UpdateMode.ON_POLICY) for t in chunk]
        logp, _ = token_logprobs(
            model, prompts, [t.response_ids for t in chunk], pad_id, temperature=temperature
        )
        out.extend(logp[i, : len(t.response_ids)].tolist() for i, t in enumerate(chunk))
    return out


@contextlib.contextmanager
def _reference(model: torch.nn.Module, ref_model: torch.nn.Module | None) -> Iterator[Any]:
    """Yield the reference policy: ``ref_model``, or the LoRA model with its adapter disabled."""
    if ref_model is not None:
        yield ref_model
    elif is_lora(model):
        with model.disable_adapter():
            yield model
    else:
        raise ValueError(
            "kl_coef > 0 needs a reference policy: pass ref_model= (a frozen copy of the initial "
            "model) or train a LoRA adapter (lora: true), whose base model serves as reference"
        )


def policy_update(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    groups: Sequence[Sequence[Trajectory]],
    mode: UpdateMode,
    cfg: GRPOConfig,
    pad_id: int,
    *,
    old_logprobs: Sequence[Sequence[float]] | None = None,
    ref_model: torch.nn.Module | None = None,
    engine: Engine | None = None,
) -> dict[str, float]:
    """Run the GRPO / EMPO² update of one iteration and return its metrics.

    ``ppo_epochs`` passes; each splits the unmasked turns into ``mini_batches`` mini-batches
    (one AdamW step each, after clipping the gradient norm to ``max_grad_norm``); a mini-batch is
    processed in micro-batches of ``micro_batch_size`` turns whose losses are normalised by the
    mini-batch's token count, so accumulation gives the full-batch token-mean gradient. Turns
    with advantage 0 (a group of equal returns) carry no gradient when ``kl_coef == 0`` and are
    not forwarded: the per-token statistics (entropy, clip fraction, ratios) cover the
    forwarded tokens, ``tokens`` counts every unmasked token.

    Args:
        model: The policy (causal LM; a PEFT model when training LoRA).
        optimizer: Its AdamW optimizer.
        groups: Trajectory groups of the iteration.
        mode: The update mode (numerator prompt with or without tips).
        cfg: Trainer config.
        pad_id: Padding token id.
        old_logprobs: Optional per-turn replacement of ``Turn.logprobs`` (the denominator).
        ref_model: Frozen reference policy for the KL term (``kl_coef > 0``).
        engine: How this process trains (:class:`~empo_gym.agents.training.engine.Engine`:
            gradient sync, FSDP2's balanced micro-batches, autocast); None = one process.

    Returns:
        Floats: ``loss``, ``pg_loss``, ``kl``, ``entropy``, ``clip_frac``, ``dual_clip_frac``,
        ``ratio_mean``, ``ratio_max``, ``approx_kl``, ``grad_norm``, ``masked_frac``, ``turns``,
        ``tokens``, ``steps``, ``skipped_steps``, ``return_mean``, ``adv_abs_mean``,
        ``update_s``, ``update_tok_s`` (response tokens per second), ``update_forward_tokens``
        (prompt + response tokens of the forwarded turns), ``update_shared_prefix_tokens`` (of
        those, the ones a shared prompt prefix saved from being computed per row) and
        ``zero_adv_s`` (seconds spent on turns with advantage 0, forwarded only for the KL term
        or with ``skip_zero_advantage=False``).
    """
    t0 = time.perf_counter()
    batch = build_turn_batch(groups, mode, cfg, old_logprobs)
    keep = [i for i in range(len(batch)) if batch.mask[i].sum() > 0]  # masked turns add nothing
    params = [p for p in model.parameters() if p.requires_grad]
    engine = engine or Engine()
    distributed = engine.distributed
    was_training = model.training
    model.train()

    sums: dict[str, float] = dict.fromkeys(
        ("loss", "pg_loss", "kl", "entropy", "clip", "dual", "ratio", "approx_kl"), 0.0
    )
    ratio_max, tokens_seen, steps, skipped, grad_norms = 0.0, 0, 0, 0, []
    forward_tokens, shared_tokens, zero_adv_s = 0, 0, 0.0
    for _ in range(cfg.ppo_epochs):
        order = keep
        if cfg.ppo_epochs > 1 or cfg.mini_batches > 1:
            order = [keep[i] for i in torch.randperm(len(keep)).tolist()]
        for mini in _split(order, cfg.mini_batches):
            n_tok = float(batch.mask[mini].sum())
            normalizer = n_tok
            if distributed:
                # Both backends average the gradients over processes: normalise by (all ranks'
                # tokens) / processes so the result is the token mean of the global
                # mini-batch, whatever each rank's share of the tokens.
                normalizer = engine.all_reduce_sum(n_tok) / engine.world_size
            if n_tok == 0 and not distributed:
                continue  # (with several processes every rank must join each gradient sync)
            # Rows with advantage 0, or fully masked (low-probability masking), add no policy
            # gradient (only KL): skip their forward pass but keep their tokens in the
            # normaliser, so the loss is unchanged. On CPU this is most of the update's cost.
            useful = [i for i in mini if batch.advantages[i] != 0 and batch.mask[i].any()]
            useful_set = set(useful)
            idle = [i for i in mini if i not in useful_set]
            if cfg.kl_coef == 0 and cfg.skip_zero_advantage:
                idle = []
            if not useful and not idle and not distributed:
                continue
            # Zero-advantage rows go in micro-batches of their own so their cost is measured
            # (``zero_adv_s``). Prompts in token order: neighbours share the longest prefixes
            # (token_logprobs runs a shared prefix once) and have similar lengths (less
            # padding); the summed gradient is the same in any order.
            # FSDP2: every rank runs as many forward/backward passes as the busiest one (agreed
            # before any pass: the count's all-reduce must not meet another rank's all-gather)
            passes = sum(math.ceil(len(part) / cfg.micro_batch_size) for part in (useful, idle))
            padding = engine.balanced_passes(passes) - passes
            for part in (useful, idle):
                part.sort(key=lambda i: (batch.prompt_ids[i], len(batch.response_ids[i])))
                t_part = time.perf_counter()
                for start in range(0, len(part), cfg.micro_batch_size):
                    rows = part[start : start + cfg.micro_batch_size]
                    out = _micro_step(
                        model, batch, rows, cfg, pad_id, normalizer, ref_model, engine
                    )
                    for key in sums:
                        sums[key] += out[key]
                    ratio_max = max(ratio_max, out["ratio_max"])
                    tokens_seen += int(out["tokens"])
                    forward_tokens += int(out["forward_tokens"])
                    shared_tokens += int(out["shared_tokens"])
                if part is idle and part:
                    zero_adv_s += time.perf_counter() - t_part
            for _ in range(padding):
                _padding_step(model, cfg, pad_id, ref_model, engine)
            engine.sync_gradients(params)
            norm = engine.clip_grad_norm(params, cfg.max_grad_norm)
            if math.isfinite(norm):
                optimizer.step()
                grad_norms.append(norm)
            else:  # never let one NaN/inf batch poison the weights
                skipped += 1
            optimizer.zero_grad(set_to_none=True)
            steps += 1
    if not was_training:
        model.eval()

    elapsed = time.perf_counter() - t0
    tok = max(tokens_seen, 1)
    return {
        "loss": sums["loss"] / max(steps, 1),  # mean over optimizer steps of the step's loss
        "pg_loss": sums["pg_loss"] / max(steps, 1),
        "kl": sums["kl"] / tok,
        "entropy": sums["entropy"] / tok,
        "clip_frac": sums["clip"] / tok,
        "dual_clip_frac": sums["dual"] / tok,
        "ratio_mean": sums["ratio"] / tok if tokens_seen else 1.0,
        "ratio_max": ratio_max,
        "approx_kl": sums["approx_kl"] / tok,
        "grad_norm": sum(grad_norms) / len(grad_norms) if grad_norms else 0.0,
        "masked_frac": batch.masked_frac,
        "turns": float(len(batch)),
        "tokens": float(batch.mask.sum()),
        "steps": float(steps),
        "skipped_steps": float(skipped),
        "return_mean": float(batch.returns.mean()) if batch.returns.numel() else 0.0,
        "adv_abs_mean": float(batch.advantages.abs().mean()) if len(batch) else 0.0,
        "update_s": elapsed,
        "update_tok_s": tokens_seen / elapsed if elapsed > 0 else 0.0,
        "update_forward_tokens": float(forward_tokens),
        "update_shared_prefix_tokens": float(shared_tokens),
        "zero_adv_s": zero_adv_s,
    }


def _split(items: list[int], parts: int) -> list[list[int]]:
    """Exactly ``parts`` contiguous chunks (some possibly empty), sizes differing by at most 1.

    Example:
        >>> _split([1, 2, 3, 4, 5], 2), _split([1], 3)
        ([[1, 2, 3], [4, 5]], [[1], [], []])
    """
    base, extra = divmod(len(items), parts)
    out, start = [], 0
    for k in range(parts):
        end = start + base + (1 if k < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def _micro_step(
    model: torch.nn.Module,
    batch: TurnBatch,
    rows: list[int],
    cfg: GRPOConfig,
    pad_id: int,
    normalizer: float,
    ref_model: torch.nn.Module | None,
    engine: Engine,
) -> dict[str, float]:
    """Forward + backward of one micro-batch; returns token-weighted sums of its statistics."""
    prompts = [batch.prompt_ids[i] for i in rows]
    responses = [batch.response_ids[i] for i in rows]
    share = engine.share_prefix
    with engine.autocast():
        logp, _ = token_logprobs(
            model, prompts, responses, pad_id, temperature=cfg.temperature, share_prefix=share
        )
    shared = shareable_prefix_len(model, prompts) if share else 0  # what ran once
    device = logp.device
    width = logp.shape[1]  # R of this micro-batch
    old = batch.old_logp[rows, :width].to(device)  # [b, R]
    mask = batch.mask[rows, :width].to(device)  # [b, R]
    adv = batch.advantages[rows].to(device)  # [b]

    pg_loss, stats = clipped_surrogate(
        logp, old, adv, mask, cfg.clip_low, cfg.clip_high, cfg.dual_clip, normalizer=normalizer
    )
    loss = pg_loss
    kl_sum = 0.0
    if cfg.kl_coef > 0:
        ref_logp = _reference_logprobs(model, ref_model, prompts, responses, pad_id, cfg, engine)
        kl_tok = kl_penalty(logp, ref_logp.to(device))  # [b, R]
        loss = loss + cfg.kl_coef * masked_sum(kl_tok, mask) / normalizer
        kl_sum = float(masked_sum(kl_tok.detach(), mask))
    loss.backward()
    n = stats.tokens
    return {
        "loss": float(loss.detach()),
        "pg_loss": float(pg_loss.detach()),
        "kl": kl_sum,
        "entropy": float(masked_sum(-logp.detach(), mask)),
        "clip": stats.clip_frac * n,
        "dual": stats.dual_clip_frac * n,
        "ratio": stats.ratio_mean * n,
        "approx_kl": stats.approx_kl * n,
        "ratio_max": stats.ratio_max,
        "tokens": float(n),
        "forward_tokens": float(
            sum(len(p) + len(r) for p, r in zip(prompts, responses, strict=True))
        ),
        "shared_tokens": float(shared * (len(rows) - 1)),  # computed once instead of per row
    }


def _reference_logprobs(
    model: torch.nn.Module,
    ref_model: torch.nn.Module | None,
    prompts: list[list[int]],
    responses: list[list[int]],
    pad_id: int,
    cfg: GRPOConfig,
    engine: Engine,
) -> torch.Tensor:
    """Log-probabilities of the responses under the frozen reference policy, [b, R]."""
    with torch.no_grad(), _reference(model, ref_model) as ref, engine.autocast():
        logp, _ = token_logprobs(
            ref,
            prompts,
            responses,
            pad_id,
            temperature=cfg.temperature,
            share_prefix=engine.share_prefix,
        )
    return logp


def _padding_step(
    model: torch.nn.Module,
    cfg: GRPOConfig,
    pad_id: int,
    ref_model: torch.nn.Module | None,
    engine: Engine,
) -> None:
    """A zero-weight micro-batch (one pad-token row): the same forward passes (policy, and the
    reference with KL) and backward as a real one, so FSDP2's collectives line up across ranks;
    its gradient is exactly 0."""
    prompts, responses = [[pad_id]], [[pad_id]]
    with engine.autocast():
        logp, _ = token_logprobs(
            model, prompts, responses, pad_id, temperature=cfg.temperature, share_prefix=False
        )
    loss = logp.sum() * 0.0
    if cfg.kl_coef > 0:
        ref_logp = _reference_logprobs(model, ref_model, prompts, responses, pad_id, cfg, engine)
        loss = loss + (logp - ref_logp).sum() * 0.0
    loss.backward()


def make_optimizer(model: torch.nn.Module, cfg: GRPOConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters with the config's settings.

    Example:
        >>> opt = make_optimizer(torch.nn.Linear(2, 2), GRPOConfig(lr=1e-3))
        >>> opt.param_groups[0]["lr"]
        0.001
    """
    return torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=cfg.lr,
        betas=cfg.adam_betas,
        eps=cfg.adam_eps,
        weight_decay=cfg.weight_decay,
    )
