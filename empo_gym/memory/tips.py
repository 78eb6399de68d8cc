"""Tips: what an episode teaches, in one sentence, and how memories are rendered into prompts.

After every finished trajectory a *tip writer* turns it into one sentence (EMPO²: the policy
itself, prompted with :data:`TIP_PROMPT`). The memory then stores one entry per step::

    "{tip}; At that timestep, the specific action you took was {a_t}; Eventually you got the
    score {R}/100."

and a memory-augmented turn appends the retrieved entries to the user message as::

    <tip> Here are some memories you collected in your previous exploration:
    memory 1
    memory 2
    </tip>

Writers are batched (``list[Trajectory] -> list[str]``) so an LLM can write the tips of every
finished episode with one generation. An LLM agent builds the prompts with
:func:`build_tip_prompt` and cleans its answer with :func:`clean_tip`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "TIP_BLOCK_CLOSE",
    "TIP_BLOCK_OPEN",
    "TIP_PROMPT",
    "TIP_SEPARATOR",
    "PromptTipWriter",
    "Step",
    "TemplateTipWriter",
    "TipWriter",
    "Trajectory",
    "build_tip_prompt",
    "clean_tip",
    "format_memory",
    "join_tips",
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


@dataclass
class Step:
    """One step of a recorded trajectory: the state seen, the action taken, what followed.

    Attributes:
        state: Raw observation the action was chosen in (tips excluded).
        action: The action taken.
        reward: Env reward of the step.
        score: Env score after the step.
    """

    state: str
    action: str
    reward: float = 0.0
    score: float = 0.0


@dataclass
class Trajectory:
    """A finished episode as the tip writer sees it.

    Attributes:
        task: Task text (the env's ``info["instruction"]`` or ``info["task"]``).
        slot: Memory slot of the episode.
        steps: Steps in order.
        final_score: Score at the end (env's native scale).
        success: Whether the env reported success.
        used_memory: Whether the episode ran with tips.
        info: Last info dict of the episode (without large values).
    """

    task: str
    slot: str
    steps: list[Step] = field(default_factory=list)
    final_score: float = 0.0
    success: bool = False
    used_memory: bool = False
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class TipWriter(Protocol):
    """Turns finished trajectories into one-sentence tips (one per trajectory, same order)."""

    def __call__(self, trajectories: list[Trajectory]) -> list[str]:
        """Return one tip per trajectory."""
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
    """A tip writer that needs no LLM: a template over the trajectory's facts.

    Example:
        >>> traj = Trajectory("boil water", "boil/0", [Step("hall", "open door", 0, 10),
        ...                   Step("kitchen", "look around", 0, 10)], final_score=10)
        >>> TemplateTipWriter()([traj])[0]
        "In 'boil water' I took 2 steps (open door, look around) and reached score 10/100 \
without completing the task; the last action was 'look around', so try a different approach \
from there."
    """

    def __init__(self, max_actions: int = 5):
        self.max_actions = max_actions

    def __call__(self, trajectories: list[Trajectory]) -> list[str]:
        """Return one templated sentence per trajectory."""
        out = []
        for t in trajectories:
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

    Each trajectory becomes a :func:`build_tip_prompt` prompt; ``generate`` answers all prompts
    in one call; answers are flattened by :func:`clean_tip`.

    Args:
        generate: ``list[str] (prompts) -> list[str] (answers)``, e.g. the policy's batched
            generation with the agent's chat template applied inside.
        max_words: Words kept from each answer.

    Example:
        >>> writer = PromptTipWriter(lambda prompts: ["  Boil   it. "] * len(prompts))
        >>> writer([Trajectory("boil water", "s", [Step("hall", "go kitchen")])])
        ['Boil it.']
    """

    def __init__(self, generate: Callable[[list[str]], list[str]], max_words: int = 100):
        if not callable(generate):
            raise TypeError(f"generate must be callable (list[str] -> list[str]), got {generate!r}")
        self.generate = generate
        self.max_words = max_words

    def __call__(self, trajectories: list[Trajectory]) -> list[str]:
        """Prompt the generator once for all trajectories."""
        answers = list(self.generate([build_tip_prompt(t) for t in trajectories]))
        if len(answers) != len(trajectories):
            raise ValueError(
                f"generate returned {len(answers)} answers for {len(trajectories)} prompts"
            )
        return [clean_tip(a, self.max_words) for a in answers]


def build_tip_prompt(
    trajectory: Trajectory, max_steps: int = 30, max_state_chars: int = 300
) -> str:
    """Fill :data:`TIP_PROMPT` for an LLM tip writer (states are truncated to stay short).

    Example:
        >>> p = build_tip_prompt(Trajectory("boil water", "s", [Step("hall", "go kitchen")]))
        >>> "Task: boil water" in p and "hall -> go kitchen" in p
        True
    """
    lines = []
    steps = trajectory.steps[-max_steps:]
    for s in steps:
        state = " ".join(s.state.split())[:max_state_chars]
        lines.append(f"- {state} -> {s.action}")
    outcome = "The task was completed." if trajectory.success else "The task was not completed."
    return TIP_PROMPT.format(
        task=" ".join(trajectory.task.split()),
        trajectory="\n".join(lines) if lines else "(no steps)",
        score=_fmt_score(trajectory.final_score),
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


def render_tip_block(tips: Sequence[str]) -> str:
    """The ``<tip> ... </tip>`` block appended to a user message ("" when there are no tips).

    Example:
        >>> print(render_tip_block(["m1", "m2"]))
        <tip> Here are some memories you collected in your previous exploration:
        m1
        m2
        </tip>
        >>> render_tip_block([])
        ''
    """
    if not tips:
        return ""
    return TIP_BLOCK_OPEN + join_tips(tips) + "\n" + TIP_BLOCK_CLOSE
