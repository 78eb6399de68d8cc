"""The transformers policy: a causal LM behind the :mod:`~empo_gym.agents.llm.policy` protocols.

:class:`TransformersPolicy` loads a model through
:func:`~empo_gym.agents.llm.models.load_model_and_tokenizer` (alias, directory, GGUF file or hub
id) or wraps a ready ``nn.Module``, renders chat templates, generates batched samples with
per-token log-probabilities, and re-scores responses through
:func:`empo_gym.agents.llm.logprobs.token_logprobs` for training. It satisfies
:class:`~empo_gym.agents.llm.policy.Policy`, :class:`~empo_gym.agents.llm.policy.TokenPolicy` and
:class:`~empo_gym.agents.llm.policy.TrainablePolicy`.

Prompts are token-exact: a prompt with a tip block is encoded as ``prefix + tips + suffix`` from
separately tokenised segments, so ``prompt_ids_no_tips == prefix + suffix`` holds exactly and the
trainer can strip the tips without string surgery.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import torch

from empo_gym.agents.llm.logprobs import token_logprobs
from empo_gym.agents.llm.lora import LoraSettings
from empo_gym.agents.llm.models import DEFAULT_MODEL, ModelSource, load_model_and_tokenizer
from empo_gym.agents.llm.policy import EncodedPrompt, Generation, Message, SamplingConfig

#: A token that ends a sentence: terminal punctuation, closing quotes/brackets, whitespace.
_SENTENCE_END = re.compile(r"\s*[.!?]+[\"')\]]*\s*")


class TransformersPolicy:
    """A causal LM policy on transformers: chat templates, batched sampling, log-probs.

    Args:
        model: Model name (``smollm2-135m-instruct``), local directory, ``.gguf`` file or hub id;
            or an already-built ``nn.Module`` (then ``tokenizer`` is required).
        tokenizer: A tokenizer with a chat template (only with a module ``model``).
        sampling: Sampling settings (defaults: temperature 1, top-p 1, 32 new tokens).
        device: ``"cpu"``, ``"cuda"``, ... or None/``"auto"`` (CUDA when present).
        dtype: ``"float32"``, ``"bfloat16"``, ... or None/``"auto"``.
        lora: Wrap the model with LoRA adapters (peft); a :class:`LoraSettings` or its dict.
        cache: Cache de-quantised GGUF weights as safetensors.
        max_batch_size: Largest batch of one forward pass (longer batches are chunked).
        prefix_cache: Prefill the prefix shared by a batch's prompts once and keep its KV cache
            between calls (exact: same log-probs as without it; dropped automatically when the
            weights change in place, e.g. by an optimizer step).
        num_threads: Set torch's intra-op threads (on a busy shared CPU, 1 can be faster).

    Attributes:
        model: The ``torch.nn.Module`` (a peft model when ``lora`` is set); trainers use it
            with :func:`empo_gym.agents.llm.logprobs.token_logprobs`.
        tokenizer: The tokenizer.
        pad_id: Token id used for padding.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | torch.nn.Module | None = None,
        *,
        tokenizer: Any = None,
        sampling: SamplingConfig | None = None,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        lora: LoraSettings | dict[str, Any] | None = None,
        cache: bool = True,
        max_batch_size: int = 64,
        prefix_cache: bool = True,
        num_threads: int | None = None,
    ) -> None:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        if isinstance(model, torch.nn.Module):
            if tokenizer is None:
                raise ValueError("a model given as nn.Module needs tokenizer=...; got None")
            self.model = model
            self.tokenizer = tokenizer
            self.name = getattr(getattr(model, "config", None), "name_or_path", "") or "custom"
            self.source: ModelSource | None = None
        else:
            self.model, self.tokenizer, self.source = load_model_and_tokenizer(
                model, device=device, dtype=dtype, cache=cache
            )
            self.name = str(model) if model is not None else DEFAULT_MODEL
        if lora is not None:
            self._apply_lora(lora if isinstance(lora, LoraSettings) else LoraSettings(**lora))
        self.sampling = sampling or SamplingConfig()
        self.max_batch_size = max_batch_size
        self.prefix_cache = prefix_cache
        self.prefix_min_tokens = 16
        self._prefix_store: tuple[list[int], list[tuple[torch.Tensor, torch.Tensor]]] = ([], [])
        self._prefix_version = -1
        self._calls = 0
        self._sentence_end_ids: frozenset[int] | None = None
        tok = self.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self.pad_id: int = int(tok.pad_token_id)
        self.eos_ids: set[int] = self._eos_ids()

    # ------------------------------------------------------------------ setup
    def _apply_lora(self, settings: LoraSettings) -> None:
        from peft import LoraConfig, PeftModel, get_peft_model

        if settings.path:
            self.model = PeftModel.from_pretrained(self.model, settings.path, is_trainable=True)
        else:
            config = LoraConfig(
                r=settings.r,
                lora_alpha=settings.alpha,
                lora_dropout=settings.dropout,
                target_modules=list(settings.target_modules),
                task_type="CAUSAL_LM",
            )
            self.model = get_peft_model(self.model, config)
        self.lora = settings

    def sentence_end_ids(self) -> frozenset[int]:
        """Tokens that end a sentence (``.``, ``!``, ``?``, optionally with closing quotes /
        brackets and whitespace): a one-sentence answer can stop there. Computed once.

        A decimal point ("3.5") is a "." token too, so a number can cut a sentence short;
        tips (EMPO²'s one sentence) accept that for not paying for tokens that are thrown away.
        """
        if self._sentence_end_ids is None:
            texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
            self._sentence_end_ids = frozenset(
                i for i, t in enumerate(texts) if _SENTENCE_END.fullmatch(t)
            )
        return self._sentence_end_ids

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(int(self.tokenizer.eos_token_id))
        gen_cfg = getattr(self.model, "generation_config", None)
        eos = getattr(gen_cfg, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif isinstance(eos, (list, tuple)):
            ids.update(int(e) for e in eos)
        return ids

    @property
    def device(self) -> torch.device:
        """Device of the model parameters."""
        return next(self.model.parameters()).device

    def config(self) -> dict[str, Any]:
        """Settings for leaderboard entries / logs."""
        return {
            "model": self.name,
            "source": self.source.kind if self.source else "module",
            "device": str(self.device),
            "dtype": str(next(self.model.parameters()).dtype).replace("torch.", ""),
            **asdict(self.sampling),
        }

    # -------------------------------------------------------------- encoding
    def render_chat(self, messages: Sequence[Message]) -> str:
        """The chat template applied to ``messages`` with the assistant turn opened."""
        return self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=False
        )

    def _tokenize(self, text: str) -> list[int]:
        if not text:
            return []
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_prompt(
        self, messages: Sequence[Message], tip_block: str | None = None
    ) -> EncodedPrompt:
        """Tokenise a chat prompt, optionally with ``tip_block`` appended to the last user message.

        The tip block is tokenised as its own segment so that removing its tokens yields
        exactly the tip-free prompt (``ids_no_tips``).

        Args:
            messages: The conversation (its last user message receives the tip block).
            tip_block: The rendered tip block (including any separator), or None.
        """
        messages = [dict(m) for m in messages]
        user_idx = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
        if user_idx is None:
            if tip_block:
                raise ValueError("cannot place tips: the conversation has no user message")
            ids = self._tokenize(self.render_chat(messages))
            return EncodedPrompt(ids=ids, ids_no_tips=list(ids), tip_span=None)
        # Tokenise around the tip slot even without tips, so that a prompt encoded without
        # tips is token-identical to ``ids_no_tips`` of the same prompt encoded with tips.
        marker = "\x00EMPO_TIP_SLOT\x00"
        messages[user_idx]["content"] = messages[user_idx]["content"] + marker
        rendered = self.render_chat(messages)
        if rendered.count(marker) != 1:
            raise ValueError("the chat template dropped or duplicated the user message content")
        prefix, suffix = rendered.split(marker)
        pre, post = self._tokenize(prefix), self._tokenize(suffix)
        if not tip_block:
            return EncodedPrompt(ids=pre + post, ids_no_tips=pre + post, tip_span=None)
        tips = self._tokenize(tip_block)
        return EncodedPrompt(
            ids=pre + tips + post, ids_no_tips=pre + post, tip_span=(len(pre), len(pre) + len(tips))
        )

    # ------------------------------------------------------------ generation
    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        sampling: SamplingConfig | None = None,
    ) -> list[Generation]:
        """Sample one response per conversation in one batched generation.

        Args:
            conversations: A list of chat-message lists.
            sampling: Override of the policy's sampling settings.
        """
        prompts = [self.encode_prompt(c).ids for c in conversations]
        return self.generate_ids(prompts, sampling)

    @torch.no_grad()
    def generate_ids(
        self,
        prompt_ids: Sequence[Sequence[int]],
        sampling: SamplingConfig | None = None,
        *,
        route_keys: Sequence[str | None] | None = None,
    ) -> list[Generation]:
        """Sample one response per prompt (token ids), batched with left padding.

        ``route_keys`` is accepted for the protocol and ignored (one local model).

        Log-probabilities are those of the temperature-scaled distribution (before top-p),
        which is what :meth:`logprobs` (and :func:`token_logprobs` at the same temperature)
        recompute. Rows that sample EOS leave the batch; a prefix shared by all prompts is
        prefilled once (see ``prefix_cache``).
        """
        cfg = sampling or self.sampling
        if not prompt_ids:
            return []
        for i, p in enumerate(prompt_ids):
            if len(p) == 0:
                raise ValueError(f"prompt {i} is empty; expected at least one token")
        generator = None
        if cfg.seed is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(cfg.seed + self._calls)
        self._calls += 1
        out: list[Generation] = []
        for start in range(0, len(prompt_ids), self.max_batch_size):
            chunk = prompt_ids[start : start + self.max_batch_size]
            out.extend(self._generate_chunk(chunk, cfg, generator))
        return out

    # Prompts of one batch usually share a long prefix (system prompt, task, action formats; a
    # whole group starts from the same state): its KV cache is computed once, kept between calls
    # and broadcast to every row, so prefill only pays for each row's own suffix.
    def _prefix_kv(self, prefix: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        from transformers import DynamicCache

        version = self._weights_version()
        if version != self._prefix_version:  # weights changed (a training step): stale KV
            self._prefix_store, self._prefix_version = ([], []), version
        cached_ids, cached_kv = self._prefix_store
        common = 0
        for a, b in zip(cached_ids, prefix, strict=False):
            if a != b:
                break
            common += 1
        if common == len(prefix) and cached_kv:
            return [(k[:, :, :common], v[:, :, :common]) for k, v in cached_kv]
        device = self.device
        cache = DynamicCache()
        start = 0
        if common >= self.prefix_min_tokens and cached_kv:
            for layer, (k, v) in enumerate(cached_kv):
                cache.update(k[:, :, :common], v[:, :, :common], layer)
            start = common
        rest = torch.tensor([prefix[start:]], dtype=torch.long, device=device)
        out = self.model(
            input_ids=rest,
            position_ids=torch.arange(start, len(prefix), device=device).unsqueeze(0),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        kv = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        self._prefix_store = (list(prefix), kv)
        return kv

    def _weights_version(self) -> int:
        # In-place updates (optimizer steps, load_state_dict) bump each tensor's version counter.
        return sum(p._version for p in self.model.parameters())

    def sampling_state(self) -> dict[str, int]:
        """What makes the next seeded generation reproducible (saved in training checkpoints).

        Part of :class:`~empo_gym.agents.llm.policy.TrainablePolicy`.
        """
        return {"calls": self._calls}

    def load_sampling_state(self, state: dict[str, int]) -> None:
        """Restore :meth:`sampling_state` (a resumed run then samples like an uninterrupted one).

        Example:
            >>> p = TransformersPolicy.__new__(TransformersPolicy)
            >>> p.load_sampling_state({"calls": 3}); p.sampling_state()
            {'calls': 3}
        """
        self._calls = int(state["calls"])

    def clear_prefix_cache(self) -> None:
        """Forget the stored prefix KV cache (the trainer calls it after every weight update).

        Part of :class:`~empo_gym.agents.llm.policy.TrainablePolicy`.
        """
        self._prefix_store = ([], [])

    def _sample(
        self, logits: torch.Tensor, cfg: SamplingConfig, generator: torch.Generator | None
    ) -> torch.Tensor:
        if cfg.greedy:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits / cfg.temperature, dim=-1)
        if cfg.top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            # Keep the smallest set of tokens whose mass reaches top_p (always the top token).
            drop = sorted_p.cumsum(dim=-1) - sorted_p >= cfg.top_p
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    def _generate_chunk(
        self,
        prompt_ids: Sequence[Sequence[int]],
        cfg: SamplingConfig,
        generator: torch.Generator | None = None,
    ) -> list[Generation]:
        from transformers import DynamicCache

        device = self.device
        batch = len(prompt_ids)
        prompts = [list(p) for p in prompt_ids]
        shared = min(len(p) for p in prompts) - 1  # every row keeps >= 1 own token
        first = prompts[0]
        for p in prompts[1:]:
            n = 0
            for a, b in zip(first[:shared], p, strict=False):
                if a != b:
                    break
                n += 1
            shared = min(shared, n)
        cache = DynamicCache()
        if self.prefix_cache and shared >= self.prefix_min_tokens:
            for layer, (k, v) in enumerate(self._prefix_kv(first[:shared])):
                cache.update(
                    k.expand(batch, -1, -1, -1).contiguous(),
                    v.expand(batch, -1, -1, -1).contiguous(),
                    layer,
                )
        else:
            shared = 0
        suffixes = [p[shared:] for p in prompts]
        width = max(len(x) for x in suffixes)
        block = torch.full((batch, width), self.pad_id, dtype=torch.long)
        smask = torch.zeros((batch, width), dtype=torch.long)
        for i, x in enumerate(suffixes):
            block[i, width - len(x) :] = torch.tensor(x, dtype=torch.long)
            smask[i, width - len(x) :] = 1
        mask = torch.cat([torch.ones((batch, shared), dtype=torch.long), smask], dim=1).to(device)
        positions = (shared + smask.cumsum(-1) - 1).clamp(min=0).to(device)
        out = self.model(
            input_ids=block.to(device),
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        logits = out.logits[:, -1].float()
        next_pos = positions[:, -1] + 1
        alive = list(range(batch))  # original row of each live batch row
        responses: list[list[int]] = [[] for _ in range(batch)]
        logps: list[list[float]] = [[] for _ in range(batch)]
        finish = ["length"] * batch
        temp = cfg.logprob_temperature
        for step in range(cfg.max_new_tokens):
            tokens = self._sample(logits, cfg, generator)
            chosen = torch.log_softmax(logits / temp, dim=-1).gather(-1, tokens.unsqueeze(-1))
            keep: list[int] = []
            for row, (orig, tok, lp) in enumerate(
                zip(alive, tokens.tolist(), chosen.squeeze(-1).tolist(), strict=True)
            ):
                responses[orig].append(tok)
                logps[orig].append(lp)
                if tok in self.eos_ids or tok in cfg.stop_token_ids:
                    finish[orig] = "stop"
                else:
                    keep.append(row)
            if not keep or step + 1 == cfg.max_new_tokens:
                break
            if len(keep) < len(alive):  # finished rows leave the batch
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, next_pos, tokens = mask[index], next_pos[index], tokens[index]
                alive = [alive[r] for r in keep]
            ones = torch.ones((len(alive), 1), dtype=mask.dtype, device=device)
            mask = torch.cat([mask, ones], dim=1)
            out = self.model(
                input_ids=tokens.unsqueeze(-1),
                attention_mask=mask,
                position_ids=next_pos.unsqueeze(-1),
                past_key_values=cache,
                use_cache=True,
            )
            logits = out.logits[:, -1].float()
            next_pos = next_pos + 1
        return [
            Generation(
                prompt_ids=prompts[i],
                response_ids=responses[i],
                logprobs=logps[i],
                text=self.tokenizer.decode(responses[i], skip_special_tokens=True),
                finish_reason=finish[i],
            )
            for i in range(batch)
        ]

    # ---------------------------------------------------------------- scoring
    @torch.no_grad()
    def logprobs(
        self,
        prompt_ids: Sequence[Sequence[int]],
        response_ids: Sequence[Sequence[int]],
        *,
        temperature: float | None = None,
    ) -> list[list[float]]:
        """Per-token log-probabilities of responses under prompts (no gradients).

        Args:
            prompt_ids: Prompts as token ids (with or without tips).
            response_ids: One response per prompt.
            temperature: Defaults to the sampling temperature (1.0 when greedy).
        """
        temp = temperature if temperature is not None else self.sampling.logprob_temperature
        out: list[list[float]] = []
        for start in range(0, len(prompt_ids), self.max_batch_size):
            p = prompt_ids[start : start + self.max_batch_size]
            r = response_ids[start : start + self.max_batch_size]
            logp, _ = token_logprobs(self.model, p, r, self.pad_id, temperature=temp)
            out.extend([float(x) for x in logp[i, : len(r[i])].cpu()] for i in range(len(r)))
        return out

    def close(self) -> None:
        """Drop the model (frees memory)."""
        self.model = None  # type: ignore[assignment]
