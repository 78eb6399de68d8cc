"""Prompts for LLM agents, per environment, following the EMPO² paper.

* ScienceWorld: an action-only prompt (task, action formats, inventory, a warning about
  ``focus on``, recent history); the model answers with one action, which is projected onto the
  admissible actions.
* WebShop: the model reasons inside ``<think>...</think>`` and answers inside
  ``<action>...</action>``, choosing among the listed admissible actions.
* WebShop menu (the CPU quick preset): the page in brief and the admissible actions as a
  numbered menu (:func:`webshop_menu`); the model answers with a number (the ``index`` answer
  format). The search entry is filled with the instruction (without its price clause), so a
  small model chooses actions but does not write queries.

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
from empo_gym.registry import PROMPT_STYLES, env_profile
from empo_gym.webshop.env import (
    BACK_TO_SEARCH,
    BUY_NOW,
    NEXT_PAGE,
    PREV_PAGE,
    SEARCH_TEMPLATE,
    SEP,
    SUB_PAGES,
)
from empo_gym.webshop.goals import strip_price

Message = dict[str, str]


@dataclass
class Prompt:
    """A chat prompt without tips plus the tip text to append to its last user message.

    Attributes:
        messages: The conversation without any tips.
        tip_text: ``TIP_BLOCK_GAP + tip block`` or ``""`` when there are no tips.
        tips: The individual tips (for records).
        actions: The actions a numbered menu shows, in its order (an ``index`` answer ``k``
            picks ``actions[k - 1]``); None when the prompt has no menu.

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
    actions: list[str] | None = None

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


def make_prompt(
    messages: list[Message],
    tips: Sequence[str] | str | None = None,
    actions: Sequence[str] | None = None,
) -> Prompt:
    """Wrap messages into a :class:`Prompt`, rendering ``tips`` (list or joined) into a block.

    Example:
        >>> p = make_prompt([{"role": "user", "content": "hi"}], ["t1"])
        >>> p.tip_text.startswith("\\n\\n<tip>"), p.tips
        (True, ['t1'])
    """
    block = render_tip_block(tips)
    return Prompt(
        messages,
        tip_text=TIP_BLOCK_GAP + block if block else "",
        tips=parse_tips(tips),
        actions=list(actions) if actions is not None else None,
    )


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


@dataclass(frozen=True)
class MenuItem:
    """One numbered entry of a menu prompt.

    Attributes:
        action: The env action it stands for.
        label: What the prompt shows for it.
    """

    action: str
    label: str


#: Menu labels of WebShop's buttons (products and options are labelled by their text).
_WEBSHOP_BUTTON_LABELS = {
    BACK_TO_SEARCH: "back to search",
    PREV_PAGE: "previous page",
    NEXT_PAGE: "next page of results",
    BUY_NOW: "buy now",
    **{page: f"read the {page}" for page in SUB_PAGES},
}


def _webshop_products(observation: str) -> dict[str, str]:
    """``asin -> "title ($price)"`` of a results page (the env shows asin, title, price)."""
    parts = observation.split(SEP)
    out = {}
    for i, part in enumerate(parts[:-2]):
        if part.lower().startswith("b0") and len(part) == 10:
            out[part.lower()] = f"{_clip(parts[i + 1], 36)} ({parts[i + 2]})"
    return out


def webshop_menu(state: EpisodeState) -> list[MenuItem]:
    """The admissible actions of a WebShop state as labelled menu entries: the env's order, but
    ``buy now`` (the action that ends an episode) first on a product page.

    Why that order: SmolLM2-135M answers "1" about half the time whatever the menu says. In the
    env's order "1" is ``back to search`` everywhere, ``buy now`` is last at a varying number,
    and in 8 CPU iterations the policy never bought anything (no reward, nothing learned). With
    ``buy now`` at 1 on a product page, a purchase needs one decision the untrained model gets
    right only by chance: leaving a results page for a product instead of answering "1" (back to
    search); that is what the quick preset can learn.

    Example:
        >>> s = EpisodeState.start("WebShop [SEP] Search", {
        ...     "instruction": "a red mug, and price lower than 9.00 dollars",
        ...     "admissible_actions": ["search[<query>]"]})
        >>> webshop_menu(s)
        [MenuItem(action='search[a red mug]', label='search for: a red mug')]
    """
    products = _webshop_products(state.observation)
    items = []
    for action in (str(a) for a in state.info.get("admissible_actions") or []):
        if action == SEARCH_TEMPLATE:
            query = strip_price(state.instruction) or state.instruction
            items.append(MenuItem(f"search[{query}]", f"search for: {query}"))
            continue
        value = action[len("click[") : -1] if action.startswith("click[") else action
        label = _WEBSHOP_BUTTON_LABELS.get(value) or (
            f"product: {products[value]}" if value in products else f"option: {value}"
        )
        items.append(MenuItem(action, label))
    buy = f"click[{BUY_NOW}]"
    return sorted(items, key=lambda m: m.action != buy)  # stable: the rest keeps the env's order


