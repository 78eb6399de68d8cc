"""Tips: what an episode teaches, in one sentence, and how memories are rendered into prompts.

After every finished episode a *tip writer* turns it into one sentence (EMPO²: the policy
itself, prompted with :data:`TIP_PROMPT` by :func:`build_tip_prompt`). The memory then stores
one entry per step (:func:`format_memory`)::

    "{tip}; At that timestep, the specific action you took was {a_t}; Eventually you got the
    score {R}/100."

and a memory-augmented turn appends the retrieved entries to the user message, after
:data:`TIP_BLOCK_GAP`, as the block :func:`render_tip_block` draws::

    <tip> Here are some memories you collected in your previous exploration:
    memory 1
    memory 2
    </tip>

This module is the one place that format lives: the memory wrappers and the LLM agents' prompts
(``empo_gym.agents.llm.prompts``) both use it. Writers are batched (``list[Episode] ->
list[str]``) so an LLM can write the tips of every finished episode with one generation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from empo_gym.deprecation import deprecated_aliases
from empo_gym.memory.episode import Episode, Step

__all__ = [
    "TIP_BLOCK_CLOSE",
    "TIP_BLOCK_GAP",
    "TIP_BLOCK_OPEN",
    "TIP_PROMPT",
    "TIP_SEPARATOR",
    "Episode",
    "PromptTipWriter",
    "Step",
    "TemplateTipWriter",
    "TipWriter",
    "build_tip_prompt",
    "clean_tip",
    "format_memory",
    "join_tips",
    "parse_tips",
    "render_tip_block",
    "split_tips",
]

#: Opening of the injected memory block (EMPO²).
TIP_BLOCK_OPEN = "<tip> Here are some memories you collected in your previous exploration:\n"
#: Closing of the injected memory block.
TIP_BLOCK_CLOSE = "</tip>"
#: Separator between memories in the ``tips`` observation field and in the block (one per
#: line): memories never contain a newline (:func:`format_memory` flattens them).
TIP_SEPARATOR = "\n"
#: What separates the user message from the tip block appended to it.
TIP_BLOCK_GAP = "\n\n"

#: Prompt asking the policy for a tip; fill with :func:`build_tip_prompt`.
TIP_PROMPT = (
    "You have just finished an episode of the following task.\n"
    "Task: {task}\n"
    "Trajectory (observation -> action):\n{trajectory}\n"
    "Final score: {score}/100. {outcome}\n\n"
    "Write ONE sentence (fewer than 100 words) that summarises this trajectory, states what you "
    "learned from it, and says how far you are from completing the task, so that your future "
    "self can do better next time. Answer with the sentence only."
)


# the record type was called Trajectory, a name it shared with the trainer's rollout record
__getattr__ = deprecated_aliases(__name__, {"Trajectory": ("empo_gym.memory.Episode", Episode)})


@runtime_checkable
class TipWriter(Protocol):
    """Turns finished episodes into one-sentence tips (one per episode, same order)."""

    def __call__(self, episodes: list[Episode]) -> list[str]:
        """Return one tip per episode."""
        ...


def _fmt_score(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def clean_tip(text: str, max_words: int = 100) -> str:
    """Flatten a writer's answer into one line of at most ``max_words`` words.

    Example:
        >>> clean_tip("  Go to the kitchen.\\n\\nThen boil water.  ")
        'Go to the kitchen. Then boil water.'
        >>> clean_tip("a b c d", max_words=2)
        'a b'
    """
    words = str(text).split()
    return " ".join(words[:max_words])


class TemplateTipWriter:
    """A tip writer that needs no LLM: a template over the episode's facts.

    Example:
        >>> ep = Episode("boil water", "boil/0", [Step("hall", "open door", 0, 10),
        ...              Step("kitchen", "look around", 0, 10)], final_score=10)
        >>> TemplateTipWriter()([ep])[0]
        "In 'boil water' I took 2 steps (open door, look around) and reached score 10/100 \
without completing the task; the last action was 'look around', so try a different approach \
from there."
    """

    def __init__(self, max_actions: int = 5):
        self.max_actions = max_actions

    def __call__(self, episodes: list[Episode]) -> list[str]:
        """Return one templated sentence per episode."""
        out = []
        for t in episodes:
            actions = [s.action for s in t.steps]
            shown = ", ".join(actions[: self.max_actions])
            if len(actions) > self.max_actions:
                shown += ", ..."
            task = " ".join(t.task.split())[:120]
            if t.success:
                end = "and completed the task; repeat these actions"
            else:
                last = actions[-1] if actions else "nothing"
                end = (
                    "without completing the task; the last action was "
                    f"'{last}', so try a different approach from there"
                )
            out.append(
                clean_tip(
                    f"In '{task}' I took {len(actions)} steps ({shown}) and reached score "
                    f"{_fmt_score(t.final_score)}/100 {end}."
                )
            )
        return out


class PromptTipWriter:
    """A tip writer backed by any batched text generator (how an LLM agent passes its policy).

    Each episode becomes a :func:`build_tip_prompt` prompt; ``generate`` answers all prompts
    in one call; answers are flattened by :func:`clean_tip`.

    Args:
        generate: ``list[str] (prompts) -> list[str] (answers)``, e.g. the policy's batched
            generation with the agent's chat template applied inside.
        max_words: Words kept from each answer.
        fallback: The tip of an answer with no words (an entry still needs a tip).

    Attributes:
        seconds: Total seconds spent inside ``generate``.

    Example:
        >>> writer = PromptTipWriter(lambda prompts: ["  Boil   it. ", ""][: len(prompts)])
        >>> writer([Episode("boil water", "s", [Step("hall", "go kitchen")])] * 2)
        ['Boil it.', 'No tip.']
    """

    def __init__(
        self,
        generate: Callable[[list[str]], list[str]],
        max_words: int = 100,
        fallback: str = "No tip.",
    ):
        if not callable(generate):
            raise TypeError(f"generate must be callable (list[str] -> list[str]), got {generate!r}")
        self.generate = generate
        self.max_words = max_words
        self.fallback = fallback
        self.seconds = 0.0

    def __call__(self, episodes: list[Episode]) -> list[str]:
        """Prompt the generator once for all episodes."""
        prompts = [build_tip_prompt(t) for t in episodes]
        t0 = time.perf_counter()
        answers = list(self.generate(prompts))
        self.seconds += time.perf_counter() - t0
        if len(answers) != len(episodes):
            raise ValueError(
                f"generate returned {len(answers)} answers for {len(episodes)} prompts"
            )
        return [clean_tip(a, self.max_words) or self.fallback for a in answers]


def build_tip_prompt(episode: Episode, max_steps: int = 30, max_state_chars: int = 300) -> str:
    """Fill :data:`TIP_PROMPT` for an LLM tip writer (states are truncated to stay short).

    Example:
        >>> p = build_tip_prompt(Episode("boil water", "s", [Step("hall", "go kitchen")],
        ...                      final_score=42))
        >>> "Task: boil water" in p and "hall -> go kitchen" in p and "42/100" in p
        True
    """
    lines = []
    steps = episode.steps[-max_steps:]
    for s in steps:
        state = " ".join(s.state.split())[:max_state_chars]
        lines.append(f"- {state} -> {s.action}")
    outcome = "The task was completed." if episode.success else "The task was not completed."
    return TIP_PROMPT.format(
        task=" ".join(episode.task.split()),
        trajectory="\n".join(lines) if lines else "(no steps)",
        score=_fmt_score(episode.final_score),
        outcome=outcome,
    )


def format_memory(tip: str, action: str, score: float) -> str:
    """The stored memory text of one step (EMPO² wording), flattened to one line.

    Example:
        >>> format_memory("Open the door first.", "open door", 80.0)
        'Open the door first.; At that timestep, the specific action you took was open door; \
Eventually you got the score 80/100.'
    """
    text = (
        f"{tip}; At that timestep, the specific action you took was {action}; "
        f"Eventually you got the score {_fmt_score(score)}/100."
    )
    return " ".join(text.split())


def join_tips(tips: Sequence[str]) -> str:
    """Join memories into the ``tips`` observation field (one per line).

    Example:
        >>> split_tips(join_tips(["a b", "c"]))
        ['a b', 'c']
    """
    return TIP_SEPARATOR.join(" ".join(t.split()) for t in tips)


def split_tips(joined: str) -> list[str]:
    """Inverse of :func:`join_tips` (empty string -> no tips)."""
    return joined.split(TIP_SEPARATOR) if joined else []


def parse_tips(tips: Sequence[str] | str | None) -> list[str]:
    """The memories in ``tips``: a list, the joined ``tips`` field, or a rendered block.

    Each memory is flattened to one line; empty ones are dropped.

    Example:
        >>> parse_tips(render_tip_block(["m1", "m2"])), parse_tips("a\\nb"), parse_tips(None)
        (['m1', 'm2'], ['a', 'b'], [])
    """
    if tips is None:
        return []
    if isinstance(tips, str):
        body = tips.strip()
        opening = TIP_BLOCK_OPEN.strip()
        if body.startswith(opening):  # a rendered block: keep the memories only
            body = body[len(opening) :]
            body = body[: -len(TIP_BLOCK_CLOSE)] if body.endswith(TIP_BLOCK_CLOSE) else body
        items: Sequence[str] = body.splitlines()
    else:
        items = tips
    return [" ".join(t.split()) for t in items if t and t.strip()]


def render_tip_block(tips: Sequence[str] | str | None) -> str:
    """The ``<tip> ... </tip>`` block appended to a user message ("" when there are no tips).

    Args:
        tips: Memories as a list, joined one per line (the ``tips`` field), or a block
            rendered before (see :func:`parse_tips`).

    Example:
        >>> print(render_tip_block(["m1", "m2"]))
        <tip> Here are some memories you collected in your previous exploration:
        m1
        m2
        </tip>
        >>> render_tip_block([]), render_tip_block("m1\\nm2") == render_tip_block(["m1", "m2"])
        ('', True)
    """
    memories = parse_tips(tips)
    if not memories:
        return ""
    return TIP_BLOCK_OPEN + join_tips(memories) + "\n" + TIP_BLOCK_CLOSE
