"""Time the article's MDN training against this machine's limit and the stacks users pick.

    python tools/bench.py [--json] [--runs 5] [--quick]   (make bench)

1. What users run: ``fit_mdn`` with the default and tuned recipes on the article's 1000
   points, each recipe and thread setting (nothing set, ``TF_NUM_INTRAOP_THREADS=1``) in a
   fresh process: the first fit (compilation included), the median of steady fits of the
   same shapes, ``first_over_steady``, the programs each compiled, and each time's ratio
   to the floor of the member-epochs it ran.
2. The article's recipe (``build_mdn``, 2500 full-batch Adam epochs on 1000 points) trained
   by ``mdn_tf.engine.Engine`` (the stacked program with one member),
   ``ENGINE_STEPS_PER_RUN`` epochs per XLA-compiled call. ``train_s`` is the median of
   ``--runs`` steady runs (compiled code reused), with ``compile_s`` (the first call's extra
   time) and ``first_run_s`` (a first 2500 epochs, compilation included); ``floor_s`` is the
   FLOPs those epochs need divided by the float32 matmul rate numpy reaches on large square
   matrices in the same run. Beside them: ``graph_loop_s``, the same epochs in the TF1
   in-graph loop of ordinary ops (``engine.graph_loop``, bit-identical to the article's);
   ``article_loop_s``, notebook 3's visible loop (one ``sess.run`` per epoch, the loss
   fetched each time); ``ensemble_member_s``, the time per member of an 8-member ``fit_mdn``
   ensemble; ``shape_floor_s``, numpy doing only the epochs' matmuls at their real shapes
   (what a BLAS gives on these small matrices, before any framework); and ``tf_matmul_s``,
   the same matmuls alone in TensorFlow.
3. Peers doing the same work: TF2 eager with ``tf.function``, Keras 3 ``model.fit`` with
   full batches, PyTorch on the CPU (when installed; see requirements-bench.txt).
4. Seconds per epoch of ``fit_mdn`` on 10^3 to 10^6 points, full batch and minibatches of
   1000 (``epoch_s_by_n``).
5. Each notebook's execution time and ``make test``'s wall time, and ``train_s`` under one
   or two intra-op threads with oneDNN off or on (left out with --quick).

FLOPs per epoch, for the 1-64-128-36 network and N points (matmuls only; element-wise
ops, the loss and Adam's update add well under 5%):
forward 2N(1*64 + 64*128 + 128*36) = 2N * 12864; backward, weight gradients the same and
input gradients of layers 2 and 3 2N(64*128 + 128*36) = 2N * 12800; in all 2N * 38528,
77.1 MFLOP per epoch for N = 1000.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from mdn_tf import _checks, stacked
from mdn_tf._tf import tf, tf1
from mdn_tf.data import make_sine_data, swap_axes
from mdn_tf.engine import Engine, graph_loop
from mdn_tf.fit import fit_mdn
from mdn_tf.graph import build_mdn, mixture_nll
from mdn_tf.recipes import RECIPES, Recipe

N_POINTS, EPOCHS, K = 1000, 2500, 12
STEPS_PER_RUN = 10  # the graph loop's chunk in fit_mdn: Recipe.check_every
ENGINE_STEPS_PER_RUN = 250  # the engine's chunk in fit_mdn when nothing is checked
LAYERS = (1, 64, 128, 3 * K)
ROOT = Path(__file__).resolve().parent.parent


def flops_per_epoch(n=N_POINTS, layers=LAYERS):
    """Matmul FLOPs of one full-batch forward and backward pass (see the module docstring)."""
    macs = sum(a * b for a, b in zip(layers[:-1], layers[1:]))  # forward = weight gradients
    input_grads = sum(a * b for a, b in zip(layers[1:-1], layers[2:]))  # layers 2 and up
    return 2 * n * (2 * macs + input_grads)


# Some machines here set these to pin older OpenBLAS builds to AVX2 kernels (they misbehave
# on some CPUs otherwise); they slow a current numpy's sgemm well below the CPU's peak. The
# floor is measured in a child process without them, and nothing else changes them.
BLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

SGEMM_CHILD = """
import json, time
import numpy as np
from threadpoolctl import threadpool_info

