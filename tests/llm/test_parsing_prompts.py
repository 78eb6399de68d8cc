"""Action extraction, Jaccard projection and the per-env prompts."""

from __future__ import annotations

import pytest

from empo_gym.agents.llm.parsing import (
    ParseStats,
    extract_action,
    jaccard,
    parse_action,
    project_action,
)
from empo_gym.agents.llm.prompts import (
    EpisodeState,
    build_prompt,
    render_tip_block,
    scienceworld_messages,
    webshop_messages,
)
from empo_gym.memory.tips import TIP_BLOCK_OPEN

SW_ACTIONS = [
    "look around",
    "open door to kitchen",
    "go to kitchen",
    "pick up thermometer",
    "focus on red apple",
    "focus on green apple",
]
WS_ACTIONS = ["search[<your query>]", "click[b0123]", "click[buy now]", "click[< prev]"]


@pytest.mark.parametrize(
    ("raw", "want", "ok"),
    [
        ("go to kitchen", "go to kitchen", True),
        ("Go To Kitchen.", "go to kitchen", True),
        ("Action: open the door to the kitchen\nThen I will...", "open door to kitchen", True),
        ("> pick up the thermometer", "pick up thermometer", True),
        ("`look around`", "look around", True),
        ("focus on green apple please", "focus on green apple", True),
        ("", "look around", False),  # empty: falls back to the first admissible action
        ("\n\n   \n", "look around", False),
        ("<action>go to kitchen</action>", "go to kitchen", True),
    ],
)
def test_scienceworld_plain_parsing(raw, want, ok):
    r = parse_action(raw, SW_ACTIONS, "plain")
    assert (r.action, r.ok) == (want, ok)
    assert r.raw == raw


@pytest.mark.parametrize(
    ("raw", "want", "ok"),
    [
        ("<think>I should buy</think><action>click[buy now]</action>", "click[buy now]", True),
        ("<think>x</think>\n<action>\nclick[Buy Now]\n</action>", "click[buy now]", True),
        (
            "<think>find mug</think><action>search[red ceramic mug]</action>",
            "search[red ceramic mug]",
            True,
        ),
        ("<action>click[b0123]</action> <action>click[buy now]</action>", "click[buy now]", True),
        ("<think>no closing tag<action>click[b0123]", "click[b0123]", False),
        ("I will click buy now", "click[buy now]", False),
        ("<action></action>", "search[<your query>]", False),
        ("<think>" * 50, "search[<your query>]", False),
        ("\x00\uffff 🤖 <action>" + "a" * 5000, "search[<your query>]", False),
    ],
)
def test_webshop_tagged_parsing(raw, want, ok):
    r = parse_action(raw, WS_ACTIONS, "tagged")
    assert (r.action, r.ok) == (want, ok)
    if not ok:
        assert r.reason


def test_projection_is_jaccard_over_word_sets():
    assert jaccard("pick up the red apple", "focus on red apple") == pytest.approx(2 / 7)
    action, sim = project_action("focus on the red apple", SW_ACTIONS)
    assert action == "focus on red apple" and sim == pytest.approx(0.8)
    assert project_action("anything", []) == ("anything", 0.0)


def test_no_admissible_actions_keeps_extracted_text_or_fallback():
    assert parse_action("open door", None).action == "open door"
    r = parse_action("", None, fallback="look around")
    assert r.action == "look around" and not r.ok


def test_bad_style_is_rejected_with_expected_values():
    with pytest.raises(ValueError, match="expected one of: plain, tagged, index"):
        parse_action("x", [], "json")


def test_parse_stats_counts_malformed():
    stats = ParseStats()
    for raw in ["go to kitchen", "", "go kitchen now"]:
        stats.add(parse_action(raw, SW_ACTIONS))
    assert stats.as_dict() == {
        "total": 3,
        "malformed": 1,
        "exact": 1,
        "projected": 2,
        "malformed_rate": pytest.approx(1 / 3),
    }


def test_extract_action_plain_uses_first_line():
    assert extract_action("look around\nopen door", "plain") == ("look around", True, "")


def _state():
    s = EpisodeState.start(
        "You are in the hallway.",
        {
            "task": "Your task is to find a(n) living thing.",
            "inventory": "In your inventory: a key",
            "admissible_actions": WS_ACTIONS,
        },
    )
    for k in range(12):
        s.advance(f"look around {k}", f"obs {k}", s.info)
    return s


