"""Adapters that hand empo-gym's envs to other libraries' trainers (:mod:`.trl`: TRL's
``GRPOTrainer(environment_factory=...)``). They sit on the envs' layer: no agent code."""
