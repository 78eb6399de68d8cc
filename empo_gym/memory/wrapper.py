"""EMPO² memory around any empo_gym text env, in process.

:class:`MemoryWrapper` wraps one env; :class:`MemoryVectorWrapper` wraps a vector env and keeps
ONE store for all sub-envs in the main process (batched retrieval and writing; an LLM tip writer
runs there too). Both turn the text observation into the dict of
:mod:`empo_gym.memory.observation` (``observation``, ``tips``, ``tip_block``), so a trainer
strips tips exactly by using ``obs["observation"]`` (see
:func:`~empo_gym.memory.observation.compose_prompt`).
They also write memory (a tip and one entry per step after every training episode) and may add
a novelty bonus to the reward, so they are full wrappers, not observation wrappers.
All three fields are :class:`~empo_gym.spaces.UnicodeText`, which has a shared-memory codec, so
``gymnasium.make_vec(..., vectorization_mode="async", wrappers=[MemoryWrapper])`` works with the
default ``shared_memory=True`` and any Unicode text. There each worker process holds its own
store; to share memory between workers pass a file path as ``store``
(``wrappers=[functools.partial(MemoryWrapper, store="mem.safetensors")]``): every finished
episode is merged into the file under a file lock and the worker adopts what the others wrote.
:class:`MemoryVectorWrapper` shares one in-process store without files.

Per episode, ``reset(options={"use_memory": bool, "eval": bool, "memory_partition": str})`` decides
whether tips are retrieved (training mode writes a tip after every episode either way, as
EMPO² does); in evaluation mode nothing is written to memory and no novelty state is kept. The
intrinsic novelty reward of memory episodes is reported in ``info["intrinsic_reward"]`` and is
added to the env reward only with ``add_intrinsic_to_reward=True``. The remaining options go to
the wrapped env.

Episodes are recorded by an :class:`~empo_gym.memory.recorder.EpisodeRecorder`: each state is
embedded once, and that vector serves retrieval, novelty and the stored key. A trainer that
writes tips itself passes one ``recorder`` to all its wrappers: they then queue their finished
episodes there (ids in reset's ``info["memory_episode"]``) and the trainer flushes them.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space
from gymnasium.wrappers import TimeLimit

from empo_gym.deprecation import deprecated_aliases
from empo_gym.memory.embedders import Embedder
from empo_gym.memory.episode import PARTITION_KEY, memory_partition
from empo_gym.memory.novelty import NoveltyReward
from empo_gym.memory.observation import (
    EVAL_OPTION,
    LEGACY_PARTITION_OPTION,
    MEMORY_OPTIONS,
    OBSERVATION_KEY,
    PARTITION_OPTION,
    TIP_BLOCK_KEY,
    TIPS_KEY,
    USE_MEMORY_OPTION,
    compose_observation,
    compose_prompt,
    memory_observation_space,
)
from empo_gym.memory.recorder import EpisodeRecorder, episode_entries
from empo_gym.memory.session import MemorySession
from empo_gym.memory.store import MemoryFileError, MemoryStore
from empo_gym.memory.tips import TemplateTipWriter, TipWriter

__all__ = [
    "MEMORY_OPTIONS",
    "MemoryObservationWrapper",
    "MemoryVectorWrapper",
    "MemoryWrapper",
    "compose_prompt",
]

#: Default maximum length of the ``tips`` field (top-10 memories of < 100 words fit easily).
MAX_TIPS_CHARS = 16_000

__getattr__ = deprecated_aliases(
    __name__,
    {
        "default_slot": ("empo_gym.memory.memory_partition", memory_partition),
        "trajectory_entries": ("empo_gym.memory.episode_entries", episode_entries),
    },
)


@dataclass(eq=False)
class _Lane:
    partition: str = ""
    use_memory: bool = False
    training: bool = True
    episode: int | None = None  # the recorder's id while the episode is recorded
    active: bool = False


class _MemoryCore:
    """Memory logic shared by the single-env and vector wrappers (batched over lanes)."""

    def __init__(
        self,
        store: MemoryStore | str | os.PathLike[str] | None,
        embedder: Embedder | str,
        tip_writer: TipWriter | None,
        novelty: NoveltyReward | bool,
        partition_fn: Callable[[dict[str, Any]], str] | None,
        use_memory: bool,
        training: bool,
        add_intrinsic_to_reward: bool,
        max_tips_chars: int,
        write_tips: bool = True,
        recorder: EpisodeRecorder | None = None,
    ):
        store_path = None
        if recorder is not None and not isinstance(recorder, EpisodeRecorder):
            raise TypeError(f"recorder must be an EpisodeRecorder, got {type(recorder).__name__}")
        if store is None:
            store = recorder.store if recorder is not None else MemoryStore(embedder)
        elif isinstance(store, (str, os.PathLike)):
            store_path = store
            try:
                store = MemoryStore.load(store, embedder)
            except MemoryFileError:
                if os.path.exists(store):
                    raise
                store = MemoryStore(embedder)
        if not isinstance(store, MemoryStore):
            raise TypeError(f"store must be a MemoryStore or a file path, got {type(store)}")
        if recorder is not None:
            if store is not recorder.store:
                raise ValueError(
                    "store is not the recorder's store; pass the recorder alone (its store is "
                    "used) or the same MemoryStore object to both"
                )
            if not write_tips:
                raise ValueError(
                    "write_tips=False with a recorder: a recorder's owner writes the tips; pass "
                    "one or the other"
                )
        self.store = store
        self.tip_writer: TipWriter = TemplateTipWriter() if tip_writer is None else tip_writer
        if not callable(self.tip_writer):
            raise TypeError("tip_writer must be callable (list[Episode] -> list[str])")
        if novelty is True:
            novelty = NoveltyReward(self.store.embedder)
        elif novelty is False or novelty is None:
            novelty = None
        elif not isinstance(novelty, NoveltyReward):
            raise TypeError(f"novelty must be a bool or a NoveltyReward, got {novelty!r}")
        self.novelty: NoveltyReward | None = novelty
        self.partition_fn = memory_partition if partition_fn is None else partition_fn
        self.use_memory = bool(use_memory)
        self.training = bool(training)
        self.add_intrinsic_to_reward = bool(add_intrinsic_to_reward)
        self.max_tips_chars = int(max_tips_chars)
        self.write_tips = bool(write_tips)
        #: True: episodes are queued in a recorder its owner flushes; False: written at once.
        self.deferred = recorder is not None
        self.recorder = (
            recorder if recorder is not None else EpisodeRecorder(store, store_path=store_path)
        )
        #: Drives the recorder: embed each state once, record it, retrieve its tips.
        self.session = MemorySession(self.recorder, max_tips_chars=self.max_tips_chars)
        #: Seconds spent in memory work (retrieval, novelty, tip writing, storing).
        self.memory_seconds = 0.0

    # -- helpers ----------------------------------------------------------------------------
    def _scores_novelty(self, ln: _Lane) -> bool:
        return self.novelty is not None and ln.use_memory and ln.training

    def _novelty(self, lanes: list[_Lane], states: list[str], vecs: np.ndarray) -> np.ndarray:
        out = np.zeros(len(lanes), dtype=np.float32)
        if self.novelty is None:
            return out
        same = self.novelty.embedder is self.store.embedder
        for i, (ln, s) in enumerate(zip(lanes, states, strict=True)):
            if self._scores_novelty(ln):
                out[i] = self.novelty(ln.partition, [s], vecs[i : i + 1] if same else None)[0]
        return out

    # -- episode protocol -------------------------------------------------------------------
    def split_options(self, options: dict[str, Any] | None) -> tuple[dict[str, Any], dict]:
        options = dict(options or {})
        if LEGACY_PARTITION_OPTION in options:
            warnings.warn(
                f"reset option {LEGACY_PARTITION_OPTION!r} is deprecated; use {PARTITION_OPTION!r}",
                DeprecationWarning,
                stacklevel=4,
            )
            legacy = options.pop(LEGACY_PARTITION_OPTION)
            options.setdefault(PARTITION_OPTION, legacy)
        mine = {k: options.pop(k) for k in MEMORY_OPTIONS if k in options}
        for k in (USE_MEMORY_OPTION, EVAL_OPTION):
            if k in mine and not isinstance(mine[k], (bool, np.bool_)):
                raise TypeError(f"reset option {k!r} must be a bool, got {mine[k]!r}")
        if PARTITION_OPTION in mine and not isinstance(mine[PARTITION_OPTION], str):
            raise TypeError(
                f"reset option {PARTITION_OPTION!r} must be a str, got {mine[PARTITION_OPTION]!r}"
            )
        return mine, options

    def leave(self, lanes: list[_Lane]) -> None:
        """Abandon the lanes' unfinished episodes: they write nothing (a recorder shared with a
        trainer keeps them for it: its rollouts may end episodes the env did not)."""
        for ln in lanes:
            if ln.active and ln.episode is not None:
                if self.deferred:
                    self.session.stop(ln.episode)
                else:
                    self.session.drop(ln.episode)
            ln.active, ln.episode = False, None

    def begin(
        self, lanes: list[_Lane], obs: list[str], infos: list[dict[str, Any]], mine: list[dict]
    ) -> tuple[list[list[str]], np.ndarray]:
        t0 = time.perf_counter()
        self.leave(lanes)
        obs = [str(o) for o in obs]
        for ln, info, m in zip(lanes, infos, mine, strict=True):
            ln.use_memory = bool(m.get(USE_MEMORY_OPTION, self.use_memory))
            ln.training = not bool(m.get(EVAL_OPTION, not self.training))
            ln.partition = (
                m[PARTITION_OPTION] if PARTITION_OPTION in m else str(self.partition_fn(info))
            )
            if ln.training and self.write_tips:
                task = str(info.get("instruction") or info.get("task") or ln.partition)
                ln.episode = self.session.start(
                    task=task, partition=ln.partition, used_memory=ln.use_memory
                )
            ln.active = True
        tips, vecs = self.session.look(
            obs,
            episodes=[ln.episode for ln in lanes],
            partitions=[ln.partition for ln in lanes],
            retrieve=[ln.use_memory for ln in lanes],
        )
        self._novelty(lanes, obs, vecs)  # the start state counts as seen
        self.memory_seconds += time.perf_counter() - t0
        return tips, np.zeros(len(lanes), dtype=np.float32)

    def advance(
        self,
        lanes: list[_Lane],
        actions: list[str],
        obs: list[str],
        rewards: Sequence[float],
        dones: Sequence[bool],
        infos: list[dict[str, Any]],
    ) -> tuple[list[list[str]], np.ndarray, list[str | None]]:
        t0 = time.perf_counter()
        obs = [str(o) for o in obs]
        for ln, a, r, info in zip(lanes, actions, rewards, infos, strict=True):
            if ln.episode is not None and not self.session.is_running(ln.episode):
                ln.episode = None  # a trainer claimed it (its rollout ended the episode)
            if ln.episode is not None:
                self.session.record(
                    ln.episode, str(a), reward=float(r), score=float(info.get("score", 0.0))
                )
        # the state after the last step is never a step's state: embedded for novelty only
        tips, vecs = self.session.look(
            obs,
            episodes=[None if d else ln.episode for ln, d in zip(lanes, dones, strict=True)],
            partitions=[ln.partition for ln in lanes],
            retrieve=[ln.use_memory and not d for ln, d in zip(lanes, dones, strict=True)],
            embed=[d and self._scores_novelty(ln) for ln, d in zip(lanes, dones, strict=True)],
        )
        intrinsic = self._novelty(lanes, obs, vecs)
        ended = [i for i, d in enumerate(dones) if d]
        written = self.finish([lanes[i] for i in ended], [infos[i] for i in ended])
        tips_written: list[str | None] = [None] * len(lanes)
        for i, tip in zip(ended, written, strict=True):
            tips_written[i] = tip
        self.memory_seconds += time.perf_counter() - t0
        return tips, intrinsic, tips_written

    def finish(self, lanes: list[_Lane], infos: list[dict[str, Any]]) -> list[str | None]:
        """End episodes; unless a trainer owns the recorder, write one tip each (one writer
        call) and store one entry per step."""
        done = []
        for ln, info in zip(lanes, infos, strict=True):
            ep = None
            if ln.episode is not None:
                ep = self.session.end(
                    ln.episode,
                    score=float(info.get("score", 0.0)),
                    success=bool(info.get("success", False)),
                )
            ln.active, ln.episode = False, None
            done.append(ep)
        if not self.deferred:
            self.session.flush(self.tip_writer, [ep for ep in done if ep is not None])
        return [ep.tip if ep is not None else None for ep in done]


#: Frames above MemoryWrapper.reset searched for a TimeLimit (a few wrappers and checkers).
_CALLER_FRAMES = 12


def _wraps(outer: gym.Env[Any, Any], inner: gym.Env[Any, Any]) -> bool:
    env = outer
    while isinstance(env, gym.Wrapper):
        env = env.env
        if env is inner:
            return True
    return False


def _refuse_outer_time_limit(wrapper: MemoryWrapper) -> None:
    """Raise when a ``TimeLimit`` wraps ``wrapper`` (found among the calling wrappers).

    Its truncation happens outside the memory wrapper, which then never sees the episode end
    and stores nothing; a wrapper cannot see what wraps it, so the callers' frames are read.
    """
    frame = sys._getframe(2)
    for _ in range(_CALLER_FRAMES):
        if frame is None:
            return
        caller = frame.f_locals.get("self")
        if isinstance(caller, TimeLimit) and _wraps(caller, wrapper):
            raise ValueError(
                "TimeLimit wraps the MemoryWrapper: the episodes it truncates never end for the "
                "memory wrapper, so no memory would be stored. Put the TimeLimit inside: "
                "MemoryWrapper(TimeLimit(env, max_episode_steps=n)) (gym.make(id, "
                "max_episode_steps=n) already does), then wrap that with MemoryWrapper"
            )
        frame = frame.f_back


class MemoryWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """EMPO² memory around one empo_gym text env (see the module docstring).

    Args:
        env: A text env (observation space UnicodeText; info has ``task``, ``score``,
            ``success``).
        store: A :class:`MemoryStore`, a memory file path (loaded when it exists; every finished
            training episode is then merged into it under a file lock, adopting entries other
            processes merged), or None for a new store (the recorder's, with ``recorder``).
        embedder: Embedder (or name) for a new store; ignored when ``store`` is a store.
        tip_writer: ``list[Episode] -> list[str]``; default :class:`TemplateTipWriter`. An
            LLM agent passes its own (see :func:`~empo_gym.memory.tips.build_tip_prompt`).
        novelty: True (a :class:`NoveltyReward` on the store's embedder), False, or an instance.
        partition_fn: ``info -> memory partition`` (default
            :func:`~empo_gym.memory.episode.memory_partition`).
        use_memory: Default of the ``use_memory`` reset option.
        training: False = evaluation mode (default of the ``eval`` reset option, negated).
        add_intrinsic_to_reward: Add ``info["intrinsic_reward"]`` to the returned reward.
        max_tips_chars: Bound of the ``tips`` field (whole memories that do not fit are dropped).
        write_tips: False: never record or write episodes (retrieval and novelty only).
        recorder: An :class:`~empo_gym.memory.recorder.EpisodeRecorder` shared with a trainer:
            finished training episodes are queued there, not written (its owner calls
            :meth:`~empo_gym.memory.recorder.EpisodeRecorder.flush` or claims them by the
            ``info["memory_episode"]`` of ``reset``); the store is the recorder's.

    Example:
        >>> import empo_gym.memory.wrapper as w
        >>> from empo_gym.toy import ToyTextEnv
        >>> env = w.MemoryWrapper(ToyTextEnv())
        >>> obs, info = env.reset(seed=0, options={"use_memory": True})
        >>> sorted(obs), obs["tips"], info["intrinsic_reward"]
        (['observation', 'tip_block', 'tips'], '', 0.0)
        >>> for a in ["go north", "take key", "open chest"]:
        ...     obs, r, term, trunc, info = env.step(a)
        >>> term, len(env.store)
        (True, 3)
        >>> obs, info = env.reset(seed=0, options={"use_memory": True})
        >>> len(info["tips"]) > 0, obs["observation"] == "You are in a hall. Exits: north."
        (True, True)
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        store: MemoryStore | str | os.PathLike[str] | None = None,
        *,
        embedder: Embedder | str = "hashing",
        tip_writer: TipWriter | None = None,
        novelty: NoveltyReward | bool = True,
        partition_fn: Callable[[dict[str, Any]], str] | None = None,
        use_memory: bool = False,
        training: bool = True,
        add_intrinsic_to_reward: bool = False,
        max_tips_chars: int = MAX_TIPS_CHARS,
        write_tips: bool = True,
        recorder: EpisodeRecorder | None = None,
    ):
        # recorded so env.spec can rebuild the wrapper (check_env, make_vec); a store object
        # is shared with the rebuilt wrapper
        # (set directly: RecordConstructorArgs.__init__ deep-copies, which would copy the store
        # and fail on model-backed embedders)
        self._saved_kwargs = dict(
            store=store,
            embedder=embedder,
            tip_writer=tip_writer,
            novelty=novelty,
            partition_fn=partition_fn,
            use_memory=use_memory,
            training=training,
            add_intrinsic_to_reward=add_intrinsic_to_reward,
            max_tips_chars=max_tips_chars,
            write_tips=write_tips,
            recorder=recorder,
        )
        gym.Wrapper.__init__(self, env)
        self.core = _MemoryCore(
            store,
            embedder,
            tip_writer,
            novelty,
            partition_fn,
            use_memory,
            training,
            add_intrinsic_to_reward,
            max_tips_chars,
            write_tips,
            recorder,
        )
        self.observation_space = memory_observation_space(env.observation_space, max_tips_chars)
        self._lane = _Lane()

    @property
    def store(self) -> MemoryStore:
        """The tip memory."""
        return self.core.store

    @property
    def recorder(self) -> EpisodeRecorder:
        """The recorder of this wrapper's episodes (shared when one was passed)."""
        return self.core.recorder

    @property
    def memory_seconds(self) -> float:
        """Total seconds spent in memory work by this wrapper."""
        return self.core.memory_seconds

    def _info(self, info: dict[str, Any], tips: list[str], r_int: float) -> dict[str, Any]:
        info = dict(info)
        info.update(
            tips=tips,
            intrinsic_reward=r_int,
            use_memory=self._lane.use_memory,
            **{PARTITION_KEY: self._lane.partition},
        )
        return info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """Reset the env; memory options are consumed here (see the module docstring)."""
        _refuse_outer_time_limit(self)
        mine, rest = self.core.split_options(options)
        self.core.leave([self._lane])  # an unfinished episode writes nothing
        obs, info = self.env.reset(seed=seed, options=rest or None)
        tips, _ = self.core.begin([self._lane], [obs], [info], [mine])
        info = self._info(info, tips[0], 0.0)
        if self._lane.episode is not None:  # reset only: step infos stay deterministic
            info["memory_episode"] = self._lane.episode
        return compose_observation(obs, tips[0]), info

    def step(self, action: Any) -> tuple[dict[str, str], Any, bool, bool, dict[str, Any]]:
        """Step the env; record the step; retrieve tips for the next state."""
        if not self._lane.active:
            raise RuntimeError("call reset() before step() (the episode ended or never started)")
        obs, reward, terminated, truncated, info = self.env.step(action)
        done = bool(terminated or truncated)
        tips, r_int, written = self.core.advance(
            [self._lane], [action], [obs], [float(reward)], [done], [info]
        )
        info = self._info(info, tips[0], float(r_int[0]))
        if written[0] is not None:
            info["memory_tip"] = written[0]
        if self.core.add_intrinsic_to_reward:
            reward = float(reward) + float(r_int[0])
        return compose_observation(obs, tips[0]), reward, terminated, truncated, info


class MemoryObservationWrapper(MemoryWrapper):
    """Deprecated name of :class:`MemoryWrapper` (same arguments).

    The wrapper writes memory and may change the reward, so its name no longer says
    "observation wrapper".

    Example:
        >>> import warnings
        >>> from empo_gym.toy import ToyTextEnv
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     env = MemoryObservationWrapper(ToyTextEnv())
        >>> isinstance(env, MemoryWrapper), [w.category.__name__ for w in caught]
        (True, ['DeprecationWarning'])
    """

    def __init__(self, env: gym.Env[Any, Any], *args: Any, **kwargs: Any):
        warnings.warn(
            "MemoryObservationWrapper is deprecated; use empo_gym.memory.MemoryWrapper "
            "(same arguments)",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(env, *args, **kwargs)


def _unbatch_infos(infos: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Per-sub-env infos from a vector env's batched infos.

    A dict-valued entry (WebShop's ``reward_breakdown``) is batched by Gymnasium as a nested
    dict of arrays with its own masks, so it is unbatched recursively.
    """
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get("_" + key)
        nested = _unbatch_infos(value, n) if isinstance(value, dict) else None
        for i in range(n):
            if mask is None or mask[i]:
                if nested is not None:
                    out[i][key] = nested[i]
                else:
                    v = value[i]
                    out[i][key] = v.item() if isinstance(v, np.generic) else v
    return out


def _objects(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def _put_info(infos: dict[str, Any], key: str, values: np.ndarray, mask: np.ndarray) -> None:
    infos[key] = values
    infos["_" + key] = mask


class MemoryVectorWrapper(VectorWrapper):
    """EMPO² memory around a vector env with ONE store shared by all sub-envs.

    Memory work runs in the main process, batched over sub-envs (one embedder call for all
    retrievals of a step; one tip-writer call for all episodes that end on a step), so an LLM
    tip writer lives next to the policy. ``reset(options={"use_memory": bool | list[bool],
    "eval": bool})`` sets the mode of every sub-env (a list: one per sub-env); episodes started by
    autoreset use :attr:`next_use_memory` (defaults to ``use_memory``). Supports the NEXT_STEP
    (default) and DISABLED autoreset modes. Infos gain ``intrinsic_reward`` (float array),
    ``tips``, ``memory_tip`` and, for recorded episodes that start, ``memory_episode`` (object
    arrays).

    Args:
        env: A vector env of empo_gym text envs.
        store, embedder, tip_writer, novelty, partition_fn, use_memory, training,
        add_intrinsic_to_reward, max_tips_chars, write_tips, recorder: As in
        :class:`MemoryWrapper`.
    """

    def __init__(
        self,
        env: VectorEnv,
        store: MemoryStore | str | os.PathLike[str] | None = None,
        *,
        embedder: Embedder | str = "hashing",
        tip_writer: TipWriter | None = None,
        novelty: NoveltyReward | bool = True,
        partition_fn: Callable[[dict[str, Any]], str] | None = None,
        use_memory: bool = False,
        training: bool = True,
        add_intrinsic_to_reward: bool = False,
        max_tips_chars: int = MAX_TIPS_CHARS,
        write_tips: bool = True,
        recorder: EpisodeRecorder | None = None,
    ):
        super().__init__(env)
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED):
            raise ValueError(
                f"MemoryVectorWrapper supports autoreset_mode NEXT_STEP or DISABLED, got {mode}"
            )
        self.autoreset_mode = mode
        self.core = _MemoryCore(
            store,
            embedder,
            tip_writer,
            novelty,
            partition_fn,
            use_memory,
            training,
            add_intrinsic_to_reward,
            max_tips_chars,
            write_tips,
            recorder,
        )
        self.single_observation_space = memory_observation_space(
            env.single_observation_space, max_tips_chars
        )
        self.observation_space = batch_space(self.single_observation_space, env.num_envs)
        self._lanes = [_Lane() for _ in range(env.num_envs)]
        self._autoreset = np.zeros(env.num_envs, dtype=bool)
        self._mine: list[dict[str, Any]] = [{} for _ in range(env.num_envs)]
        #: Memory mode of the episodes autoreset starts next (one bool per sub-env).
        self.next_use_memory = np.full(env.num_envs, bool(use_memory))

    @property
    def store(self) -> MemoryStore:
        """The shared tip memory."""
        return self.core.store

    @property
    def recorder(self) -> EpisodeRecorder:
        """The recorder of the sub-envs' episodes (shared when one was passed)."""
        return self.core.recorder

    @property
    def memory_seconds(self) -> float:
        """Total seconds spent in memory work."""
        return self.core.memory_seconds

    def _episode_ids(self, infos: dict[str, Any], started: list[int]) -> None:
        ids = [self._lanes[i].episode if i in started else None for i in range(self.num_envs)]
        _put_info(infos, "memory_episode", _objects(ids), np.array([e is not None for e in ids]))

    def _batch_obs(self, raw: Sequence[Any], tips: list[list[str]]) -> dict[str, tuple[str, ...]]:
        dicts = [compose_observation(o, t) for o, t in zip(raw, tips, strict=True)]
        return {k: tuple(d[k] for d in dicts) for k in (OBSERVATION_KEY, TIPS_KEY, TIP_BLOCK_KEY)}

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, tuple[str, ...]], dict[str, Any]]:
        """Reset sub-envs (all, or ``options["reset_mask"]``); memory options consumed here."""
        options = dict(options or {})
        n = self.num_envs
        use = options.pop(USE_MEMORY_OPTION, None)
        if use is not None and not isinstance(use, (bool, np.bool_)):
            use = list(use)
            if len(use) != n:
                raise ValueError(f"use_memory list must have {n} entries, got {len(use)}")
        mine, rest = self.core.split_options(options)
        mask = np.asarray(rest.get("reset_mask", np.ones(n, dtype=bool)), dtype=bool)
        obs, infos = self.env.reset(seed=seed, options=rest or None)
        idx = [i for i in range(n) if mask[i]]
        per = []
        for i in idx:
            m = dict(mine)
            if use is not None:
                m[USE_MEMORY_OPTION] = bool(use if isinstance(use, (bool, np.bool_)) else use[i])
            self._mine[i] = {k: v for k, v in m.items() if k != PARTITION_OPTION}
            per.append(m)
        single = _unbatch_infos(infos, n)
        tips_sel, _ = self.core.begin(
            [self._lanes[i] for i in idx], [obs[i] for i in idx], [single[i] for i in idx], per
        )
        tips: list[list[str]] = [[] for _ in range(n)]
        for i, t in zip(idx, tips_sel, strict=True):
            tips[i] = t
        self._autoreset[:] = False
        infos = dict(infos)
        _put_info(infos, "intrinsic_reward", np.zeros(n, np.float32), np.ones(n, bool))
        _put_info(infos, "tips", _objects(tips), mask.copy())
        self._episode_ids(infos, idx)
        return self._batch_obs(obs, tips), infos

    def step(
        self, actions: Any
    ) -> tuple[dict[str, tuple[str, ...]], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step all sub-envs; record, write tips at episode ends, retrieve for the next states."""
        obs, rewards, terms, truncs, infos = self.env.step(actions)
        n = self.num_envs
        single = _unbatch_infos(infos, n)
        restarted = [i for i in range(n) if self._autoreset[i]]
        stepped = [i for i in range(n) if not self._autoreset[i] and self._lanes[i].active]
        tips: list[list[str]] = [[] for _ in range(n)]
        intrinsic = np.zeros(n, dtype=np.float32)
        written = np.array([None] * n, dtype=object)
        if restarted:
            per = [
                {**self._mine[i], USE_MEMORY_OPTION: bool(self.next_use_memory[i])}
                for i in restarted
            ]
            got, _ = self.core.begin(
                [self._lanes[i] for i in restarted],
                [obs[i] for i in restarted],
                [single[i] for i in restarted],
                per,
            )
            for i, t in zip(restarted, got, strict=True):
                tips[i] = t
        if stepped:
            dones = [bool(terms[i] or truncs[i]) for i in stepped]
            got, r_int, wr = self.core.advance(
                [self._lanes[i] for i in stepped],
                [actions[i] for i in stepped],
                [obs[i] for i in stepped],
                [float(rewards[i]) for i in stepped],
                dones,
                [single[i] for i in stepped],
            )
            for k, i in enumerate(stepped):
                tips[i], intrinsic[i], written[i] = got[k], r_int[k], wr[k]
        self._autoreset = np.logical_or(terms, truncs) & (
            self.autoreset_mode == AutoresetMode.NEXT_STEP
        )
        if self.core.add_intrinsic_to_reward:
            rewards = np.asarray(rewards, dtype=np.float64) + intrinsic
        infos = dict(infos)
        _put_info(infos, "intrinsic_reward", intrinsic, np.ones(n, bool))
        _put_info(infos, "tips", _objects(tips), np.ones(n, bool))
        _put_info(infos, "memory_tip", written, np.array([w is not None for w in written]))
        self._episode_ids(infos, restarted)
        return self._batch_obs(obs, tips), rewards, terms, truncs, infos
