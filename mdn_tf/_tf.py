"""Import TensorFlow once, without its start-up log lines, and guard graph-mode code.

TensorFlow 2.21 writes ``I0000 ...`` lines (oneDNN, CUDA stubs, CPU features) to the
process's stderr while it loads, before ``TF_CPP_MIN_LOG_LEVEL`` takes effect, and a
Jupyter kernel forwards that file descriptor into the notebook; on a machine without a GPU
the first Session then logs an ``E0000 ... failed call to cuInit`` error. We silence
descriptor 2 for the import and for the one-time device discovery that logs the cuInit
line, and nothing after: Python exceptions still propagate, and the user's own later
warnings and errors (``W``/``E`` lines) still reach stderr. Only TensorFlow's C++ ``I``
lines stay hidden (``TF_CPP_MIN_LOG_LEVEL=1``, unless the user set the variable).
"""

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor


@contextlib.contextmanager
def _stderr_fd_silenced():
    """Point file descriptor 2 at /dev/null for the block, then restore it."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor at all: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# C++ logs after start-up: warnings and errors, not the "I" lines (MLIR pass, XLA service)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
with _stderr_fd_silenced():
    import tensorflow as tf  # noqa: E402

    # device discovery happens once per process: here, so that its cuInit error line on a
    # machine without a GPU is silenced too (listing devices leaves them configurable)
    tf.config.list_physical_devices("GPU")

tf.get_logger().setLevel("ERROR")  # Python-side deprecation chatter

tf1 = tf.compat.v1


class GraphModeError(RuntimeError, ValueError):
    """A TF1 graph-building function was called while eager execution is on.

    A RuntimeError (it is about TensorFlow's state) and a ValueError (like every other
    bad call into mdn_tf), so either ``except`` clause catches it.
    """


def require_graph_mode(func_name):
    """Raise GraphModeError unless TF1 graph mode is on (eager execution disabled)."""
    if tf.executing_eagerly():
        raise GraphModeError(
            f"{func_name} builds a TF1 graph (placeholders, variables, Session), but eager "
            "execution is on. Call tf.compat.v1.disable_eager_execution() (or "
            "tf.compat.v1.disable_v2_behavior()) once, right after importing TensorFlow."
        )


def static_shape(tensor):
    """The tensor's static shape as a list of ints and None, or None if the rank is unknown.

    The same under TF2 shapes and under ``tf.compat.v1.disable_v2_behavior()``, whose
    shapes index to ``Dimension`` objects (unhashable, and never equal to None).
    """
    shape = tensor.shape
    return None if shape.rank is None else shape.as_list()


def intra_op_threads():
    """The intra-op threads XLA runs with: ``TF_NUM_INTRAOP_THREADS`` (read when TensorFlow
    loads) when set to a positive integer, else the machine's CPUs, as TensorFlow counts them."""
    threads = os.environ.get("TF_NUM_INTRAOP_THREADS", "").strip()
    threads = int(threads) if threads.isdigit() and int(threads) > 0 else None
    return threads or os.cpu_count() or 1


def side_by_side(task, items, threads):
    """``[task(item, stopping) for item in items]`` on ``threads`` Python threads, each
    taking the next item when its own is done: TensorFlow releases the GIL while a session
    runs, so sessions on the threads run at once. ``stopping`` (a ``threading.Event``) is
    set once a task has failed or the caller was interrupted: the items not yet started do
    not start, and a running task may check it to end early. The first failure is raised."""
    stopping = threading.Event()

    def run(item):
        if stopping.is_set():
            return None
        try:
            return task(item, stopping)
        except BaseException:
            stopping.set()
            raise

    if threads <= 1 or len(items) <= 1:
        return [run(item) for item in items]
    with ThreadPoolExecutor(min(threads, len(items))) as pool:
        futures = [pool.submit(run, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:  # a failure, or Ctrl-C while waiting: the others end early
            stopping.set()
            raise