size, repeats = {size}, {repeats}
rng = np.random.default_rng(0)
a = rng.standard_normal((size, size), dtype=np.float32)
b = rng.standard_normal((size, size), dtype=np.float32)
a @ b
best = float("inf")
for _ in range(repeats):
    start = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - start)
keys = ("internal_api", "architecture", "version", "num_threads")
blas = [{{k: i.get(k) for k in keys}} for i in threadpool_info() if i.get("user_api") == "blas"]
print(json.dumps({{"gflops": 2 * size**3 / best / 1e9, "blas": blas}}))
"""


def floor_env(env=None):
    """The environment for the floor's child process: ``env`` (default os.environ) without
    the BLAS pins."""
    env = dict(os.environ if env is None else env)
    return {k: v for k, v in env.items() if k not in BLAS_PINS}


def sgemm_in_child(env, size=2048, repeats=7):
    """Run SGEMM_CHILD in a fresh process with environment ``env``: {"gflops", "blas"}."""
    code = SGEMM_CHILD.format(size=size, repeats=repeats)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def floor_rate(rounds=3, size=2048, repeats=7):
    """The machine's float32 matmul rate: numpy's sgemm in ``rounds`` fresh child processes
    without the BLAS pins, best of ``repeats`` each; the best round wins.

    Returns (FLOP/s, info): info has the rate of each round, the BLAS library and kernel in
    use (threadpoolctl), the pins that were unset, and a warning when a round ran below 80%
    of the best (a busy machine: the best round is the one to trust).
    """
    results = [sgemm_in_child(floor_env(), size, repeats) for _ in range(rounds)]
    rates = [r["gflops"] for r in results]
    best = max(rates)
    info = {
        "sgemm_gflops": round(best, 1),
        "sgemm_gflops_rounds": [round(r, 1) for r in rates],
        "blas": results[0]["blas"],
        "blas_pins_unset": [k for k in BLAS_PINS if k in os.environ],
    }
    if min(rates) < 0.8 * best:
        info["sgemm_warning"] = (
            f"a round read {min(rates):.0f} GFLOP/s against the best {best:.0f}: "
            "the machine was busy; the floor uses the best round"
        )
    return best * 1e9, info


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _data():
    x_data, y_data = swap_axes(*make_sine_data(N_POINTS, seed=0))
    return x_data, y_data


def _session(with_engine=False, steps_per_run=ENGINE_STEPS_PER_RUN):
    """(session, mdn, runner, data): the article's network, variables initialised; the
    runner is an ``Engine`` or the ``graph_loop``'s (xs, ys, losses)."""
    x_data, y_data = _data()
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(0)
        mdn = build_mdn()
        runner = Engine(mdn, epochs_per_run=steps_per_run) if with_engine else graph_loop(mdn)
        sess = tf1.Session(graph=graph)
        sess.run(tf1.global_variables_initializer())
    return sess, mdn, runner, x_data, y_data


def train_tf1_session():
    """The article's loop, as in notebook 3. Returns (seconds, final loss)."""
    sess, mdn, _, x_data, y_data = _session()
    feed = {mdn.x: x_data, mdn.y: y_data}
    start = time.perf_counter()
    for _ in range(EPOCHS):
        _, loss_val = sess.run([mdn.train_step, mdn.loss], feed)
    seconds = time.perf_counter() - start
    sess.close()
    return seconds, float(loss_val)


