"""Prompts for LLM agents, per environment, following the EMPO² paper.

* ScienceWorld: an action-only prompt (task, action formats, inventory, a warning about
  ``focus on``, recent history); the model answers with one action, which is projected onto the
  admissible actions.
* WebShop: the model reasons inside ``<think>...</think>`` and answers inside
  ``<action>...</action>``, choosing among the listed admissible actions.

Tips from the memory wrapper are never part of the message text returned here: a :class:`Prompt`
keeps them apart (``tip_text``) so the policy can tokenise them as a separate segment and the
trainer can strip them exactly. The tip block and the gap before it are the memory module's
(:func:`empo_gym.memory.tips.render_tip_block`, :data:`~empo_gym.memory.tips.TIP_BLOCK_GAP`);
the tip prompt is :func:`empo_gym.memory.tips.build_tip_prompt`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from empo_gym.memory.tips import TIP_BLOCK_GAP, parse_tips, render_tip_block
from empo_gym.registry import env_profile

Message = dict[str, str]


@dataclass
class Prompt:
    """A chat prompt without tips plus the tip text to append to its last user message.

    Attributes:
        messages: The conversation without any tips.
        tip_text: ``TIP_BLOCK_GAP + tip block`` or ``""`` when there are no tips.
        tips: The individual tips (for records).

    Example:
        >>> p = Prompt([{"role": "user", "content": "Task: x"}], tip_text="\\n\\n<tip>a</tip>")
        >>> p.with_tips()[-1]["content"]
        'Task: x\\n\\n<tip>a</tip>'
        >>> p.messages[-1]["content"]
        'Task: x'
    """

    messages: list[Message]
    tip_text: str = ""
    tips: list[str] = field(default_factory=list)

    @property
    def has_tips(self) -> bool:
        """Whether the prompt carries a tip block."""
        return bool(self.tip_text)

    def with_tips(self) -> list[Message]:
        """The conversation with the tip block appended to the last user message."""
        msgs = [dict(m) for m in self.messages]
        if not self.tip_text:
            return msgs
        for m in reversed(msgs):
            if m.get("role") == "user":
                m["content"] = m["content"] + self.tip_text
                return msgs
        raise ValueError("cannot place tips: the conversation has no user message")


def make_prompt(messages: list[Message], tips: Sequence[str] | str | None = None) -> Prompt:
    """Wrap messages into a :class:`Prompt`, rendering ``tips`` (list or joined) into a block.

    Example:
        >>> p = make_prompt([{"role": "user", "content": "hi"}], ["t1"])
        >>> p.tip_text.startswith("\\n\\n<tip>"), p.tips
        (True, ['t1'])
    """
    block = render_tip_block(tips)
    return Prompt(messages, tip_text=TIP_BLOCK_GAP + block if block else "", tips=parse_tips(tips))


@dataclass
class EpisodeState:
    """What a prompt builder sees of one running episode.

    Attributes:
        instruction: The task text (``info["instruction"]`` or ``info["task"]``).
        observation: The current observation text (tips removed).
        info: The latest info dict of the env.
        history: ``(action, observation)`` pairs of earlier steps, oldest first.
        step: Number of actions taken so far.
    """

    instruction: str
    observation: str
    info: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)
    step: int = 0

    @classmethod
    def start(cls, observation: str, info: dict[str, Any]) -> EpisodeState:
        """A new episode state from the first observation and info."""
        instruction = str(info.get("instruction") or info.get("task") or "")
        return cls(instruction=instruction, observation=observation, info=dict(info))

    def advance(self, action: str, observation: str, info: dict[str, Any]) -> None:
        """Record ``action`` and move to the next observation."""
        self.history.append((action, self.observation))
        self.observation = observation
        self.info = dict(info)
        self.step += 1


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


SCIENCEWORLD_ACTION_FORMATS: tuple[tuple[str, str], ...] = (
    ("look around", "describe the room you are in"),
    ("look at OBJ", "describe an object"),
    ("look in OBJ", "list what a container holds"),
    ("read OBJ", "read a book or note"),
    ("go to LOC", "walk to another room (its door must be open)"),
    ("open OBJ / close OBJ", "open or close a container or door"),
    ("pick up OBJ", "put an object in your inventory"),
    ("put down OBJ", "drop an inventory object"),
    ("move OBJ to OBJ", "move an object into a container"),
    ("pour OBJ into OBJ", "pour a liquid into a container"),
    ("dunk OBJ into OBJ", "dunk a container into a liquid"),
    ("mix OBJ", "chemically mix a container's contents"),
    ("activate OBJ / deactivate OBJ", "switch a device on or off"),
    ("use OBJ on OBJ", "use a device or tool on something"),
    ("connect OBJ to OBJ / disconnect OBJ", "wire electrical components"),
    ("eat OBJ", "eat food"),
    ("flush OBJ", "flush a toilet"),
    ("focus on OBJ", "declare the object the task is about"),
    ("wait / wait1", "let 10 steps / 1 step pass"),
    ("inventory", "list what you carry"),
    ("teleport to LOC", "move to a location directly (when available)"),
)

SCIENCEWORLD_FOCUS_WARNING = (
    "Warning: use 'focus on OBJ' only on the object the task asks you to focus on. Focusing on "
    "a wrong object ends the episode immediately with a failing score."
)


def scienceworld_messages(
    state: EpisodeState, *, max_history: int = 8, max_obs_chars: int = 600
) -> list[Message]:
    """ScienceWorld's action-only prompt (task, action formats, inventory, warning, history).

    Args:
        state: The running episode.
        max_history: Number of most recent steps shown.
        max_obs_chars: Observations longer than this are clipped.

    Example:
        >>> s = EpisodeState.start("You are in the kitchen.", {"task": "Boil water."})
        >>> msgs = scienceworld_messages(s)
        >>> [m["role"] for m in msgs]
        ['system', 'user']
        >>> "Boil water." in msgs[1]["content"] and "focus on" in msgs[1]["content"]
        True
    """
    formats = "\n".join(f"- {a}: {d}" for a, d in SCIENCEWORLD_ACTION_FORMATS)
    system = (
        "You are an agent in ScienceWorld, a text-based simulation of elementary science "
        "experiments. Reply with exactly one action and nothing else."
    )
    parts = [
        f"Task: {state.instruction}",
        "",
        "Action formats (OBJ / LOC are names you see):",
        formats,
        "",
        SCIENCEWORLD_FOCUS_WARNING,
    ]
    recent = state.history[-max_history:] if max_history > 0 else []
    if recent:
        parts += ["", f"Your last {len(recent)} step(s):"]
        first = state.step - len(recent) + 1
        for k, (action, obs) in enumerate(recent):
            parts.append(f"Step {first + k}: observation: {_clip(obs, 200)} -> action: {action}")
    inventory = str(state.info.get("inventory") or "").strip()
    if inventory:
        parts += ["", f"Inventory: {_clip(inventory, 300)}"]
    parts += [
        "",
        f"Current observation (step {state.step + 1}): {_clip(state.observation, max_obs_chars)}",
        "",
        "Next action:",
    ]
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(parts)}]


def webshop_messages(
    state: EpisodeState,
    *,
    max_history: int = 4,
    max_obs_chars: int = 1500,
    max_actions: int = 40,
) -> list[Message]:
    """WebShop's prompt: reason in ``<think>...</think>``, answer in ``<action>...</action>``.

    Args:
        state: The running episode.
        max_history: Number of most recent steps shown.
        max_obs_chars: Observations longer than this are clipped.
        max_actions: At most this many admissible actions are listed.

    Example:
        >>> s = EpisodeState.start("WebShop [SEP] Search", {
        ...     "instruction": "Find a red mug under 20 dollars",
        ...     "admissible_actions": ["search[<your query>]"]})
        >>> content = webshop_messages(s)[-1]["content"]
        >>> "<action>" in content and "search[<your query>]" in content
        True
    """
    actions = [str(a) for a in state.info.get("admissible_actions") or []]
    shown = actions[:max_actions]
    more = f"\n... and {len(actions) - len(shown)} more" if len(actions) > len(shown) else ""
    parts = [
        "You are shopping on the WebShop website.",
        f"Instruction: {state.instruction}",
    ]
    recent = state.history[-max_history:] if max_history > 0 else []
    if recent:
        parts += ["", f"You have taken {state.step} step(s). The most recent ones:"]
        first = state.step - len(recent) + 1
        for k, (action, obs) in enumerate(recent):
            parts.append(f"Step {first + k}: observation: {_clip(obs, 300)} -> action: {action}")
    parts += [
        "",
        f"Current observation (step {state.step + 1}): {_clip(state.observation, max_obs_chars)}",
        "",
        "Admissible actions:",
        "\n".join(shown) + more if shown else "(none listed)",
        "",
        "First think step by step about which action best fulfils the instruction, inside "
        "<think> </think> tags. Then give exactly one admissible action inside <action> </action> "
        "tags, e.g. <action>search[red mug]</action> or <action>click[buy now]</action>.",
    ]
    return [{"role": "user", "content": "\n".join(parts)}]


def generic_messages(state: EpisodeState, *, max_history: int = 6) -> list[Message]:
    """A plain prompt for other text envs: task, history, observation, admissible actions.

    Example:
        >>> s = EpisodeState.start("dark room", {"task": "escape", "admissible_actions": ["go"]})
        >>> "go" in generic_messages(s)[-1]["content"]
        True
    """
    actions = [str(a) for a in state.info.get("admissible_actions") or []]
    parts = [f"Task: {state.instruction}"]
    for action, obs in state.history[-max_history:] if max_history > 0 else []:
        parts.append(f"Observation: {_clip(obs, 200)} -> action: {action}")
    parts.append(f"Current observation: {_clip(state.observation, 800)}")
    if actions:
        parts.append("Admissible actions: " + ", ".join(actions[:60]))
    parts.append("Reply with exactly one action.")
    return [{"role": "user", "content": "\n".join(parts)}]


#: Message builder per prompt style (an env's profile names its style: empo_gym.registry).
PROMPT_BUILDERS: dict[str, Callable[..., list[Message]]] = {
    "scienceworld": scienceworld_messages,
    "webshop": webshop_messages,
    "generic": generic_messages,
}


def build_prompt(
    env_name: str,
    state: EpisodeState,
    tips: Sequence[str] | str | None = None,
    **kwargs: Any,
) -> Prompt:
    """The prompt for ``env_name`` in its profile's prompt style, with tips.

    Args:
        env_name: Env short name (its profile's ``prompt_style`` picks the builder; an
            unregistered name gets the generic prompt).
        state: The running episode.
        tips: Tips from the memory wrapper (a list, or already joined / rendered), or None.
        **kwargs: Passed to the env's message builder (``max_history``, ...).

    Example:
        >>> s = EpisodeState.start("room", {"task": "t"})
        >>> a, b = build_prompt("scienceworld", s), build_prompt("scienceworld", s, ["tip"])
        >>> a.messages == b.messages and not a.has_tips and b.has_tips
        True
    """
    builder = PROMPT_BUILDERS[env_profile(env_name).prompt_style]
    return make_prompt(builder(state, **kwargs), tips)