def test_scienceworld_prompt_contents():
    s = _state()
    content = scienceworld_messages(s, max_history=3)[-1]["content"]
    assert "Your task is to find a(n) living thing." in content
    assert "focus on OBJ" in content and "Warning" in content
    assert "In your inventory: a key" in content
    assert "look around 11" in content and "look around 8" not in content
    assert "Step 12:" in content and "step 13" in content


def test_webshop_prompt_contents():
    content = webshop_messages(_state())[-1]["content"]
    assert "<think>" in content and "<action>" in content and "click[buy now]" in content


@pytest.mark.parametrize("env", ["scienceworld", "webshop", "toy"])
def test_tips_are_kept_apart_from_messages(env):
    s = _state()
    plain, tipped = build_prompt(env, s), build_prompt(env, s, ["tip one", "tip two"])
    assert plain.messages == tipped.messages
    last = tipped.with_tips()[-1]["content"]
    block = TIP_BLOCK_OPEN + "tip one\ntip two\n</tip>"
    assert last == plain.messages[-1]["content"] + "\n\n" + block
    assert tipped.tips == ["tip one", "tip two"]
    assert plain.with_tips() == plain.messages


def test_tip_block_accepts_joined_or_rendered_tips():
    block = render_tip_block(["a", "b"])
    assert render_tip_block("a\nb") == block
    assert render_tip_block(block) == block
    assert render_tip_block(None) == "" and render_tip_block("  ") == ""
    from empo_gym.agents.llm.prompts import make_prompt

    assert make_prompt([{"role": "user", "content": "x"}], block).tips == ["a", "b"]


def test_tip_block_matches_the_memory_wrapper():
    tips_mod = pytest.importorskip("empo_gym.memory.tips")
    assert render_tip_block(["m1", "m2"]) == tips_mod.render_tip_block(["m1", "m2"])


def test_prompts_use_the_memory_modules_tip_block_format():
    from empo_gym.agents.llm import prompts
    from empo_gym.memory import compose_prompt, tips

    assert prompts.render_tip_block is tips.render_tip_block  # one renderer
    assert not hasattr(prompts, "TIP_SEPARATOR") and not hasattr(prompts, "TIP_HEADER")
    p = prompts.make_prompt([{"role": "user", "content": "x"}], ["m1", "m2"])
    assert p.tip_text == tips.TIP_BLOCK_GAP + tips.render_tip_block(["m1", "m2"])
    # the memory wrapper's observation reads exactly as the LLM prompt's user message
    obs = {
        "observation": "x",
        "tips": tips.join_tips(["m1", "m2"]),
        "tip_block": tips.render_tip_block(["m1", "m2"]),
    }
    assert compose_prompt(obs) == p.with_tips()[-1]["content"]
    joined = prompts.make_prompt([{"role": "user", "content": "x"}], obs["tips"])
    assert joined.tip_text == p.tip_text


def test_tip_request():
    # the one tip prompt (the memory module's), for memory-only and training alike
    from empo_gym.memory import Episode, Step, build_tip_prompt

    ep = Episode(_state().instruction, "s", [Step("hall", "look around")], final_score=42.0)
    assert "42/100" in build_tip_prompt(ep)


def test_every_profile_prompt_style_has_a_builder():
    from empo_gym.agents.llm.prompts import PROMPT_BUILDERS
    from empo_gym.registry import PROMPT_STYLES

    assert set(PROMPT_BUILDERS) == set(PROMPT_STYLES)


def test_prompt_and_answer_format_come_from_the_env_profile(monkeypatch):
    from empo_gym import registry
    from empo_gym.agents.llm.parsing import style_for

    monkeypatch.setitem(
        registry._ENVS,
        "profiled",
        registry.EnvInfo(
            name="profiled",
            gym_id="x/Profiled-v0",
            description="test",
            splits=("train", "test"),
            default_split="test",
            task_kwarg=None,
            prompt_style="webshop",
            action_format="tagged",
        ),
    )
    s = EpisodeState.start("page", {"instruction": "buy a mug", "admissible_actions": ["a"]})
    assert "<action>" in build_prompt("profiled", s).messages[-1]["content"]
    assert style_for("profiled") == "tagged" and style_for("unregistered") == "plain"