def train_graph_loop(steps_per_run=STEPS_PER_RUN):
    """The TF1 in-graph loop (``engine.graph_loop``), steps_per_run epochs per run: the
    article's steps bit for bit. Returns (seconds, final loss)."""
    sess, _, (xs, ys, loop_losses), x_data, y_data = _session()
    shape = (steps_per_run, *x_data.shape)
    feed = {xs: np.broadcast_to(x_data, shape), ys: np.broadcast_to(y_data, shape)}
    start = time.perf_counter()
    losses = [sess.run(loop_losses, feed) for _ in range(EPOCHS // steps_per_run)]
    seconds = time.perf_counter() - start
    sess.close()
    return seconds, float(losses[-1][-1])


def train_engine(runs, steps_per_run=ENGINE_STEPS_PER_RUN):
    """The engine in one session: ``first_run_s`` (the first EPOCHS epochs, compilation
    included), ``runs`` steady times of EPOCHS epochs from fresh weights (the compiled code
    reused), ``compile_s`` (the first run's time beyond the steady median) and the final
    loss of the last run."""
    sess, mdn, engine, x_data, y_data = _session(with_engine=True, steps_per_run=steps_per_run)
    with sess.graph.as_default():
        reset = tf1.global_variables_initializer()  # new initial weights, same compiled code
    first_run = _timed(lambda: engine.train(sess, x_data, y_data, EPOCHS))
    steady = []
    for _ in range(runs):
        sess.run(reset)
        start = time.perf_counter()
        losses = engine.train(sess, x_data, y_data, EPOCHS)
        steady.append(time.perf_counter() - start)
    sess.close()
    return {
        "compile_s": first_run - statistics.median(steady),
        "first_run_s": first_run,
        "runs": steady,
        "final_loss": float(losses[-1]),
    }


def ensemble_member_seconds(members=8):
    """Seconds per member of ``fit_mdn`` training an ensemble of the article's network
    (2500 epochs each on the same 1000 points, members on all cores), for each engine."""
    x_data, y_data = _data()
    seconds = {}
    for engine in ("graph", "stacked"):
        fitted = fit_mdn(x_data, y_data, recipe=Recipe(ensemble=members, engine=engine), seed=0)
        seconds[engine] = round(fitted.train_s / members, 3)
    return seconds


def epoch_matmuls(n=N_POINTS, layers=LAYERS):
    """The (left, right) float32 operands of one epoch's matmuls, at their real shapes.

    Per layer (a, b) with input h (n, a) and output gradient g (n, b): forward h @ W,
    weight gradient h.T @ g and, from layer 2 on, input gradient g @ W.T; together
    ``flops_per_epoch(n, layers)`` FLOPs.
    """
    rng = np.random.default_rng(0)
    ops = []
    for i, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
        h = rng.standard_normal((n, a), dtype=np.float32)
        w = rng.standard_normal((a, b), dtype=np.float32)
        g = rng.standard_normal((n, b), dtype=np.float32)
        ops += [(h, w), (h.T.copy(), g)] + ([(g, w.T.copy())] if i else [])
    return ops


def shape_floor(n=N_POINTS, layers=LAYERS, epochs=EPOCHS):
    """Seconds numpy takes for only the matmuls of ``epochs`` epochs (best of three)."""
    ops = epoch_matmuls(n, layers)

    def epochs_of_matmuls():
        for _ in range(epochs):
            for left, right in ops:
                left @ right

    return min(_timed(epochs_of_matmuls) for _ in range(3))


def tf_matmul_floor(epochs=EPOCHS):
    """Seconds TensorFlow takes for only the epochs' matmuls (``epoch_matmuls``), in one
    in-graph loop like ``graph_loop``'s; independent matmuls may run side by side."""
    graph = tf.Graph()
    with graph.as_default():
        operands = [(tf1.Variable(a), tf1.Variable(b)) for a, b in epoch_matmuls()]

        def body(step, total):
            for a, b in operands:  # one corner of each product keeps it from being pruned
                total += tf.matmul(a, b)[0, 0]
            return step + 1, total

        loop = tf.while_loop(lambda step, _: step < epochs, body, (0, 0.0))
        sess = tf1.Session(graph=graph)
        sess.run(tf1.global_variables_initializer())
    sess.run(loop)  # warm-up
    seconds = _timed(lambda: sess.run(loop))
    sess.close()
    return seconds


def _tf2_model():
    import keras

    return keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(3 * K),
        ]
    )


def _tf2_loss(y, out):
    """The article's clamped NLL on the raw head (``mixture_nll`` runs inside tf.function)."""
    p, mu, sigma = tf.split(out, 3, axis=1)
    return mixture_nll(y, tf.nn.softmax(p), mu, tf.exp(sigma))


