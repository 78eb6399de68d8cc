"""Turning an LLM's free text into an environment action.

Two steps, following the paper: *extract* the action from the raw output (the first line for
ScienceWorld's action-only format, the ``<action>...</action>`` tag for WebShop), then *project*
it onto the most similar admissible action (Jaccard similarity of word sets). The ``index``
format (menu prompts) reads the first number of the answer and picks that menu entry instead.
Nothing here ever raises on model output: malformed answers fall back to projecting the whole
text and are counted in :class:`ParseStats`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from empo_gym.registry import ACTION_FORMATS, env_profile

_WORD = re.compile(r"[a-z0-9]+")
_ACTION_TAG = re.compile(r"<action>(.*?)</action>", re.IGNORECASE | re.DOTALL)
_OPEN_ACTION = re.compile(r"<action>(.*)$", re.IGNORECASE | re.DOTALL)
_THINK_TAG = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_NUMBER = re.compile(r"\d+")
_PREFIX = re.compile(r"^\s*(?:>+|[-*]|\d+[.)]|(?:next\s+)?action\s*[:=]|answer\s*:)\s*", re.I)


def words(text: str) -> frozenset[str]:
    """Lower-cased alphanumeric word set of ``text``.

    Example:
        >>> sorted(words("Click[Buy Now]"))
        ['buy', 'click', 'now']
    """
    return frozenset(_WORD.findall(text.lower()))


def jaccard(a: str, b: str) -> float:
    """Jaccard similarity of the word sets of ``a`` and ``b`` (0 when both are empty).

    Example:
        >>> jaccard("open door", "open the door")
        0.6666666666666666
    """
    wa, wb = words(a), words(b)
    union = wa | wb
    return len(wa & wb) / len(union) if union else 0.0


def project_action(text: str, admissible: Sequence[str]) -> tuple[str, float]:
    """The admissible action most similar to ``text`` and its similarity.

    An exact (case/space-insensitive) match wins with similarity 1.0; otherwise the highest
    Jaccard similarity over word sets, ties broken by the order of ``admissible``. With no
    admissible actions, ``text`` itself is returned (similarity 0).

    Example:
        >>> project_action("go to the kitchen", ["go to hallway", "go to kitchen", "look around"])
        ('go to kitchen', 0.75)
        >>> project_action("LOOK  around", ["look around"])
        ('look around', 1.0)
    """
    if not admissible:
        return text, 0.0
    norm = " ".join(text.lower().split())
    for a in admissible:
        if " ".join(a.lower().split()) == norm:
            return a, 1.0
    target = words(text)
    best, best_sim = admissible[0], -1.0
    for a in admissible:
        wa = words(a)
        union = target | wa
        sim = len(target & wa) / len(union) if union else 0.0
        if sim > best_sim:
            best, best_sim = a, sim
    return best, max(best_sim, 0.0)


_FREE_TEXT = re.compile(r"^(search)\[(.+)\]$", re.IGNORECASE | re.DOTALL)


def _free_text_action(extracted: str, admissible: Sequence[str]) -> str | None:
    """Keep ``search[query]`` verbatim when searching is admissible (its query is free text)."""
    m = _FREE_TEXT.match(extracted.strip())
    if not m or not m.group(2).strip():
        return None
    verb = m.group(1).lower()
    if any(a.lower().startswith(verb + "[") or a.lower() == verb for a in admissible):
        return f"{verb}[{m.group(2).strip()}]"
    return None


@dataclass
class ParseResult:
    """The outcome of parsing one model output.

    Attributes:
        action: The action sent to the env (projected when admissible actions are known).
        raw: The model's raw text.
        extracted: The action text found in ``raw`` before projection.
        ok: False when the output did not follow the expected format (a fallback was used).
        similarity: Jaccard similarity between ``extracted`` and ``action``.
        reason: Why ``ok`` is False (``""`` otherwise).
    """

    action: str
    raw: str
    extracted: str
    ok: bool = True
    similarity: float = 1.0
    reason: str = ""


def _clean(line: str) -> str:
    line = _PREFIX.sub("", line.strip())
    line = line.strip().strip("`\"'").strip()
    return line.rstrip(".!;").strip()


def extract_action(text: str, style: str = "plain") -> tuple[str, bool, str]:
    """Find the action in a model output.

    Args:
        text: Raw model output.
        style: ``"plain"`` (the first non-empty line is the action; ScienceWorld), ``"tagged"``
            (the last ``<action>...</action>``; WebShop) or ``"index"`` (the first number: a
            menu entry).

    Returns:
        ``(action_text, ok, reason)``; ``ok`` is False for malformed output, and then the
        action text is a best-effort fallback.

    Example:
        >>> extract_action("<think>need a mug</think><action>search[red mug]</action>", "tagged")
        ('search[red mug]', True, '')
        >>> extract_action("Action: open door.\\nbecause", "plain")
        ('open door', True, '')
        >>> extract_action("", "plain")
        ('', False, 'empty output')
        >>> extract_action("3. buy now", "index")
        ('3', True, '')
    """
    text = text or ""
    if style == "index":
        number = _NUMBER.search(text)
        if number is None:
            return _clean(text), False, "no action number"
        return number.group(), True, ""
    if style == "tagged":
        found = _ACTION_TAG.findall(text)
        if found:
            action = _clean(found[-1].strip().splitlines()[0] if found[-1].strip() else "")
            if action:
                return action, True, ""
            return "", False, "empty <action> tag"
        unclosed = _OPEN_ACTION.search(text)
        if unclosed and unclosed.group(1).strip():
            return _clean(unclosed.group(1).strip().splitlines()[0]), False, "unclosed <action> tag"
        rest = _THINK_TAG.sub(" ", text)
        lines = [ln for ln in (_clean(x) for x in rest.splitlines()) if ln]
        return (lines[-1] if lines else ""), False, "no <action> tag"
    if style != "plain":
        raise ValueError(f"style={style!r}; expected one of: {', '.join(ACTION_FORMATS)}")
    if "<action>" in text.lower():  # a plain-format model may still use tags
        action, ok, _ = extract_action(text, "tagged")
        if ok:
            return action, True, ""
    for line in text.splitlines():
        action = _clean(line)
        if action:
            return action, True, ""
    return "", False, "empty output"


def parse_action(
    text: str,
    admissible: Sequence[str] | None = None,
    style: str = "plain",
    *,
    fallback: str | None = None,
) -> ParseResult:
    """Extract the action from ``text`` and project it onto ``admissible`` (never raises).

    When the output is malformed, the whole text is projected instead (it may still name an
    action); with nothing usable and no admissible actions, ``fallback`` (or ``""``) is used.
    With ``style="index"``, ``admissible`` is the menu in its shown order and answer ``k`` picks
    its ``k``-th entry; a number outside the menu counts as malformed and is projected.

    Example:
        >>> r = parse_action("pick up the red apple", ["pick up apple", "look around"])
        >>> r.action, r.ok
        ('pick up apple', True)
        >>> r = parse_action("I think", ["click[buy now]"], style="tagged")
        >>> r.action, r.ok, r.reason
        ('click[buy now]', False, 'no <action> tag')
        >>> parse_action("<action>search[red mug]</action>", ["search[<query>]"], "tagged").action
        'search[red mug]'
        >>> parse_action("2", ["click[reviews]", "click[buy now]"], "index").action
        'click[buy now]'
    """
    if style not in ACTION_FORMATS:
        raise ValueError(f"style={style!r}; expected one of: {', '.join(ACTION_FORMATS)}")
    try:
        extracted, ok, reason = extract_action(text, style)
    except Exception as exc:  # defensive: model output must never crash a rollout
        extracted, ok, reason = "", False, f"extraction error: {exc}"
    admissible = list(admissible or [])
    if style == "index":
        if ok and 1 <= int(extracted) <= len(admissible):
            action = admissible[int(extracted) - 1]
            return ParseResult(action=action, raw=text or "", extracted=extracted)
        if ok:
            ok, reason = False, f"action number {extracted} is not in the menu 1..{len(admissible)}"
        extracted = ""
    candidate = extracted if extracted else (text or "")
    free = _free_text_action(extracted, admissible)
    if free is not None:
        action, sim = free, 1.0
    elif admissible:
        action, sim = project_action(candidate, admissible)
    else:
        action, sim = (candidate.strip() or (fallback or "")), (1.0 if ok else 0.0)
    return ParseResult(
        action=action, raw=text or "", extracted=extracted, ok=ok, similarity=sim, reason=reason
    )


@dataclass
class ParseStats:
    """Counts of parse outcomes over a run.

    Example:
        >>> s = ParseStats()
        >>> s.add(parse_action("look around", ["look around"]))
        >>> s.add(parse_action("", ["look around"]))
        >>> s.total, s.malformed, s.exact, round(s.malformed_rate, 2)
        (2, 1, 1, 0.5)
    """

    total: int = 0
    malformed: int = 0
    exact: int = 0
    projected: int = 0

    def add(self, result: ParseResult) -> None:
        """Count one parse result."""
        self.total += 1
        if not result.ok:
            self.malformed += 1
        if result.similarity >= 1.0:
            self.exact += 1
        else:
            self.projected += 1

    @property
    def malformed_rate(self) -> float:
        """Fraction of malformed outputs (0 when nothing was parsed)."""
        return self.malformed / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, float]:
        """Counts plus the malformed rate, for logs and leaderboard entries."""
        return {**asdict(self), "malformed_rate": self.malformed_rate}


def style_for(env_name: str) -> str:
    """The output style of ``env_name``: its profile's ``action_format`` (``plain`` if unknown).

    Example:
        >>> style_for("webshop"), style_for("scienceworld")
        ('tagged', 'plain')
    """
    return env_profile(env_name).action_format