def test_generic_prompt_without_history_shows_none() -> None:
    """max_history=0 means no history (``history[-0:]`` would be all of it)."""
    from empo_gym.agents.llm.prompts import EpisodeState, generic_messages

    s = EpisodeState.start("hall", {"task": "t"})
    s.advance("go north", "attic", {"task": "t"})
    assert "hall" not in generic_messages(s, max_history=0)[0]["content"]
    assert "hall" in generic_messages(s, max_history=1)[0]["content"]


# a WebShop item page as the env renders it (options, then title, price and buttons)
ITEM_OBS = (
    "Instruction: [SEP] i want a silver mug, and price lower than 30.00 dollars [SEP] "
    "Back to Search [SEP] < Prev [SEP] color [SEP] silver [SEP] red [SEP] Steel Mug [SEP] "
    "Price: $12.99 [SEP] Rating: 4.1 [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now"
)
ITEM_ACTIONS = [
    "click[back to search]",
    "click[< prev]",
    "click[silver]",
    "click[red]",
    "click[description]",
    "click[features]",
    "click[reviews]",
    "click[buy now]",
]


def test_webshop_menu_numbers_the_admissible_actions_buy_now_first():
    from empo_gym.agents.llm.prompts import webshop_menu

    info = {"instruction": "i want a silver mug, and price lower than 30.00 dollars"}
    state = EpisodeState.start(
        ITEM_OBS, {**info, "admissible_actions": ITEM_ACTIONS, "page": "item"}
    )
    prompt = build_prompt("webshop", state, style="webshop-menu")
    menu = ["click[buy now]", *ITEM_ACTIONS[:-1]]  # the env's order, buy now moved first
    assert prompt.actions == menu == [m.action for m in webshop_menu(state)]
    text = prompt.messages[-1]["content"]
    assert "Page: product: Steel Mug ($12.99)" in text
    assert "1. buy now" in text and "2. back to search" in text and "4. option: silver" in text
    assert text.endswith("Answer with the number of one action.")
    # the search entry carries the instruction without its price clause
    search = EpisodeState.start(
        "WebShop [SEP] Search", {**info, "admissible_actions": ["search[<query>]"]}
    )
    assert build_prompt("webshop", search, style="webshop-menu").actions == [
        "search[i want a silver mug]"
    ]
    # results: a product's entry shows its title and price
    results_obs = (
        "Instruction: [SEP] x [SEP] Back to Search [SEP] Page 1 (Total results: 1) [SEP] "
        "B0ABCDEFGH [SEP] Steel Mug [SEP] $12.99"
    )
    results = EpisodeState.start(
        results_obs,
        {
            **info,
            "page": "results",
            "admissible_actions": ["click[back to search]", "click[b0abcdefgh]"],
        },
    )
    text = build_prompt("webshop", results, style="webshop-menu").messages[-1]["content"]
    assert "2. product: Steel Mug ($12.99)" in text and "Page 1 (Total results: 1)" in text


@pytest.mark.parametrize(
    ("raw", "want", "ok"),
    [
        ("8", "click[buy now]", True),
        ("3. option: silver", "click[silver]", True),
        (" 1\n", "click[back to search]", True),
        ("12", "click[back to search]", False),  # not in the menu: projected, malformed
        ("buy now please", "click[buy now]", False),  # no number: the text is projected
        ("", "click[back to search]", False),  # nothing to project onto: the first entry
    ],
)
def test_index_answers_pick_a_menu_entry(raw, want, ok):
    result = parse_action(raw, ITEM_ACTIONS, "index")
    assert (result.action, result.ok) == (want, ok)


def test_the_actor_reads_an_index_answer_against_the_menu_it_showed():
    from empo_gym.agents.llm.acting import Actor
    from empo_gym.agents.llm.policy import Generation, SamplingConfig

    class Says:  # a text-only policy that always answers "8"
        name, sampling = "says", SamplingConfig()

        def generate(self, conversations, sampling=None):
            return [Generation([], [], [], text="8") for _ in conversations]

        def close(self):
            pass

    info = {"instruction": "a mug", "admissible_actions": ITEM_ACTIONS, "page": "item"}
    state = EpisodeState.start(ITEM_OBS, info)
    actor = Actor(Says(), "webshop", prompt_style="webshop-menu", action_format="index")
    # entry 8 of the menu shown (buy now moved first), not of the env's list
    assert [d.action for d in actor.decide([state], [None])] == ["click[reviews]"]
    # the env profile's own format (tagged) would have projected "8" instead
    assert Actor(Says(), "webshop").style == "tagged"