def _in_subprocess(expression, env=None):
    """Evaluate ``expression`` (with ``b`` = this module) in a fresh Python process and
    return its value, passed back as JSON: TensorFlow's eager mode, thread count and
    oneDNN are fixed per process."""
    here = str(Path(__file__).resolve().parent)
    code = f"import json, sys; sys.path.insert(0, {here!r}); import bench as b; "
    code += f"print(json.dumps({expression}))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def peer_tf_function():
    """TF2 eager, one ``tf.function`` train step per epoch."""
    x_data, y_data = _data()
    model, opt = _tf2_model(), tf.keras.optimizers.Adam(0.01)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = _tf2_loss(y, model(x))
        opt.apply_gradients(
            zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        )
        return loss

    x, y = tf.constant(x_data), tf.constant(y_data)
    step(x, y)
    return _timed(lambda: [step(x, y) for _ in range(EPOCHS)])


def peer_keras_fit():
    """Keras 3 ``model.fit``, full batches, no validation."""
    import keras

    x_data, y_data = _data()
    model = _tf2_model()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss=_tf2_loss)
    model.fit(x_data, y_data, batch_size=N_POINTS, epochs=1, verbose=0)
    return _timed(
        lambda: model.fit(
            x_data, y_data, batch_size=N_POINTS, epochs=EPOCHS, verbose=0, shuffle=False
        )
    )


