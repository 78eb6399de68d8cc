"""The py4j JVMs of the simulator envs: bounded heap, no orphan process, one clear error.

ScienceWorld (``empo_gym.scienceworld``) and TextWorldExpress (``empo_gym.twx``) both run their
simulator in a JVM reached through py4j. This module is the one home of what they share:

* :func:`jvm_options`: a bounded heap (``-Xmx``) with the serial collector, validated against
  the env's floor;
* :class:`ManagedJVM`: start the gateway with py4j's ``--die-on-broken-pipe`` (the JVM exits
  when the pipe to its stdin closes, which the kernel does when the Python process dies, even
  by ``SIGKILL``), ``close()`` that waits for (or kills) the process, and a
  ``weakref.finalize`` that closes it at garbage collection and at interpreter exit;
* :func:`is_jvm_failure` / :func:`jvm_death_message`: tell a lost JVM or an exhausted heap from
  an action the simulator rejected, and name the cause once;
* :func:`refused_action`: the actions that never reach a simulator (empty, too long, or not
  encodable for py4j), and the observation that says why;
* :class:`JVMSupply`: fresh JVMs, the next one started in the background (a spare), for
  simulators whose episodes are only reproducible in a JVM that has never run one.

Example:
    >>> jvm_options(256, min_heap_mb=128, floor_reason="measured")
    ['-Xmx256m', '-XX:+UseSerialGC']
    >>> jvm_options(None, min_heap_mb=128, floor_reason="measured")
    []
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from py4j.java_gateway import (
    CallbackServerParameters,
    GatewayParameters,
    JavaGateway,
    launch_gateway,
)
from py4j.protocol import Py4JError, Py4JJavaError

from empo_gym.spaces import has_unencodable

logger = logging.getLogger(__name__)

#: Environment variable that overrides every simulator env's default heap (MB, or ``default``).
HEAP_ENV_VAR = "EMPO_GYM_JVM_HEAP_MB"
MAX_SIMULATOR_ACTION_CHARS = 1_000
"""Longest action sent to a simulator; a longer one is a flagged no-op."""


class JVMError(RuntimeError):
    """A simulator JVM died (killed, out of memory) or stopped answering mid-episode."""


def java_executable(simulator: str = "ScienceWorld") -> str:
    """Return the ``java`` executable, or raise with instructions to install Java 11+."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.exists(os.path.join(java_home, "bin", "java")):
        return os.path.join(java_home, "bin", "java")
    found = shutil.which("java")
    if found is None:
        raise RuntimeError(
            f"{simulator} needs Java 11+ on PATH, but no `java` executable was found. "
            "Install it (Debian/Ubuntu: `sudo apt-get install default-jre-headless`) or set "
            "JAVA_HOME."
        )
    return found


def jvm_options(max_heap_mb: int | None, *, min_heap_mb: int, floor_reason: str) -> list[str]:
    """JVM flags for a heap cap (``None`` keeps the JVM's default heap).

    Args:
        max_heap_mb: ``-Xmx`` in MB, or ``None``.
        min_heap_mb: The smallest accepted cap (the env's measured floor).
        floor_reason: Why smaller heaps are refused (said in the error).
    """
    if max_heap_mb is None:
        return []
    if isinstance(max_heap_mb, bool) or not isinstance(max_heap_mb, int):
        raise ValueError(
            f"jvm_max_heap_mb must be an int number of MB (or None for the JVM default), "
            f"got {max_heap_mb!r}"
        )
    if max_heap_mb < min_heap_mb:
        raise ValueError(
            f"jvm_max_heap_mb={max_heap_mb} is below the floor of {min_heap_mb} MB "
            f"({floor_reason}); pass at least {min_heap_mb} or None for the JVM default"
        )
    return [f"-Xmx{max_heap_mb}m", "-XX:+UseSerialGC"]


def heap_from_env(default: int | None) -> int | None:
    """The heap cap from ``EMPO_GYM_JVM_HEAP_MB`` (``default`` when unset)."""
    raw = os.environ.get(HEAP_ENV_VAR)
    if raw is None:
        return default
    if raw.strip().lower() in {"", "none", "default"}:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(
            f"{HEAP_ENV_VAR} must be an integer number of MB or 'default', got {raw!r}"
        ) from exc


def refused_action(text: str) -> str | None:
    """The observation of an action no simulator is sent (None: send it).

    Empty, longer than :data:`MAX_SIMULATOR_ACTION_CHARS`, or holding lone surrogates (py4j
    cannot encode them): the env makes it a no-op flagged ``invalid_action``.

    Example:
        >>> refused_action("look around") is None
        True
        >>> refused_action("")
        'No action was given. Choose one of the admissible actions.'
    """
    if not text:
        return "No action was given. Choose one of the admissible actions."
    if has_unencodable(text):
        return (
            "That action contains characters that cannot be encoded (lone surrogates); "
            "nothing was done. Choose one of the admissible actions."
        )
    if len(text) > MAX_SIMULATOR_ACTION_CHARS:
        return (
            f"That action is too long ({len(text)} characters; at most "
            f"{MAX_SIMULATOR_ACTION_CHARS}). Choose one of the admissible actions."
        )
    return None


