"""The ScienceWorld JVM: bounded heap, lazy start, and no orphan after its Python process.

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

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import Future

from py4j.java_gateway import (
    CallbackServerParameters,
    GatewayParameters,
    JavaGateway,
    launch_gateway,
)
from scienceworld import ScienceWorldEnv as _RawScienceWorldEnv
from scienceworld.constants import BASEPATH, JAR_PATH

logger = logging.getLogger(__name__)

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


class ScienceWorldJVMError(RuntimeError):
    """The ScienceWorld JVM died (killed, out of memory) or stopped answering mid-episode."""


def java_executable() -> str:
    """Return the ``java`` executable, or raise with instructions to install Java 11+."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.exists(os.path.join(java_home, "bin", "java")):
        return os.path.join(java_home, "bin", "java")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError(
            "ScienceWorld needs Java 11+ on PATH, but no `java` executable was found. "
            "Install it (Debian/Ubuntu: `sudo apt-get install default-jre-headless`) or set "
            "JAVA_HOME."
        )
    return found


def jvm_options(max_heap_mb: int | None) -> list[str]:
    """JVM flags for a heap cap (``None`` keeps the JVM's default heap)."""
    if max_heap_mb is None:
        return []
    if isinstance(max_heap_mb, bool) or not isinstance(max_heap_mb, int):
        raise ValueError(
            f"jvm_max_heap_mb must be an int number of MB (or None for the JVM default), "
            f"got {max_heap_mb!r}"
        )
    if max_heap_mb < MIN_HEAP_MB:
        raise ValueError(
            f"jvm_max_heap_mb={max_heap_mb} is below the floor of {MIN_HEAP_MB} MB (smaller "
            f"heaps run out of memory on tasks such as boil); pass at least {MIN_HEAP_MB} or "
            f"None for the JVM default"
        )
    return [f"-Xmx{max_heap_mb}m", "-XX:+UseSerialGC"]


def _shutdown(gateway: JavaGateway, proc: subprocess.Popen) -> None:
    # Must not reference the owning object (weakref.finalize callback).
    if proc.poll() is not None:
        # The JVM is gone: mark the client disconnected, so neither shutdown nor the finalizers
        # of its Java object proxies try to connect (each try logs a formatted traceback, and
        # one formatted inside a garbage collection that interrupts ast.parse trips CPython
        # 3.11's "AST constructor recursion depth mismatch" SystemError)
        gateway._gateway_client.is_connected = False
        with contextlib.suppress(Exception):
            gateway.shutdown_callback_server()
        return
    with contextlib.suppress(Exception):  # the JVM may die meanwhile
        gateway.shutdown()
    try:
        if proc.poll() is None and proc.stdin is not None:
            proc.stdin.close()  # --die-on-broken-pipe: the JVM exits on EOF
        proc.wait(timeout=5)
    except Exception:  # noqa: BLE001
        proc.kill()
        try:
            proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            logger.warning("ScienceWorld JVM pid %s did not exit after SIGKILL", proc.pid)


class ScienceWorldJVM(_RawScienceWorldEnv):
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
        java = java_executable()
        opts = jvm_options(max_heap_mb) + list(DETERMINISTIC_JVM_OPTIONS) + list(extra_jvm_options)
        port, proc = launch_gateway(
            classpath=JAR_PATH,
            die_on_exit=True,
            cwd=BASEPATH,
            return_proc=True,
            javaopts=opts,
            java_path=java,
        )
        self._gateway = JavaGateway(
            gateway_parameters=GatewayParameters(auto_field=True, port=port),
            callback_server_parameters=CallbackServerParameters(port=0, daemonize=True),
            java_process=proc,
        )
        python_port = self._gateway.get_callback_server().get_listening_port()
        self._gateway.java_gateway_server.resetCallbackClient(
            self._gateway.java_gateway_server.getCallbackClient().getAddress(), python_port
        )
        self.server = self._gateway.jvm.scienceworld.runtime.pythonapi.PythonInterface()
        self.process = proc
        self.jvm_options = opts
        self.lastStepScore = 0
        self.taskName = None
        self.envStepLimit = env_step_limit
        self.clear_run_histories()
        self.goldPathGenerated = False
        self._obj_tree_tempdir = tempfile.TemporaryDirectory()
        self._finalizer = weakref.finalize(self, _shutdown, self._gateway, proc)

    @property
    def pid(self) -> int:
        """The JVM's process id."""
        return self.process.pid

    @property
    def alive(self) -> bool:
        """Whether the JVM process is still running."""
        return self.process.poll() is None

    def close(self) -> None:
        """Shut the JVM down (idempotent)."""
        self._finalizer()

    def __del__(self) -> None:
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()


def _start(max_heap_mb: int | None) -> Future[ScienceWorldJVM]:
    """Start a JVM in a daemon thread; the future holds it (or the start error)."""
    future: Future[ScienceWorldJVM] = Future()

    def run() -> None:
        try:
            future.set_result(ScienceWorldJVM(max_heap_mb=max_heap_mb))
        except BaseException as exc:  # noqa: BLE001 -- handed to whoever takes the JVM
            future.set_exception(exc)

    threading.Thread(target=run, name="scienceworld-spare-jvm", daemon=True).start()
    return future


def _close_when_started(future: Future[ScienceWorldJVM]) -> None:
    def close(done: Future[ScienceWorldJVM]) -> None:
        if done.exception() is None:
            done.result().close()

    future.add_done_callback(close)


class JVMSupply:
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
        self.spare = spare
        self._next: Future[ScienceWorldJVM] | None = None
        self._lock = threading.Lock()

    def take(self) -> ScienceWorldJVM:
        """A JVM that has never loaded a task (the caller owns and closes it)."""
        with self._lock:
            future, self._next = self._next, None
            if future is None:
                future = _start(self.max_heap_mb)
            if self.spare:
                self._next = _start(self.max_heap_mb)
        jvm = future.result()
        if not jvm.alive:  # the spare died while waiting (killed): start one now
            jvm.close()
            jvm = ScienceWorldJVM(max_heap_mb=self.max_heap_mb)
        return jvm

    @staticmethod
    def retire(jvm: ScienceWorldJVM) -> None:
        """Close a used JVM in the background (its shutdown need not delay a reset)."""
        threading.Thread(target=jvm.close, name="scienceworld-jvm-close", daemon=True).start()

    def close(self) -> None:
        """Stop the spare JVM (at once, or as soon as it has started)."""
        with self._lock:
            future, self._next = self._next, None
        if future is not None:
            _close_when_started(future)