def peer_torch():
    """PyTorch eager on the CPU, the same network, loss and optimiser."""
    import torch

    x_data, y_data = _data()
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(1, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 3 * K),
    )
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = torch.from_numpy(x_data), torch.from_numpy(y_data)

    def loss_fn(out):
        p, mu, sigma = out.split(K, dim=1)
        p, sigma = torch.softmax(p, 1), torch.clamp(torch.exp(sigma), min=1e-5)
        normal = torch.exp(-((y - mu) ** 2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
        return (-torch.log(torch.clamp((p * normal).sum(1), min=1e-5))).mean()

    def train():
        for _ in range(EPOCHS):
            opt.zero_grad()
            loss = loss_fn(net(x))
            loss.backward()
            opt.step()

    return _timed(train)


PEERS = {
    "tf_function": ("tensorflow", "peer_tf_function"),
    "keras_fit": ("keras", "peer_keras_fit"),
    "torch": ("torch", "peer_torch"),
}


def _peer(module, name):
    import importlib.util

    if importlib.util.find_spec(module) is None:
        return None, f"{module} is not installed (pip install -r requirements-bench.txt)"
    try:
        return round(_in_subprocess(f"b.{name}()"), 3), None  # eager: a fresh process
    except subprocess.CalledProcessError as err:
        return None, f"failed: {err.stderr.strip().splitlines()[-1]}"


SETTINGS = {  # (TF_NUM_INTRAOP_THREADS, TF_ENABLE_ONEDNN_OPTS); the Makefile's is "1/0"
    f"intra {t}, onednn {d}": (t, d) for t in ("1", "2") for d in ("0", "1")
}


def epoch_seconds_by_n(sizes=(10**3, 10**4, 10**5, 10**6), batch_size=1000):
    """Seconds per epoch of ``fit_mdn`` on n points of the article's problem, for each n in
    ``sizes``: the full batch (one Adam step per epoch) and minibatches of ``batch_size``
    (n // batch_size steps per epoch); the article's network on the graph loop. Each is
    the difference of two fits of E and 3E epochs divided by 2E, E = max(2, 10^6 / n) (about
    a second of training), so that building the graph and session does not count."""
    result = {}
    for n in sizes:
        x_data, y_data = swap_axes(*make_sine_data(n, seed=0))
        row = {}
        epochs = (max(2, 10**6 // n), 3 * max(2, 10**6 // n))
        for name, batch in (("full_batch", None), ("minibatch", batch_size)):
            seconds = []
            for count in epochs:
                fitted = fit_mdn(x_data, y_data, recipe=Recipe(epochs=count, batch_size=batch))
                seconds.append(fitted.train_s)
            row[name] = round((seconds[1] - seconds[0]) / (epochs[1] - epochs[0]), 4)
        result[str(n)] = row
    return result


def engine_median(runs):
    """Median steady seconds of ``runs`` engine runs, in graph mode (for a subprocess)."""
    tf1.disable_eager_execution()
    return statistics.median(train_engine(runs)["runs"])


def settings_sweep(runs=3):
    """Median engine seconds under each thread / oneDNN setting in ``SETTINGS``,
    each in a fresh process (TensorFlow reads both variables when it loads)."""
    result = {}
    for name, (threads, onednn) in SETTINGS.items():
        env = {**os.environ, "TF_NUM_INTRAOP_THREADS": threads, "TF_ENABLE_ONEDNN_OPTS": onednn}
        result[name] = round(_in_subprocess(f"b.engine_median({runs})", env), 3)
    return result


FIT_RECIPES = ("default", "tuned")
FIT_SETTINGS = {"nothing set": None, "TF_NUM_INTRAOP_THREADS=1": "1"}


def fit_seconds(recipe, steady=3):
    """In this process (a fresh one, see ``fit_section``): ``fit_mdn`` with the named recipe
    on the article's 1000 inverse-sine points, seed 0, 1 + ``steady`` times, each timed
    whole (data checks, training, calibration). The first includes building and compiling;
    the later ones, the same shapes again, reuse the compiled code.

    Returns {"first_s", "steady_s" (list), "programs" (compiled by each fit), "member_epochs",
    "train_points"}: member-epochs count every epoch each member ran, to its last check."""
    tf1.disable_eager_execution()
    x_data, y_data = _data()
    recipe_ = RECIPES[recipe]
    seconds, programs = [], []
    for _ in range(1 + steady):
        compiled, start = stacked.compiled_programs(), time.perf_counter()
        fitted = fit_mdn(x_data, y_data, recipe=recipe_, seed=0)
        seconds.append(time.perf_counter() - start)
        programs.append(stacked.compiled_programs() - compiled)
    member_epochs = sum(int(v[-1][0]) if len(v) else recipe_.epochs for v in fitted.val_history)
    n_val = round(recipe_.validation_fraction * len(x_data))
    return {
        "first_s": seconds[0],
        "steady_s": seconds[1:],
        "programs": programs,
        "member_epochs": member_epochs,
        "train_points": len(x_data) - n_val,
    }


def _fit_env(threads):
    """A child's environment: the BLAS pins unset, and TensorFlow's thread and oneDNN
    settings unset (its defaults) unless ``threads`` names the intra-op threads."""
    env = {k: v for k, v in floor_env().items()}
    env.pop("TF_NUM_INTRAOP_THREADS", None)
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    if threads is not None:
        env["TF_NUM_INTRAOP_THREADS"] = threads
    return env


def fit_section(rate, steady=3):
    """``fit_mdn`` as users run it, the default and tuned recipes on 1000 sine points, each
    recipe and setting in a fresh process: the first fit (compilation included) and the
    median of ``steady`` more, against the floor of the member-epochs they ran (matmul
    FLOPs on the training points at ``rate``), ``first_over_steady`` and the programs the
    first fit and the steady ones compiled."""
    result = {}
    for recipe in FIT_RECIPES:
        rows = {}
        for name, threads in FIT_SETTINGS.items():
            got = _in_subprocess(f"b.fit_seconds({recipe!r}, {steady})", _fit_env(threads))
            floor = got["member_epochs"] * flops_per_epoch(got["train_points"]) / rate
            median = statistics.median(got["steady_s"])
            rows[name] = {
                "member_epochs": got["member_epochs"],
                "floor_s": round(floor, 3),
                "first_s": round(got["first_s"], 3),
                "first_ratio_to_floor": round(got["first_s"] / floor, 2),
                "steady_s": round(median, 3),
                "steady_s_runs": [round(t, 3) for t in got["steady_s"]],
                "ratio_to_floor": round(median / floor, 2),
                "first_over_steady": round(got["first_s"] / median, 2),
                "programs_first_fit": got["programs"][0],
                "programs_steady_fits": got["programs"][1:],
            }
        result[recipe] = rows
    return result


def notebook_times():
    """Seconds ``tools/run_notebooks.py`` takes per notebook, run on copies (nothing stored)."""
    import re
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        copies = [
            shutil.copy(path, folder)
            for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        ]
        out = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "run_notebooks.py"), *copies],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    found = re.findall(r"([^/\\\s]+)\.ipynb: executed in ([\d.]+) s", out)
    return {name: float(seconds) for name, seconds in found}


def make_test_seconds():
    """Wall time of ``make test`` (the venv already installed)."""
    return round(
        _timed(lambda: subprocess.run(["make", "test"], cwd=ROOT, check=True, capture_output=True)),
        1,
    )


_START = time.perf_counter()


def _say(step, total, what):
    """One progress line on stderr: step of total, what is measured, seconds since start."""
    elapsed = time.perf_counter() - _START
    print(f"[{step}/{total}] {elapsed:6.1f} s  {what}", file=sys.stderr, flush=True)


def run(runs=5, quick=False):
    """Measure everything; returns the dict that ``--json`` prints."""
    total = 9 + len(PEERS) + (0 if quick else 3)
    _say(1, total, "numpy sgemm rate (the floor), in child processes without the BLAS pins")
    rate, floor_info = floor_rate()
    as_set = sgemm_in_child(dict(os.environ))  # with whatever pins this environment has
    flops = flops_per_epoch() * EPOCHS
    _say(2, total, f"the engine: compile, first run, {runs} steady runs")
    engine = train_engine(runs)
    seconds = engine["runs"]
    train_s = statistics.median(seconds)
    floor_s = flops / rate
    _say(3, total, f"the graph loop, {runs} runs")
    graph_loop_s = [train_graph_loop()[0] for _ in range(runs)]
    _say(4, total, f"the article's loop, {runs} runs")
    article_s = [train_tf1_session()[0] for _ in range(runs)]
    _say(5, total, "an 8-member ensemble through fit_mdn")
    member_s = ensemble_member_seconds()
    _say(6, total, "numpy, only the matmuls")
    shape_s = shape_floor()
    _say(7, total, "TensorFlow, only the matmuls")
    tf_matmul_s = tf_matmul_floor()
    result = {
        "train_s": round(train_s, 3),
        "floor_s": round(floor_s, 3),
        "ratio_to_floor": round(train_s / floor_s, 2),
        "train_s_runs": [round(s, 3) for s in seconds],
        "train_s_spread": [round(min(seconds), 3), round(max(seconds), 3)],
        "compile_s": round(engine["compile_s"], 3),
        "first_run_s": round(engine["first_run_s"], 3),
        "final_loss": round(engine["final_loss"], 4),
        "steps_per_run": ENGINE_STEPS_PER_RUN,
        "graph_loop_steps_per_run": STEPS_PER_RUN,
        "graph_loop_s": round(statistics.median(graph_loop_s), 3),
        "graph_loop_ratio_to_floor": round(statistics.median(graph_loop_s) / floor_s, 2),
        "article_loop_s": round(statistics.median(article_s), 3),
        "article_loop_s_runs": [round(s, 3) for s in article_s],
        "ensemble_member_s": member_s,
        "shape_floor_s": round(shape_s, 3),
        "ratio_to_shape_floor": round(train_s / shape_s, 2),
        "tf_matmul_s": round(tf_matmul_s, 3),
        "flops_per_epoch": flops_per_epoch(),
        "epochs": EPOCHS,
        **floor_info,
        "sgemm_gflops_this_environment": round(as_set["gflops"], 1),
        "threads": {
            "TF_NUM_INTRAOP_THREADS": os.environ.get("TF_NUM_INTRAOP_THREADS"),
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
            "cpus": os.cpu_count(),
        },
        "peers": {},
        "peer_notes": {},
    }
    _say(8, total, "fit_mdn: default and tuned, first and steady fits, two thread settings")
    result["fit"] = fit_section(rate)
    result["fit_ratio_to_floor"] = {
        r: result["fit"][r]["nothing set"]["ratio_to_floor"] for r in FIT_RECIPES
    }
    result["fit_first_ratio_to_floor"] = {
        r: result["fit"][r]["nothing set"]["first_ratio_to_floor"] for r in FIT_RECIPES
    }
    _say(9, total, "seconds per epoch against n, full batch and minibatches of 1000")
    result["epoch_s_by_n"] = epoch_seconds_by_n()
    for step, (key, (module, name)) in enumerate(PEERS.items(), start=10):
        _say(step, total, f"peer: {key}")
        result["peers"][key], note = _peer(module, name)
        if note:
            result["peer_notes"][key] = note
    if not quick:
        _say(total - 2, total, "threads and oneDNN settings, a process each")
        result["train_s_by_setting"] = settings_sweep()
        _say(total - 1, total, "notebook execution times")
        result["notebook_s"] = notebook_times()
        _say(total, total, "make test")
        result["make_test_s"] = make_test_seconds()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python tools/bench.py",
        description=__doc__.split("\n")[0],
        epilog="How long, on a 2-core machine: about 6 minutes with --quick (the fit "
        "section alone about 3), about 10 without it. Run it on an otherwise idle machine: "
        "every time is also given as a ratio to the floor measured in the same run.",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (every measurement, the floor, the BLAS kernel, the "
        "thread settings) instead of the text summary",
    )
    parser.add_argument(
        "--runs",
        type=_checks.cli_int(_checks.positive_int, "runs"),
        default=5,
        help="steady training runs whose median is reported, per timing (default: 5)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="leave out the thread/oneDNN sweep, the notebook times and make test's time",
    )
    args = parser.parse_args(argv)
    tf1.disable_eager_execution()
    result = run(args.runs, args.quick)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for recipe, rows in result["fit"].items():
        for setting, row in rows.items():
            print(
                f"fit_mdn, {recipe} recipe, {setting}: first fit {row['first_s']} s "
                f"({row['programs_first_fit']} programs compiled), steady {row['steady_s']} s, "
                f"first_over_steady {row['first_over_steady']}; ratio to floor "
                f"{row['ratio_to_floor']}"
            )
    print(
        f"the engine ({EPOCHS} epochs, {ENGINE_STEPS_PER_RUN} per compiled call): median "
        f"{result['train_s']} s over {args.runs} steady runs {result['train_s_runs']}; "
        f"compile {result['compile_s']} s; first run {result['first_run_s']} s"
    )
    kernels = ", ".join(f"{b['internal_api']} {b['architecture']}" for b in result["blas"])
    print(
        f"floor: {result['flops_per_epoch'] / 1e6:.1f} MFLOP/epoch at {result['sgemm_gflops']} "
        f"GFLOP/s ({kernels}; rounds {result['sgemm_gflops_rounds']}; "
        f"{result['sgemm_gflops_this_environment']} GFLOP/s with this environment's pins) "
        f"= {result['floor_s']} s; "
        f"ratio to floor {result['ratio_to_floor']}"
    )
    if "sgemm_warning" in result:
        print(f"warning: {result['sgemm_warning']}")
    print(
        f"numpy, the same matmuls at their shapes: {result['shape_floor_s']} s; "
        f"ratio {result['ratio_to_shape_floor']}"
    )
    print(
        f"the graph loop: median {result['graph_loop_s']} s; "
        f"ratio to floor {result['graph_loop_ratio_to_floor']}"
    )
    print(f"8-member ensemble through fit_mdn, s per member: {result['ensemble_member_s']}")
    print(f"TensorFlow, only the same matmuls in an in-graph loop: {result['tf_matmul_s']} s")
    print(f"article's loop (one sess.run per epoch): median {result['article_loop_s']} s")
    for key, value in result["peers"].items():
        print(f"peer {key}: {value if value is not None else result['peer_notes'][key]}")
    for key in ("epoch_s_by_n", "train_s_by_setting", "notebook_s", "make_test_s"):
        if key in result:
            print(f"{key}: {result[key]}")


if __name__ == "__main__":
    main()
