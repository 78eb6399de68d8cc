"""The ScienceWorld JVM: bounded heap, lazy start, and no orphan after its Python process.

The machinery (heap cap, shutdown, finalizer, death message, spare JVMs) is shared with the
TextWorldExpress envs and lives in :mod:`empo_gym.jvm`; this module holds ScienceWorld's
settings and client.

``scienceworld.ScienceWorldEnv`` starts a JVM with the JVM's default heap (about 1.3 GB resident
on these machines). :class:`ScienceWorldJVM` starts the same simulator with a bounded heap and
the serial collector, and guarantees the process goes away:

* ``close()`` shuts the gateway down and waits for (or kills) the process;
* a ``weakref.finalize`` closes it at garbage collection and at interpreter exit;
* the JVM is started with py4j's ``--die-on-broken-pipe``: it exits when the pipe to its stdin
  closes, which the kernel does when the Python process dies, even by ``SIGKILL``.

ScienceWorld draws from one JVM-wide random generator and enumerates objects in hash order, so a
JVM that has run episodes gives a later ``load`` of the same variation another first observation,
other action names and other dynamics. :class:`JVMSupply` hands every episode a JVM that has
never loaded a task and starts the next one in a background thread while the episode runs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence

from scienceworld import ScienceWorldEnv as _RawScienceWorldEnv
from scienceworld.constants import BASEPATH, JAR_PATH

from empo_gym import jvm as _jvm
from empo_gym.jvm import JVMError, ManagedJVM

#: Default JVM max heap. Measured on 2 cores: the JVM default uses ~1.4 GB resident; 256 MB
#: with the serial collector uses ~0.33 GB at the same or better step rate (``empo-gym bench
#: scienceworld``). Override with ``jvm_max_heap_mb`` or ``EMPO_GYM_JVM_HEAP_MB``.
DEFAULT_MAX_HEAP_MB = 256
#: Smallest accepted heap. Measured on boil (test variations 28 and 29, gold path generated at
#: reset and replayed): 64, 96, 128 and 160 MB run out of memory generating the gold path;
#: 192 MB completes both. A heap that runs out later raises ScienceWorldJVMError saying so.
MIN_HEAP_MB = 192


#: Every object's identity hash is the same constant. ScienceWorld keeps objects in hash sets, so
#: its descriptions, action names and dynamics follow identity-hash order; HotSpot's default
#: draws identity hashes from a per-thread generator whose seed depends on how many threads the
#: JVM started before the py4j connection thread (compiler threads start on demand), so two
#: fresh JVMs could still disagree (mendelian-genetics-known-plant's first observation did, once
#: in a 30-task run). With one constant, hash-set order is insertion order: the same in every
#: JVM. Measured cost on boil: ~0.25 -> ~0.29 s per step (2 shared cores, noisy).
DETERMINISTIC_JVM_OPTIONS = ("-XX:+UnlockExperimentalVMOptions", "-XX:hashCode=2")


class ScienceWorldJVMError(JVMError):
    """The ScienceWorld JVM died (killed, out of memory) or stopped answering mid-episode."""


def java_executable() -> str:
    """Return the ``java`` executable, or raise with instructions to install Java 11+."""
    return _jvm.java_executable("ScienceWorld")


def jvm_options(max_heap_mb: int | None) -> list[str]:
    """JVM flags for a heap cap (``None`` keeps the JVM's default heap)."""
    return _jvm.jvm_options(
        max_heap_mb,
        min_heap_mb=MIN_HEAP_MB,
        floor_reason="smaller heaps run out of memory on tasks such as boil",
    )


class ScienceWorldJVM(ManagedJVM, _RawScienceWorldEnv):
    """``scienceworld.ScienceWorldEnv`` with a bounded heap and a guaranteed shutdown.

    Args:
        max_heap_mb: JVM ``-Xmx`` in MB, or ``None`` for the JVM default.
        extra_jvm_options: More JVM flags.
        env_step_limit: ScienceWorld's own move limit (empo-gym truncates itself, so the
            default is effectively unlimited).
    """

    def __init__(
        self,
        max_heap_mb: int | None = DEFAULT_MAX_HEAP_MB,
        extra_jvm_options: Sequence[str] = (),
        env_step_limit: int = 10**9,
    ):
        opts = jvm_options(max_heap_mb) + list(DETERMINISTIC_JVM_OPTIONS) + list(extra_jvm_options)
        self._launch(JAR_PATH, BASEPATH, opts, "ScienceWorld")
        self.server = self._gateway.jvm.scienceworld.runtime.pythonapi.PythonInterface()
        self.lastStepScore = 0
        self.taskName = None
        self.envStepLimit = env_step_limit
        self.clear_run_histories()
        self.goldPathGenerated = False
        self._obj_tree_tempdir = tempfile.TemporaryDirectory()


class JVMSupply(_jvm.JVMSupply[ScienceWorldJVM]):
    """Fresh ScienceWorld JVMs, one per episode, the next one started in the background.

    A fresh JVM makes ``load(task, variation)`` reproducible (no history in the JVM's random
    generator or hash tables). :meth:`take` returns the spare (waiting only if it is still
    starting) and starts the next spare, so a reset costs a ``load`` on a new JVM instead of a
    JVM start; the price is a second JVM process (~0.3 GB resident at 256 MB heap) and its start
    (~2 s of one core) during the episode.

    Args:
        max_heap_mb: Heap cap of every JVM (``None``: the JVM default).
        spare: Start the next JVM in the background (``False``: start it in :meth:`take`).

    Example:
        >>> supply = JVMSupply(spare=False)  # starts nothing until take()
        >>> supply.close()
    """

    def __init__(self, max_heap_mb: int | None = DEFAULT_MAX_HEAP_MB, *, spare: bool = True):
        jvm_options(max_heap_mb)  # validate before any process starts
        self.max_heap_mb = max_heap_mb
        super().__init__(self._start_one, spare=spare, name="scienceworld")

    def _start_one(self) -> ScienceWorldJVM:
        return ScienceWorldJVM(max_heap_mb=self.max_heap_mb)
