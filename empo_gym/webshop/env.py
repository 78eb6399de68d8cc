"""``empo_gym/WebShop-v0``: WebShop's text mode as a self-contained Gymnasium env.

Pages and their clickables (all lower-case, as the original):

* search page -- ``WebShop [SEP] Instruction: [SEP] <instruction> [SEP] Search``; a search bar;
* results -- ``back to search``, ``< prev`` (page > 1), ``next >`` (more results), product ids;
  top 50 results, 10 per page;
* item page -- ``back to search``, ``< prev`` (to the results), every option value,
  ``description``, ``features``, ``reviews``, ``buy now``;
* description / features / reviews -- ``back to search``, ``< prev`` (to the item page);
* done -- after ``buy now`` the episode terminates with the purchase reward.

Actions are ``search[keywords]`` (only on the search page) and ``click[value]`` with a current
clickable (case-insensitive; leading/trailing blanks ignored). Anything else -- unknown or
missing brackets, an empty or over-long (> 500 characters) query, a clickable of another page,
text with lone surrogates -- is a no-op that sets ``info["invalid_action"]``. Queries in any
script are valid searches.

``info`` on every reset/step: ``admissible_actions`` (``click[<v>]`` for every clickable, plus
the template ``search[<query>]`` on the search page -- replace ``<query>`` with keywords),
``clickables``, ``has_search_bar``, ``task`` ("webshop"), ``instruction``, ``score``
(100 * reward, 0 until purchase), ``success`` (reward == 1), ``success_rule``,
``invalid_action``, ``observation_truncated``, ``goal_index``, ``split``, ``page``,
``selected_options``, ``noun_method``, ``reward_rule``, ``catalogue``; after ``buy now`` also
``reward`` and ``reward_breakdown``; with ``oracle_info=True`` the reset info carries ``oracle``
(goal ASIN, options, a search query that finds the product).

Example:
    >>> import gymnasium as gym, empo_gym, tempfile
    >>> env = gym.make("empo_gym/WebShop-v0", num_products=100, split="test",
    ...                cache_dir=tempfile.mkdtemp())
    >>> obs, info = env.reset(seed=0)
    >>> obs.startswith("WebShop [SEP] Instruction: [SEP] ") and info["has_search_bar"]
    True
    >>> obs, reward, terminated, truncated, info = env.step("click[buy now]")
    >>> info["invalid_action"], reward, terminated
    (True, 0.0, False)
"""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
import numpy as np

from empo_gym.spaces import (
    MAX_ACTION_CHARS,
    MAX_OBSERVATION_CHARS,
    UnicodeText,
    clip_observation,
    has_unencodable,
)
from empo_gym.webshop.goals import normalize_split
from empo_gym.webshop.reward import DEFAULT_REWARD_RULE, check_reward_rule, score_purchase
from empo_gym.webshop.shop import get_shop

SEP = " [SEP] "
PRODUCT_WINDOW = 10
MAX_QUERY_CHARS = 500
BACK_TO_SEARCH, NEXT_PAGE, PREV_PAGE, BUY_NOW = "back to search", "next >", "< prev", "buy now"
SUB_PAGES = ("description", "features", "reviews")
SEARCH_TEMPLATE = "search[<query>]"
SUCCESS_RULE = "webshop:reward==1"
_ACTION = re.compile(r"(\w+)\[(.*)\]", re.DOTALL)


