import torch
from agents.training.config import EMPOConfig as GRPOConfig
from agents.training.trainer import engine_rollout_fn, train
from tests.training.test_engine_integration import _MemberBonus, byte_policy  # noqa: F401


def test_on_policy_ratio_is_one(tmp_path, byte_policy):
    from tests.llm.toy_env import ToyTextEnv

    envs = [ToyTextEnv() for _ in range(4)]
    rollout = engine_rollout_fn(envs, "toy", max_turns=2)
    cfg = GRPOConfig(iterations=4, tasks_per_iter=2, group_size=4, low_prob_threshold=-50.0,
                     lr=1e-2, micro_batch_size=64, checkpoint_every=0, output_dir=str(tmp_path), memory_prob=0.0)
    class Bonus(_MemberBonus):
        pass
    res = train(cfg, byte_policy, rollout, [3, 14], memory=Bonus())
    for r in res.history:
        print(r["ratio_mean"], r["ratio_max"], r["clip_frac"], r["steps"], r["grad_norm"])
