"""A small policy for the exploration bench: a word-level Llama taught on the Doors env's text.

EMPO²'s tips only matter to a policy that reads them. A randomly initialised model ignores its
context (its off-policy ratios pi(a|s) / pi(a|s,tips) stay at 1), and SmolLM2 is too slow to
train over many seeds on a CPU. So the exploration bench uses a tiny model taught, by
supervised learning on prompts the real prompt builder renders from Doors states (tip blocks
included), one generic skill and nothing about any layout's solution:

* **acting**: answer with one admissible action; with no tips, choose uniformly among them (so
  the taught policy starts exactly as exploration-poor as a random one); when the tip block
  says to avoid one of the doors, avoid it.

The targets never depend on which door is safe, so what the model later knows about a layout's
safe doors it has learned by reinforcement. Tips come from :class:`ReflectionTipWriter`, the
rule ``Avoid NAME_door in the ROOM.`` (or ``The NAME door in the ROOM leads to the
treasure.``) about an episode's last step: writing tips was not taught.

**Measured** (held-out situations, :func:`reader_report`, recorded in ``bench explore``'s
JSON): every greedy answer admissible; where tips rule doors out, 98.6 % of sampled answers avoid
them, against 49.9 % for a tip-blind policy. What made it learn: a curriculum that starts on
short prompts (the admissible actions and one or two memories: a memory is one of a few dozen
tokens there, not one of hundreds), a learning rate of 1e-3 rather than 3e-3 to 5e-3, batches
of 64 and width 128. Smaller or faster-taught variants stayed at the tip-blind optimum (or, with
a distinct name per door, copied door names out of the tips), among them tips naming rooms
the model had to match and a 2-layer width-64 model taught 2000 steps at 5e-3.

Teaching takes about 7 minutes on two CPU cores and is cached on disk by its settings
(:func:`reader_policy`).

Example:
    >>> tip = reflection("armory", "red", success=False)
    >>> tip
    'Avoid red_door in the armory.'
    >>> teacher_choices(["open red door", "open blue door"], [tip])
    ['open blue door']
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from empo_gym.atomic_io import atomic_dir
from empo_gym.doors import FAMILIES, door_action, make_layout, room_text
from empo_gym.memory.episode import Episode
from empo_gym.memory.tips import format_memory

__all__ = [
    "ReaderSettings",
    "build_reader_tokenizer",
    "ReflectionTipWriter",
    "reader_policy",
    "reader_report",
    "reflection",
    "teach_reader",
    "teacher_choices",
    "word_level_tokenizer",
]

_AVOID = re.compile(r"Avoid (\w+)_door")
_ROOM = re.compile(r"You are in the (\w+)\.")
_SPECIALS = ["<pad>", "<eos>", "<|im_start|>", "<|im_end|>", "[UNK]"]
#: Bumped whenever the teaching data or procedure changes (part of the cache key).
_TEACHING_VERSION = 7


def reflection(room: str, door: str, success: bool) -> str:
    """The tip about an episode's last step: the door that was a trap (or led to the treasure).

    A trap is written as one word (``red_door``), unlike the ``open red door`` the memory's
    action part repeats for every step, so the small reader tells them apart by the word
    alone.

    Example:
        >>> reflection("grotto", "mossy", success=False)
        'Avoid mossy_door in the grotto.'
        >>> reflection("grotto", "mossy", success=True)
        'The mossy door in the grotto leads to the treasure.'
    """
    if success:
        return f"The {door} door in the {room} leads to the treasure."
    return f"Avoid {door}_door in the {room}."


def teacher_choices(admissible: Sequence[str], tips: Sequence[str]) -> list[str]:
    """The actions the acting skill chooses among (uniformly) given ``tips``: every admissible
    door no tip says to avoid; if tips say to avoid all of them, all of them.

    The rule reads no room names: with the bench's exact-state retrieval every memory shown
    in a room was stored in that room, though its tip may be about a deeper room (the door an
    episode died at later). Such a tip can rule out this room's safe door too; at the frontier
    of exploration (no episode went deeper yet) every tip is about this room.

    Example:
        >>> acts = ["open red door", "open blue door", "open green door"]
        >>> teacher_choices(acts, ["Avoid red_door in the hall.", "Avoid green_door in the attic."])
        ['open blue door']
        >>> teacher_choices(acts, ["The red door in the hall leads to the treasure."])
        ['open red door', 'open blue door', 'open green door']
    """
    avoid = set(_AVOID.findall(" ".join(tips)))
    door = {a: a.split()[1] if len(a.split()) == 3 else a for a in admissible}
    open_doors = [a for a in admissible if door[a] not in avoid]
    return open_doors or list(admissible)


class ReflectionTipWriter:
    """A :class:`~empo_gym.memory.TipWriter` for Doors episodes: :func:`reflection` of the
    episode's last step (the room it was taken in and the door opened).

    The bench's reader is far too small to learn summarising, so its tips come from this rule;
    what the bench tests is reading them, the hybrid updates and the novelty bonus.

    Example:
        >>> from empo_gym.memory import Step
        >>> ep = Episode("Find the treasure.", "s", [
        ...     Step("You are in the armory. There is a red door and a blue door.",
        ...          "open blue door")])
        >>> ReflectionTipWriter()([ep])
        ['Avoid blue_door in the armory.']
    """

    def __call__(self, episodes: list[Episode]) -> list[str]:
        """One tip per episode (``No tip.`` for an episode whose last step names no room)."""
        out = []
        for ep in episodes:
            last = ep.steps[-1] if ep.steps else None
            room = _ROOM.search(last.state) if last is not None else None
            words = last.action.split() if last is not None else []
            if room is None or len(words) != 3:
                out.append("No tip.")
                continue
            out.append(reflection(room.group(1), words[1], bool(ep.success)))
        return out


@dataclass(frozen=True)
class ReaderSettings:
    """How the reader is built and taught (its cache key)."""

    depth: int = 5
    """Doors depth of the episodes it is taught on."""
    doors: int = 3
    """Doors per room."""
    hidden_size: int = 128
    """Model width."""
    layers: int = 2
    """Transformer layers."""
    heads: int = 4
    """Attention heads."""
    steps: int = 1200
    """Optimizer steps of teaching."""
    short_steps: int = 500
    """Leading steps on short prompts (the curriculum's first stage)."""
    batch_size: int = 64
    """Examples per step."""
    lr: float = 1e-3
    """AdamW learning rate (peak of a one-cycle schedule)."""
    max_history: int = 0
    """Steps of history in the taught prompts (the bench's ``prompt_history``: a Doors room
    says all there is to know, and short prompts keep teaching and training cheap)."""
    max_tips: int = 5
    """Most memories in a taught tip block (the bench's ``memory_top_k``)."""
    seed: int = 0
    """Seed of the model's initialisation and of the teaching data."""

    def key(self) -> str:
        """A short hash of the settings (the cache directory name)."""
        blob = json.dumps({"v": _TEACHING_VERSION, **asdict(self)}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


# ------------------------------------------------------------------------------ teaching data
def _episode_at(rng: random.Random, settings: ReaderSettings) -> dict[str, Any]:
    """A random Doors situation: layout, the room reached, the path there, the doors here."""
    family = rng.choice(sorted(FAMILIES))
    # teaching layouts come from far beyond both splits' ranges (ids 10^6+)
    layout = make_layout(10**6 + rng.randrange(10**6), family, settings.depth, settings.doors)
    room = rng.randrange(settings.depth)
    return {"layout": layout, "room": room}


def _random_memories(rng: random.Random, layout: Any, here: int, n: int) -> list[str]:
    """Memories as the bench's exact-state retrieval finds them in room ``here``, distinct.

    Each is one of: an episode that died here (it opened a trap of this room); one that
    passed here (opened the safe door) and died deeper; one that passed here and found the
    treasure.
    """
    last = len(layout.rooms) - 1
    safe = layout.doors[here][layout.safe[here]]
    traps = [d for i, d in enumerate(layout.doors[here]) if i != layout.safe[here]]
    out: list[str] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.55 or here == last and kind < 0.85:
            door = rng.choice(traps)
            tip, action, score = reflection(layout.rooms[here], door, False), door, 0.0
        elif kind < 0.85:
            k = rng.randrange(here + 1, last + 1)
            deeper = [d for i, d in enumerate(layout.doors[k]) if i != layout.safe[k]]
            tip, action, score = reflection(layout.rooms[k], rng.choice(deeper), False), safe, 0.0
        else:
            gold = layout.doors[last][layout.safe[last]]
            tip, action, score = reflection(layout.rooms[last], gold, True), safe, 100.0
        text = format_memory(tip, door_action(action), score)
        if text not in out:
            out.append(text)
    return out


def _acting_situation(
    rng: random.Random, settings: ReaderSettings, short: bool = False
) -> tuple[Any, list[str], list[str]]:
    """A taught acting situation: ``(prompt, admissible actions, the teacher's choices)``.

    ``short``: the curriculum's first stage, a prompt of the admissible actions and one or two
    memories only (where a memory is one of a few dozen tokens, not one of hundreds, a tiny
    model finds out that memories matter).
    """
    from empo_gym.agents.llm.prompts import EpisodeState, build_prompt, make_prompt

    sit = _episode_at(rng, settings)
    layout, room = sit["layout"], sit["room"]
    info = {
        "instruction": "Find the treasure.",
        "admissible_actions": [door_action(d) for d in layout.doors[room]],
    }
    state = EpisodeState.start(room_text(layout, 0), info)
    for k in range(room):
        action = door_action(layout.doors[k][layout.safe[k]])
        state.advance(action, room_text(layout, k + 1), info)
    tips: list[str] = []
    admissible = info["admissible_actions"]
    if short:
        tips = _random_memories(rng, layout, room, rng.randint(1, 2))
        messages = [{"role": "user", "content": "Admissible actions: " + ", ".join(admissible)}]
        prompt = make_prompt(messages, tips)
    else:
        if rng.random() < 0.7:
            tips = _random_memories(rng, layout, room, rng.randint(1, settings.max_tips))
        prompt = build_prompt("doors", state, tips or None, max_history=settings.max_history)
    return prompt, admissible, teacher_choices(admissible, tips)


def _acting_example(
    rng: random.Random, settings: ReaderSettings, policy: Any, short: bool = False
) -> tuple[list[int], list[str], list[str]]:
    """:func:`_acting_situation` with its prompt encoded by ``policy``: ``(ids, admissible,
    choices)``."""
    prompt, admissible, choices = _acting_situation(rng, settings, short)
    return policy.encode_prompt(prompt.messages, prompt.tip_text or None).ids, admissible, choices


def _corpus(settings: ReaderSettings, n: int = 300) -> list[str]:
    """Texts the vocabulary is built from: rendered teaching prompts and targets, env texts."""
    from empo_gym.memory.tips import TIP_PROMPT

    rng = random.Random(settings.seed)
    texts = [TIP_PROMPT, "user assistant system"]
    texts.append("Nothing happens. The episode is over. was a trap: you fall into a pit.")
    texts.append("Behind the door lies the treasure. You found it!")
    texts.append("The task was completed. The task was not completed.")
    for names in FAMILIES.values():
        texts.append(" ".join(names["rooms"] + names["doors"]))
        texts.append(" ".join(f"{d}_door" for d in names["doors"]))
    for _ in range(n):
        prompt, _, _ = _acting_situation(rng, settings)
        texts.extend(m["content"] for m in prompt.with_tips())
    return texts


def word_level_tokenizer(words: Iterable[str]) -> Any:
    """A whitespace/punctuation word-level tokenizer over ``words`` with a minimal chat template.

    Ids 0-4 are ``<pad>``, ``<eos>``, ``<|im_start|>``, ``<|im_end|>``, ``[UNK]`` (kept whole);
    any other word maps to ``[UNK]``. For tiny test and bench models trained from scratch.

    Example:
        >>> tok = word_level_tokenizer(["open", "door", "user", "assistant"])
        >>> tok.convert_ids_to_tokens(tok("open the door")["input_ids"])
        ['open', '[UNK]', 'door']
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = _SPECIALS + sorted(set(words) - set(_SPECIALS))
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(_SPECIALS)  # kept whole, never split by the pre-tokenizer
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="[UNK]",
        chat_template=(
            "{% for m in messages %}<|im_start|> {{ m['role'] }} {{ m['content'] }} <|im_end|> "
            "{% endfor %}{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
        ),
    )


def build_reader_tokenizer(settings: ReaderSettings) -> Any:
    """The reader's tokenizer: :func:`word_level_tokenizer` over the Doors prompts' words."""
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.Whitespace()
    words: set[str] = set()
    for text in _corpus(settings):
        words.update(w for w, _ in pre.pre_tokenize_str(text))
    return word_level_tokenizer(words)


def _new_model(settings: ReaderSettings, vocab_size: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(settings.seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=settings.hidden_size,
        intermediate_size=2 * settings.hidden_size,
        num_hidden_layers=settings.layers,
        num_attention_heads=settings.heads,
        num_key_value_heads=settings.heads,
        max_position_embeddings=2048,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def teach_reader(
    settings: ReaderSettings = ReaderSettings(), log: Callable[[str], Any] | None = None
) -> tuple[torch.nn.Module, Any, dict[str, float]]:
    """Teach a fresh reader the acting skill; returns ``(model, tokenizer, report)``.

    ``report`` holds the final teaching loss and the held-out checks of
    :func:`_skill_accuracy`.
    """
    from empo_gym.agents.llm.transformers_policy import TransformersPolicy

    tokenizer = build_reader_tokenizer(settings)
    model = _new_model(settings, len(tokenizer))
    policy = TransformersPolicy(model, tokenizer=tokenizer, prefix_cache=False)
    eos = int(tokenizer.eos_token_id)
    rng = random.Random(settings.seed + 1)

    def example(step: int) -> tuple[list[int], list[int]]:
        short = step < settings.short_steps
        prompt, _, choices = _acting_example(rng, settings, policy, short)
        target = rng.choice(choices)  # uniform over the choices: the taught distribution
        return prompt, tokenizer(" " + target, add_special_tokens=False)["input_ids"] + [eos]

    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=settings.lr, total_steps=settings.steps, pct_start=0.1
    )
    model.train()
    t0, loss_value = time.perf_counter(), float("nan")
    for step in range(settings.steps):
        batch = [example(step) for _ in range(settings.batch_size)]
        width = max(len(p) + len(r) for p, r in batch)
        ids = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for i, (p, r) in enumerate(batch):
            row = p + r
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
            labels[i, len(p) : len(row)] = torch.tensor(r)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        loss_value = float(loss.detach())
        if log is not None and (step % 250 == 0 or step == settings.steps - 1):
            log(
                f"[reader] step {step}/{settings.steps} loss {loss_value:.3f} "
                f"({time.perf_counter() - t0:.0f} s)"
            )
    model.eval()
    report = {"loss": loss_value, **_skill_accuracy(policy, settings)}
    return model, tokenizer, report


@torch.no_grad()
def _skill_accuracy(policy: Any, settings: ReaderSettings, n: int = 300) -> dict[str, float]:
    """Held-out checks of the acting skill on fresh situations.

    ``act_valid``: greedy answers that are admissible; ``tips_exclude_mass``: on situations
    whose tips rule doors out, the share of sampled (temperature 1) answers among the
    teacher's choices, beside ``tips_exclude_uniform``, the share a policy ignoring its tips
    would reach.
    """
    from empo_gym.agents.llm.policy import SamplingConfig

    rng = random.Random(settings.seed + 99)
    acting = [_acting_example(rng, settings, policy) for _ in range(n)]
    greedy = SamplingConfig(temperature=0.0, max_new_tokens=8, seed=0)
    answers = [
        " ".join(g.text.split()) for g in policy.generate_ids([a[0] for a in acting], greedy)
    ]
    valid = sum(a in adm for a, (_, adm, _) in zip(answers, acting, strict=True)) / n
    ruled = [a for a in acting if len(a[2]) < len(a[1])]
    samples = 8
    sampled = policy.generate_ids(
        [a[0] for a in ruled for _ in range(samples)],
        SamplingConfig(temperature=1.0, max_new_tokens=8, seed=1),
    )
    hits = sum(" ".join(g.text.split()) in ruled[i // samples][2] for i, g in enumerate(sampled))
    uniform = sum(len(ch) / len(adm) for _, adm, ch in ruled) / max(len(ruled), 1)
    return {
        "act_valid": valid,
        "tips_exclude_mass": hits / max(len(sampled), 1),
        "tips_exclude_uniform": uniform,
        "tips_exclude_cases": float(len(ruled)),
    }


# --------------------------------------------------------------------------------- caching
def _cache_root() -> Path:
    base = os.environ.get("EMPO_GYM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "empo_gym"
    )
    return Path(base) / "readers"


def reader_report(settings: ReaderSettings = ReaderSettings()) -> dict[str, Any] | None:
    """The held-out checks recorded when the cached reader of ``settings`` was taught (None
    when it was not taught yet)."""
    path = _cache_root() / settings.key() / "reader.json"
    if not path.exists():
        return None
    return dict(json.loads(path.read_text())["report"])


def reader_policy(
    settings: ReaderSettings = ReaderSettings(),
    *,
    sampling: Any | None = None,
    cache: bool = True,
    log: Callable[[str], Any] | None = None,
) -> Any:
    """A :class:`~empo_gym.agents.llm.transformers_policy.TransformersPolicy` over a taught
    reader (taught once, then loaded from ``$EMPO_GYM_CACHE/readers/<settings hash>``).

    Every call returns fresh weights (a copy of the cached ones), so two training runs built
    from it start from identical, independent models.
    """
    from transformers import AutoTokenizer, LlamaForCausalLM

    from empo_gym.agents.llm.transformers_policy import TransformersPolicy

    directory = _cache_root() / settings.key()
    if cache and (directory / "reader.json").exists():
        model = LlamaForCausalLM.from_pretrained(directory)
        tokenizer = AutoTokenizer.from_pretrained(directory)
    else:
        model, tokenizer, report = teach_reader(settings, log=log)
        if log is not None:
            log(f"[reader] taught: {json.dumps(report)}")
        if cache:  # when another process cached it first, its copy is kept
            with contextlib.suppress(FileExistsError), atomic_dir(directory, exclusive=True) as tmp:
                model.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
                (tmp / "reader.json").write_text(
                    json.dumps({"settings": asdict(settings), "report": report}, indent=1)
                )
    model.eval()
    return TransformersPolicy(model, tokenizer=tokenizer, sampling=sampling)