class WebShopEnv(gym.Env[str, str]):
    """WebShop text environment over a generated catalogue or the original data files.

    Args:
        split: ``"train"``, ``"eval"`` (alias ``"dev"``) or ``"test"``.
        num_products: Catalogue size (default 1000, the size published RL results use); with
            ``data_dir``, the first ``num_products`` products, None for all of them.
        catalogue_seed: Seed of the generated catalogue and of prices / price caps.
        data_dir: Folder of the original WebShop files (``items_shuffle*.json``,
            ``items_ins_v2*.json``, ``items_human_ins.json``); None: the generated catalogue.
        goal_source: ``"synthetic"`` (every option combination) or ``"human"``.
        max_steps: Steps before truncation (the original's wrappers use 15).
        reward: ``"original"`` (default: the original's reward, its option-matching quirk
            included, as every published number) or ``"corrected"`` (see
            :mod:`empo_gym.webshop.reward`).
        oracle_info: Put privileged goal data into the reset info (``info["oracle"]``).
        cache_dir: Cache folder override (default ``$EMPO_GYM_CACHE`` or the user cache).
        render_mode: None or ``"ansi"`` (returns the observation).
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        split: str = "test",
        num_products: int | None = 1000,
        catalogue_seed: int = 0,
        data_dir: str | None = None,
        goal_source: str = "synthetic",
        max_steps: int = 15,
        oracle_info: bool = False,
        cache_dir: str | None = None,
        render_mode: str | None = None,
        reward: str = DEFAULT_REWARD_RULE,
    ):
        super().__init__()
        self.split = normalize_split(split)
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be a positive int (default 15), got {max_steps!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.reward_rule = check_reward_rule(reward)
        # what rebuilds the shop after unpickling (the shop itself holds caches pickle refuses)
        self._shop_args = (num_products, catalogue_seed, data_dir, cache_dir, goal_source)
        self.shop = get_shop(*self._shop_args)
        self.goals = self.shop.goals(goal_source)
        self.goal_source = goal_source
        self._split_size = self.goals.split_size(self.split)
        if self._split_size == 0:
            raise ValueError(
                f"split {self.split!r} is empty: the catalogue has {len(self.goals)} "
                f"{goal_source} goals (test = goals[0:500], eval = [500:1500], train = "
                "[1500:]); raise num_products or pick another split"
            )
        self.max_steps = max_steps
        self.oracle_info = bool(oracle_info)
        self.render_mode = render_mode
        self.observation_space = UnicodeText(MAX_OBSERVATION_CHARS)
        self.action_space = UnicodeText(MAX_ACTION_CHARS)
        self._cum_weights: np.ndarray | None = None
        self._goal: dict[str, Any] | None = None
        self._obs = ""
        self._obs_truncated = False

    def __getstate__(self) -> dict[str, Any]:
        """Pickle everything but the shared shop (rebuilt from the cache by ``get_shop``)."""
        state = dict(self.__dict__)
        del state["shop"], state["goals"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the env and fetch its shop (the process-wide one, or from the disk cache)."""
        self.__dict__.update(state)
        self.shop = get_shop(*self._shop_args)
        self.goals = self.shop.goals(self.goal_source)

    @property
    def split_size(self) -> int:
        """Number of goals in this env's split (seeds 0..split_size - 1 enumerate them)."""
        return self._split_size

    # -- episode ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode.

        ``options={"goal_index": i}`` picks goal ``i`` of the split; otherwise ``seed=s`` picks
        goal ``s % split size`` (seeds 0..n-1 enumerate the split's first n goals), and with
        neither a goal is drawn from the env's RNG, weighted like the original.
        """
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {"goal_index"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; expected 'goal_index'")
        if "goal_index" in options:
            position = options["goal_index"]
            if isinstance(position, bool) or not isinstance(position, (int, np.integer)):
                raise ValueError(f"goal_index must be an int, got {position!r}")
            position = int(position)
        elif seed is not None:
            position = int(seed) % self._split_size
        else:
            if self._cum_weights is None:
                self._cum_weights = np.cumsum(self.goals.weights(self.split))
            r = self.np_random.random() * self._cum_weights[-1]
            position = int(np.searchsorted(self._cum_weights, r, side="right"))
            position = min(position, self._split_size - 1)
        self._goal_position = position
        self._goal_index = self.goals.split_goal_index(self.split, position)
        self._goal = self.goals.goal(self._goal_index)
        self._instruction = self._goal["instruction_text"]
        self._page = "search"
        self._keywords = ""
        self._results: list[int] = []
        self._page_no = 1
        self._item: int | None = None
        self._options: dict[str, str] = {}
        self._steps = 0
        self._done = False
        self._reward = 0.0
        self._breakdown: dict[str, Any] | None = None
        self._render()
        info = self._info(invalid=False)
        if self.oracle_info:
            g = self._goal
            cat = self.shop.catalogue
            pi = cat.index_of(g["asin"])
            opts = g["goal_options"]
            product = cat.product(pi) if pi is not None else None
            info["oracle"] = {  # copies: the catalogue's dicts are shared read-only
                "asin": g["asin"],
                "product_index": pi,
                "goal_options": dict(opts) if isinstance(opts, dict) else list(opts),
                "attributes": list(g["attributes"]),
                "price_upper": g["price_upper"],
                "search_query": product["Title"] if product else g["name"],
                "product_options": {k: list(v) for k, v in product["options"].items()}
                if product
                else {},
            }
        return self._obs, info

    def step(self, action: str):
        """Apply ``search[...]`` / ``click[...]``; see the module docstring for the rules."""
        if self._goal is None:
            raise RuntimeError("call reset() before step()")
        invalid = True
        reward = 0.0
        if not self._done:
            self._steps += 1
            invalid = not self._apply(action)
            if self._done:
                reward = self._reward
        self._render()
        terminated = self._done
        truncated = (not terminated) and self._steps >= self.max_steps
        return self._obs, float(reward), terminated, truncated, self._info(invalid)

    def _apply(self, action: Any) -> bool:
        if not isinstance(action, str) or len(action) > MAX_ACTION_CHARS:
            return False
        if has_unencodable(action):  # the empo_gym rule: a no-op flagged invalid_action
            return False
        m = _ACTION.fullmatch(action.strip())
        if m is None:
            return False
        name, arg = m.group(1).lower(), m.group(2).strip()
        if name == "search":
            if self._page != "search" or not arg or len(arg) > MAX_QUERY_CHARS:
                return False
            self._keywords = arg.lower()
            self._results = [int(i) for i in self.shop.index.search(self._keywords)]
            self._page, self._page_no, self._item, self._options = "results", 1, None, {}
            return True
        if name != "click":
            return False
        arg = arg.lower()
        if arg not in self._clickables():
            return False
        if arg == BACK_TO_SEARCH:
            self._page, self._keywords, self._results, self._item = "search", "", [], None
            self._options = {}
        elif self._page == "results":
            if arg == NEXT_PAGE:
                self._page_no += 1
            elif arg == PREV_PAGE:
                self._page_no -= 1
            else:
                self._item = self.shop.catalogue.index_of(arg)
                self._page, self._options = "item", {}
        elif self._page == "item":
            if arg == PREV_PAGE:
                self._page = "results"
            elif arg in SUB_PAGES:
                self._page = arg
            elif arg == BUY_NOW:
                self._buy()
            else:
                for opt_name, values in self._product()["options"].items():
                    if arg in values:
                        self._options[opt_name] = arg
        elif self._page in SUB_PAGES and arg == PREV_PAGE:
            self._page = "item"
        return True

    def _buy(self) -> None:
        cat = self.shop.catalogue
        assert self._item is not None
        bd = score_purchase(
            self._goal,
            cat.product(self._item),
            self._options,
            cat.price(self._item),
            rule=self.reward_rule,
        )
        self._reward = bd.total
        self._breakdown = bd.to_dict() | {
            "asin": cat.asin(self._item),
            "options": dict(self._options),
            "price": cat.price(self._item),
            "goal_asin": self._goal["asin"],
        }
        self._page, self._done = "done", True

    # -- pages -----------------------------------------------------------------------------
    def _product(self) -> dict[str, Any]:
        return self.shop.catalogue.product(self._item)

    def _page_results(self) -> list[int]:
        a = (self._page_no - 1) * PRODUCT_WINDOW
        return self._results[a : a + PRODUCT_WINDOW]

    def _clickables(self) -> list[str]:
        page = self._page
        if page == "search" or page == "done":
            return []
        out = [BACK_TO_SEARCH]
        if page == "results":
            if self._page_no > 1:
                out.append(PREV_PAGE)
            if self._page_no * PRODUCT_WINDOW < len(self._results):
                out.append(NEXT_PAGE)
            cat = self.shop.catalogue
            out += [cat.asin(i).lower() for i in self._page_results()]
        elif page == "item":
            out.append(PREV_PAGE)
            for values in self._product()["options"].values():
                out += values
            out += [*SUB_PAGES, BUY_NOW]
        else:
            out.append(PREV_PAGE)
        return out

    def _render(self) -> None:
        head = ["Instruction:", self._instruction]
        page = self._page
        if page == "search":
            parts = ["WebShop", *head, "Search"]
        elif page == "results":
            parts = [*head, "Back to Search"]
            if self._page_no > 1:
                parts.append("< Prev")
            parts.append(f"Page {self._page_no} (Total results: {len(self._results)})")
            if self._page_no * PRODUCT_WINDOW < len(self._results):
                parts.append("Next >")
            cat = self.shop.catalogue
            for i in self._page_results():
                p = cat.product(i)
                parts += [p["asin"], p["Title"], p["Price"]]
        elif page == "item":
            p = self._product()
            parts = [*head, "Back to Search", "< Prev"]
            for name, values in p["options"].items():
                parts += [name, *values]
            parts += [
                p["Title"],
                f"Price: {p['Price']}",
                "Rating: N.A.",  # the original disables ratings
                "Description",
                "Features",
                "Reviews",
                "Buy Now",
            ]
        elif page in SUB_PAGES:
            p = self._product()
            parts = [*head, "Back to Search", "< Prev"]
            if page == "description":
                parts.append(p["Description"] or "")
            elif page == "features":
                parts += list(p["BulletPoints"])
            else:
                for r in p["Reviews"]:
                    parts += [
                        str(r.get("title", "")),
                        str(r.get("score", "")),
                        str(r.get("body", "")),
                    ]
        else:
            parts = [
                "Thank you for shopping with us!",
                "Your score (min 0.0, max 1.0)",
                f"{self._reward}",
            ]
        self._obs, self._obs_truncated = clip_observation(SEP.join(parts), self.observation_space)

    def _info(self, invalid: bool) -> dict[str, Any]:
        clickables = self._clickables()
        admissible = ([SEARCH_TEMPLATE] if self._page == "search" else []) + [
            f"click[{c}]" for c in clickables
        ]
        info: dict[str, Any] = {
            "admissible_actions": admissible,
            "clickables": clickables,
            "has_search_bar": self._page == "search",
            "task": "webshop",
            "instruction": self._instruction,
            "score": 100.0 * self._reward if self._done else 0.0,
            "success": bool(self._done and self._reward == 1.0),
            "success_rule": SUCCESS_RULE,
            "invalid_action": bool(invalid),
            "observation_truncated": self._obs_truncated,
            "goal_index": self._goal_position,
            "split": self.split,
            "page": self._page,
            "selected_options": dict(self._options),
            "noun_method": self.shop.noun_method,
            "reward_rule": f"webshop:{self.reward_rule}",
            "catalogue": self.shop.describe(),
        }
        if self._done:
            info["reward"] = self._reward
            info["reward_breakdown"] = self._breakdown
        return info

    def render(self) -> str | None:
        """The current observation (``render_mode="ansi"``)."""
        return self._obs if self.render_mode == "ansi" else None