def _webshop_page(state: EpisodeState, max_chars: int) -> str:
    """The page in brief: the menu already lists results, options and buttons, so a results
    page is its position, an item page its title and price, a detail page its text."""
    page = str(state.info.get("page") or "")
    parts = state.observation.split(SEP)
    if page == "search" or (parts and parts[0] == "WebShop"):
        return "search"
    body = parts[2:] if len(parts) > 2 and parts[0] == "Instruction:" else parts
    if page == "results":
        position = next((p for p in body if p.startswith("Page ")), "")
        return _clip(f"search results, {position}".rstrip(", "), max_chars)
    if page == "item":
        price = next((i for i, p in enumerate(body) if p.startswith("Price: ")), None)
        if price is not None and price > 0:
            return _clip(f"product: {body[price - 1]} ({body[price][len('Price: ') :]})", max_chars)
    kept = [p for p in body if p.lower() not in _WEBSHOP_BUTTON_LABELS]
    return _clip(f"{page}: " + " | ".join(kept) if page else " | ".join(kept), max_chars)


def webshop_menu_messages(
    state: EpisodeState,
    *,
    menu: Sequence[MenuItem] | None = None,
    max_history: int = 4,
    max_obs_chars: int = 200,
) -> list[Message]:
    """WebShop's menu prompt: instruction, recent actions, the page in brief, a numbered menu.

    Args:
        state: The running episode.
        menu: The menu to show (default: :func:`webshop_menu` of ``state``).
        max_history: Number of most recent actions shown.
        max_obs_chars: The page text is clipped to this many characters.

    Example:
        >>> s = EpisodeState.start("WebShop [SEP] Search", {"instruction": "a red mug",
        ...     "admissible_actions": ["search[<query>]"]})
        >>> print(webshop_menu_messages(s)[-1]["content"])
        Instruction: a red mug
        Page: search
        Actions:
        1. search for: a red mug
        Answer with the number of one action.
    """
    menu = webshop_menu(state) if menu is None else menu
    parts = [f"Instruction: {state.instruction}"]
    recent = state.history[-max_history:] if max_history > 0 else []
    if recent:
        parts.append("Your last actions: " + "; ".join(_clip(a, 24) for a, _ in recent))
    parts += [f"Page: {_webshop_page(state, max_obs_chars)}", "Actions:"]
    parts += [f"{i}. {item.label}" for i, item in enumerate(menu, start=1)]
    parts.append("Answer with the number of one action.")
    system = (
        "You are shopping on the WebShop website: find and buy the product the instruction "
        "describes. Each turn, pick one action from the numbered list."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(parts)}]


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
    "webshop-menu": webshop_menu_messages,
    "generic": generic_messages,
}
#: Menu of each prompt style that numbers its actions (its builder takes ``menu=``).
MENU_BUILDERS: dict[str, Callable[[EpisodeState], list[MenuItem]]] = {
    "webshop-menu": webshop_menu,
}


def build_prompt(
    env_name: str,
    state: EpisodeState,
    tips: Sequence[str] | str | None = None,
    *,
    style: str | None = None,
    **kwargs: Any,
) -> Prompt:
    """The prompt for ``env_name`` in its profile's prompt style (or ``style``), with tips.

    Args:
        env_name: Env short name (its profile's ``prompt_style`` picks the builder; an
            unregistered name gets the generic prompt).
        state: The running episode.
        tips: Tips from the memory wrapper (a list, or already joined / rendered), or None.
        style: A prompt style of :data:`~empo_gym.registry.PROMPT_STYLES` instead of the
            profile's (a training preset's choice).
        **kwargs: Passed to the env's message builder (``max_history``, ...).

    Example:
        >>> s = EpisodeState.start("room", {"task": "t"})
        >>> a, b = build_prompt("scienceworld", s), build_prompt("scienceworld", s, ["tip"])
        >>> a.messages == b.messages and not a.has_tips and b.has_tips
        True
    """
    style = style or env_profile(env_name).prompt_style
    if style not in PROMPT_BUILDERS:
        raise ValueError(f"prompt style {style!r}; expected one of: {', '.join(PROMPT_STYLES)}")
    builder = PROMPT_BUILDERS[style]
    menu_of = MENU_BUILDERS.get(style)
    if menu_of is None:
        return make_prompt(builder(state, **kwargs), tips)
    menu = menu_of(state)
    return make_prompt(builder(state, menu=menu, **kwargs), tips, [m.action for m in menu])