def out_of_memory(exc: BaseException) -> bool:
    """Whether a py4j error is the JVM's ``OutOfMemoryError``."""
    try:  # the Java exception's text is fetched from the JVM, which may be gone
        return "OutOfMemoryError" in str(getattr(exc, "java_exception", "") or exc)
    except Exception:  # noqa: BLE001
        return False


def is_jvm_failure(exc: Py4JError) -> bool:
    """A lost JVM or an exhausted heap, not an input the simulator rejected (those arrive as
    Java exceptions; py4j reports a lost connection as a bare ``Py4JError`` after logging it)."""
    return not isinstance(exc, Py4JJavaError) or out_of_memory(exc)


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
            logger.warning("JVM pid %s did not exit after SIGKILL", proc.pid)


class ManagedJVM:
    """A py4j JVM process that cannot outlive its owner (a mixin for simulator clients).

    Subclasses call :meth:`_launch` in their constructor, then use ``self._gateway``.
    """

    _gateway: JavaGateway
    process: subprocess.Popen
    jvm_options: list[str]

    def _launch(self, classpath: str, cwd: str, options: Sequence[str], simulator: str) -> None:
        """Start the JVM with ``options`` and connect the gateway and its callback server."""
        port, proc = launch_gateway(
            classpath=classpath,
            die_on_exit=True,  # --die-on-broken-pipe
            cwd=cwd,
            return_proc=True,
            javaopts=list(options),
            java_path=java_executable(simulator),
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
        self.process = proc
        self.jvm_options = list(options)
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


def jvm_death_message(
    jvm: ManagedJVM,
    simulator: str,
    doing: str,
    exc: BaseException | None,
    heap_mb: int | None,
) -> str:
    """Close a failed JVM and say, once, why it failed and what to do.

    Args:
        jvm: The JVM that died or stopped answering (closed here; it is never reused).
        simulator: Its name in the message (``ScienceWorld``).
        doing: What the env was doing (``reset``, ``step 'look'``).
        exc: The py4j error, if any.
        heap_mb: The heap cap (named when the heap ran out).
    """
    oom = exc is not None and out_of_memory(exc)
    try:  # the socket closes while a killed process exits: give it a moment for its status
        code = jvm.process.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        code = None
    jvm.close()
    fix = "call reset() to start a fresh JVM"
    if oom:
        cause = f"ran out of memory (heap {heap_mb} MB)"
        fix = f"raise jvm_max_heap_mb (or {HEAP_ENV_VAR}), then " + fix
    elif code is None:
        cause = f"stopped answering ({type(exc).__name__}: {exc})"
    elif code < 0:
        cause = f"was killed by signal {-code}"
    else:
        cause = f"exited with code {code}"
    return (
        f"the {simulator} JVM (pid {jvm.pid}) {cause} during {doing}; this episode is lost: {fix}"
    )


J = TypeVar("J", bound=ManagedJVM)


def _start(factory: Callable[[], J], name: str) -> Future[J]:
    """Start a JVM in a daemon thread; the future holds it (or the start error)."""
    future: Future[J] = Future()

    def run() -> None:
        try:
            future.set_result(factory())
        except BaseException as exc:  # noqa: BLE001 -- handed to whoever takes the JVM
            future.set_exception(exc)

    threading.Thread(target=run, name=f"{name}-spare-jvm", daemon=True).start()
    return future


def _close_when_started(future: Future[J]) -> None:
    def close(done: Future[J]) -> None:
        if done.exception() is None:
            done.result().close()

    future.add_done_callback(close)


class JVMSupply(Generic[J]):
    """Fresh JVMs, one per episode, the next one started in the background.

    :meth:`take` returns the spare (waiting only if it is still starting) and starts the next
    spare, so a reset costs a load on a new JVM instead of a JVM start; the price is a second
    JVM process and its start during the episode.

    Args:
        factory: Starts one JVM (called in a background thread).
        spare: Start the next JVM in the background (``False``: start it in :meth:`take`).
        name: Names the threads.
    """

    def __init__(self, factory: Callable[[], J], *, spare: bool = True, name: str = "jvm"):
        self.factory = factory
        self.spare = spare
        self.name = name
        self._next: Future[J] | None = None
        self._lock = threading.Lock()

    def take(self) -> J:
        """A JVM that has never loaded a task (the caller owns and closes it)."""
        with self._lock:
            future, self._next = self._next, None
            if future is None:
                future = _start(self.factory, self.name)
            if self.spare:
                self._next = _start(self.factory, self.name)
        jvm = future.result()
        if not jvm.alive:  # the spare died while waiting (killed): start one now
            jvm.close()
            jvm = self.factory()
        return jvm

    @staticmethod
    def retire(jvm: ManagedJVM) -> None:
        """Close a used JVM in the background (its shutdown need not delay a reset)."""
        threading.Thread(target=jvm.close, name="jvm-close", daemon=True).start()

    def close(self) -> None:
        """Stop the spare JVM (at once, or as soon as it has started)."""
        with self._lock:
            future, self._next = self._next, None
        if future is not None:
            _close_when_started(future)
