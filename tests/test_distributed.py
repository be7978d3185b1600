"""Data parallelism over MPI (backprop.distributed): K processes train the model one process trains.

The tests that need MPI launch ``mpiexec -n 2`` and ``-n 3`` as subprocesses, with timeouts,
running the scripts in tests/mpi_scripts/; they skip, saying why, only where mpi4py or its
``mpiexec`` is missing (``pip install ".[mpi]"`` brings both). The others run in this process
and never start MPI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import backprop as bp
from backprop import distributed
from backprop.errors import DTypeError

SCRIPTS = Path(__file__).parent / "mpi_scripts"
sys.path.insert(0, str(SCRIPTS))

import cases  # noqa: E402

#: a launched job's environment variables, which a test run must not inherit
LAUNCHER_VARIABLES = distributed.SIZE_VARIABLES + distributed.RANK_VARIABLES


def _environment() -> dict[str, str]:
    """This environment without a launcher's variables, one BLAS thread per process."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES and not k.startswith("PMI_")}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    return env


@pytest.fixture(scope="module")
def mpiexec() -> str:
    """The ``mpiexec`` beside this Python (the MPICH wheel's) or on PATH, once mpi4py is known to
    import; skips, saying why, where either is missing."""
    found = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        pytest.skip("no mpiexec: pip install '.[mpi]' (mpi4py and the MPICH wheel) to run the MPI tests")
    check = subprocess.run([sys.executable, "-c", "from mpi4py import MPI"], capture_output=True, text=True,
                           env=_environment(), timeout=60)
    if check.returncode != 0:
        pytest.skip(f"mpi4py cannot be imported ({check.stderr.strip().splitlines()[-1:]}); "
                    "pip install '.[mpi]' to run the MPI tests")
    return found


def run_mpi(mpiexec: str, k: int, *args: str, timeout: float = 180) -> tuple[subprocess.CompletedProcess, float]:
    """``mpiexec -n k python args...``; returns the finished process and the time it ended.
    A job still running after ``timeout`` seconds is killed (all of it) and fails the test."""
    proc = subprocess.Popen([mpiexec, "-n", str(k), sys.executable, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_environment(), start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"mpiexec -n {k} {' '.join(args)} still ran after {timeout} s (a deadlock?)\n{out}\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), time.time()


def weights_of(path: Path) -> np.ndarray:
    return np.array([float.fromhex(v) for v in json.loads(path.read_text())])


def relative(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / max |b|."""
    return float(np.abs(a - b).max() / np.abs(b).max())


# --------------------------------------------------------------- no MPI needed
def test_a_plain_run_never_imports_mpi(tmp_path):
    """fit, distributed.evaluate/rank/size and the train command, not launched: mpi4py stays unimported."""
    code = f"""
import sys
import numpy as np
import backprop as bp
from backprop import distributed
from backprop.cli import main
x, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
net = bp.Network([bp.Dense(3, 4), bp.ReLU(), bp.Dropout(0.5), bp.Dense(4, 2)], seed=0)
bp.fit(net, x.astype("float32"), y, loss="cross_entropy", epochs=1, verbose=False)
distributed.evaluate(net, x.astype("float32"), y, "cross_entropy")
assert (distributed.rank(), distributed.size(), distributed.launched()) == (0, 1, False)
assert main(["train", "--limit", "60", "--epochs", "1", "--layers", "784,8,10", "--batch-size", "20",
             "--quiet", "--out", {str(tmp_path / "m.safetensors")!r}]) == 0
print(sorted(m for m in sys.modules if m.startswith("mpi4py")))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_environment(),
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_launch_is_read_from_the_environment(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not distributed.launched() and distributed.size() == 1 and distributed.rank() == 0
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "3")
    assert distributed.launched() and distributed.size() == 4 and distributed.rank() == 3
    assert distributed.group_for(False) is None  # each process trains alone: MPI is not started
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")  # mpiexec -n 1: one process, no MPI
    assert not distributed.launched() and distributed.group_for(None) is None
    with pytest.raises(DTypeError, match="distributed must be True, False or None"):
        distributed.group_for("yes")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_shares_draw_the_mask_of_one_process(dtype):
    """Three processes' shares (rows 0:3, 3:6, 6:10 of a batch of 10) get exactly the rows of
    the mask one process draws for the whole batch, batch after batch."""
    x = np.ones((10, 6), dtype)
    whole = bp.Network([bp.Dense(6, 6), bp.Dropout(0.4)], seed=1, dtype=dtype)
    parts = [bp.Network([bp.Dense(6, 6), bp.Dropout(0.4)], seed=1, dtype=dtype) for _ in range(3)]
    for _ in range(3):
        expected = whole.layers[1].forward(x, train=True).copy()
        got = []
        for net, rows in zip(parts, (slice(0, 3), slice(3, 6), slice(6, 10)), strict=True):
            net.layers[1].share(10, rows.start)
            got.append(net.layers[1].forward(x[rows], train=True).copy())
        np.testing.assert_array_equal(np.concatenate(got), expected)
    parts[0].layers[1].share(None)  # back to drawing for its input alone
    assert parts[0].layers[1].forward(x, train=True).shape == (10, 6)


def test_fit_reads_a_memory_mapped_file_without_copying_it(tmp_path):
    """A .npy training file opened with mmap_mode="r" is never copied whole: the training
    allocates a small fraction of the file (tracemalloc sees NumPy's allocations)."""
    x, y = cases.data(40_000, 50, 3, seed=0)
    np.save(tmp_path / "x.npy", x)  # 16 MB
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    net = bp.Network([bp.Dense(50, 8), bp.ReLU(), bp.Dense(8, 3)], seed=0, dtype="float64")
    # the modules that fit imports on its first memory-mapped input (megabytes of them: the
    # array-API detection) are not the data's allocations
    np.save(tmp_path / "small.npy", x[:20])
    bp.fit(net, np.load(tmp_path / "small.npy", mmap_mode="r"), y[:20], loss="cross_entropy", epochs=1,
           batch_size=10, validation_split=0.1, verbose=False, engine="numpy")
    tracemalloc.start()
    try:
        bp.fit(net, mapped, y, loss="cross_entropy", epochs=1, batch_size=500, validation_split=0.1,
               verbose=False, engine="numpy")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes / 3, f"fit allocated {peak / 1e6:.1f} MB for a {x.nbytes / 1e6:.1f} MB file"


# ------------------------------------------------------------------- under MPI
@pytest.mark.parametrize("k", [2, 3])
def test_k_processes_train_the_model_of_one(mpiexec, tmp_path, k):
    """Every case of cases.py over k processes: the weights within 1e-12 (relative) of one
    process's in float64, bitwise the same on every process, the same History everywhere
    (early stopping stopped at the same epoch), and the float32 difference measured."""
    result, _ = run_mpi(mpiexec, k, str(SCRIPTS / "train_cases.py"), str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in cases.CASES:
        for dtype, tolerance in (("float64", 1e-12), ("float32", 1e-5)):
            weights, history = cases.train(name, dtype)
            records = [json.loads((tmp_path / f"{name}-{dtype}-rank{r}.json").read_text()) for r in range(k)]
            got = [np.array([float.fromhex(v) for v in rec["weights"]]) for rec in records]
            for r in range(1, k):
                assert got[r].tobytes() == got[0].tobytes(), f"{name} {dtype}: process {r}'s weights differ"
                assert records[r]["history"] == records[0]["history"], f"{name} {dtype}: process {r}'s History"
            difference = relative(got[0], weights)
            print(f"{name} {dtype} K={k}: max relative weight difference {difference:.2e}")
            assert difference <= tolerance, (name, dtype)
            theirs = records[0]["history"]
            assert theirs["epoch"] == history["epoch"] and theirs["restored_epoch"] == history["restored_epoch"]
            assert theirs["engine"] == f"numpy, data-parallel over {k} processes"
            if dtype == "float64":
                for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                    np.testing.assert_allclose(theirs[key], history[key], rtol=1e-12, atol=0, err_msg=key)
                for layer, norms in history["grad_norms"].items():
                    np.testing.assert_allclose(theirs["grad_norms"][layer], norms, rtol=1e-12, err_msg=layer)
    assert len(history["epoch"]) < 30  # the adam case's early stopping did stop it


@pytest.fixture
def fault_dir(tmp_path) -> Path:
    x, y = cases.data(400, 12, 4, seed=9)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return tmp_path


@pytest.mark.parametrize("mode, message", [("raise-in-fit", "RuntimeError: process 1 gave up"),
                                           ("raise-outside", "ValueError: process 1 could not read its data")])
def test_an_exception_on_one_process_ends_the_job(mpiexec, fault_dir, mode, message):
    """Process 1 raises (inside fit, or in the script after distributed.init()) while process 0
    waits for it: the job ends within seconds, exit code 1, with process 1's one-line message."""
    result, ended = run_mpi(mpiexec, 2, str(SCRIPTS / "faults.py"), mode, str(fault_dir), timeout=60)
    assert result.returncode == 1, result.stderr
    assert f"{message} [process 1 of 2; ending the job]" in result.stderr
    failed = float(result.stderr.split("failing at ")[1].split()[0])
    print(f"{mode}: the job ended {ended - failed:.2f} s after the failure")
    assert ended - failed < 15


@pytest.mark.parametrize("mode", ["pause", "pause-fit"])
def test_a_silent_process_ends_the_job_after_the_collective_timeout(mpiexec, fault_dir, mode):
    """Process 1 stops itself (SIGSTOP) with ``distributed.init(timeout=2)`` (or
    ``bp.fit(collective_timeout=2)``): process 0 waits 2 s in the all-reduce, probes for 2 s
    more, prints one line naming process 1, and the job ends."""
    result, ended = run_mpi(mpiexec, 2, str(SCRIPTS / "faults.py"), mode, str(fault_dir), timeout=60)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if "stopped answering" in line]
    assert lines == ["backprop: process 1 stopped answering (no answer for 2 s while summing; collective "
                     "timeout 2 s) [process 0 of 2; ending the job]"], result.stderr
    failed = float(result.stderr.split("failing at ")[1].split()[0])
    print(f"SIGSTOP: the job ended {ended - failed:.2f} s after the pause")
    assert 2 < ended - failed < 2 + 30


def test_a_killed_process_ends_the_job_and_resume_ends_as_if_uninterrupted(mpiexec, fault_dir):
    """Process 1 is SIGKILLed in the middle of epoch 3: the job ends. Resuming from the last
    checkpoint (epoch 2) with 2 processes gives bitwise the weights of an uninterrupted run;
    with 3 processes, the same to rounding."""
    script = str(SCRIPTS / "faults.py")
    full, _ = run_mpi(mpiexec, 2, script, "full", str(fault_dir))
    assert full.returncode == 0, full.stderr
    shutil.rmtree(fault_dir / "checkpoints")
    killed, ended = run_mpi(mpiexec, 2, script, "kill", str(fault_dir), timeout=60)
    assert killed.returncode != 0
    failed = float(killed.stderr.split("failing at ")[1].split()[0])
    print(f"SIGKILL: the job ended {ended - failed:.2f} s after the kill")
    saved = sorted(p.name for p in (fault_dir / "checkpoints").iterdir())
    assert saved == ["checkpoint-00001.safetensors", "checkpoint-00002.safetensors"]
    shutil.copytree(fault_dir / "checkpoints", fault_dir / "saved")
    for k in (2, 3):
        shutil.rmtree(fault_dir / "checkpoints")
        shutil.copytree(fault_dir / "saved", fault_dir / "checkpoints")
        resumed, _ = run_mpi(mpiexec, k, script, "resume", str(fault_dir))
        assert resumed.returncode == 0, resumed.stderr
    uninterrupted = weights_of(fault_dir / "full-2.json")
    assert weights_of(fault_dir / "resume-2.json").tobytes() == uninterrupted.tobytes()
    assert relative(weights_of(fault_dir / "resume-3.json"), uninterrupted) <= 1e-12


def test_the_same_bad_input_gives_the_same_error_on_every_process(mpiexec, fault_dir):
    """NaN in one process's rows of the training or the test data, engine="numba", and a loss
    that overflows: every process raises the same error (no deadlock, no process left waiting)."""
    result, _ = run_mpi(mpiexec, 3, str(SCRIPTS / "faults.py"), "errors", str(fault_dir), timeout=90)
    assert result.returncode == 0, result.stderr
    lines = [line for r in range(3) for line in (fault_dir / f"errors-{r}.txt").read_text().splitlines()]
    expected = {"fit": "InvalidValueError: x must be finite; row 399 holds NaN or infinite values",
                "evaluate": "InvalidValueError: x must be finite",
                "numba": "ConfigError: engine='numba' cannot train this: a data-parallel run",
                "diverge": "DivergenceError: the loss became"}
    for attempt, start in expected.items():
        errors = {line.split(": ", 1)[1] for line in lines if line.startswith(f"{attempt} rank ")}
        ranks = {line.split()[2].rstrip(":") for line in lines if line.startswith(f"{attempt} rank ")}
        assert ranks == {"0", "1", "2"} and len(errors) == 1, (attempt, lines)
        assert errors.pop().startswith(start)


def test_each_process_scans_only_its_rows_for_nan():
    """first_non_finite_row reads only the rows it is given (what Group.check_finite gives each
    process: its share), and finds the first bad one among them."""
    from backprop._validation import first_non_finite_row

    class Watched(np.ndarray):
        read: list[tuple[int, int]] = []

        def __getitem__(self, key):
            if isinstance(key, slice):
                Watched.read.append(key.indices(len(self))[:2])
            return np.asarray(self).__getitem__(key)

    x = np.zeros((1000, 7))
    x[[10, 700, 900], 3] = [np.nan, np.inf, np.nan]
    watched = x.view(Watched)
    assert first_non_finite_row(watched, slice(333, 666)) is None
    assert all(333 <= a and b <= 666 for a, b in Watched.read) and Watched.read
    assert first_non_finite_row(watched, slice(666, 1000)) == 700
    assert first_non_finite_row(x) == 10 and first_non_finite_row(np.ones((3, 2))) is None


def test_the_train_command_over_two_processes(mpiexec, tmp_path):
    """``mpiexec -n 2 backprop train`` with no new flag: one summary (rank 0's), which says
    "data-parallel over 2 processes", as does the model's metadata; the model is the one a
    single process trains, to float32 rounding."""
    flags = ["train", "--limit", "400", "--epochs", "2", "--layers", "784,16,10", "--dropout", "0.2", "--quiet"]
    result, _ = run_mpi(mpiexec, 2, "-m", "backprop", *flags, "--out", str(tmp_path / "two.safetensors"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("engine: numpy+numba-update, data-parallel over 2 processes") == 1
    assert result.stdout.count("saved model to") == 1
    metadata = json.loads((tmp_path / "two.metrics.json").read_text())
    assert metadata["engine"].endswith("data-parallel over 2 processes")
    from backprop.cli import main

    assert main([*flags, "--out", str(tmp_path / "one.safetensors")]) == 0
    two, one = bp.load(tmp_path / "two.safetensors"), bp.load(tmp_path / "one.safetensors")
    assert relative(two.parameter_buffer, one.parameter_buffer) < 1e-5


def test_a_bad_flag_under_mpiexec_ends_the_job_with_exit_code_2(mpiexec):
    result, _ = run_mpi(mpiexec, 2, "-m", "backprop", "train", "--batch-size", "0", timeout=60)
    assert result.returncode == 2
    assert "backprop train: error: --batch-size must be a positive integer; got 0" in result.stderr


def test_the_cost_model_of_benchmarks_distributed():
    """The ring all-reduce moves 2(K − 1)/K of the gradient bytes; efficiency with the global
    batch fixed is t(B) / (K (t(B/K) + a(K))), with the batch per process fixed t(B) / (t(B) + a(K))."""
    import importlib.util

    path = SCRIPTS.parents[1] / "benchmarks" / "distributed.py"
    spec = importlib.util.spec_from_file_location("bench_distributed", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.allreduce_seconds(2, 10**9, 8) == pytest.approx(1.0)  # 1 GB · 8 bit at 8 Gbit/s
    assert bench.allreduce_seconds(64, 10**9, 8) == pytest.approx(2 * 63 / 64)
    # compute proportional to the batch (1 ms per sample), 1.25 MB of gradient: 1 ms at 10 Gbit/s for K = 2
    run = {"config": "C3", "compute_ms_by_k": {str(k): 128 / k for k in bench.MODEL_K},
           "one_process": {"gradient_bytes": 1_250_000, "step_ms": 64.0},
           "two_processes": {"bare_allreduce_ms": 1.0, "step_ms": 66.0}}
    m = bench.model(run)
    assert m["fixed_global"][10][2] == pytest.approx(128 / (2 * (64 + 1)))
    assert m["fixed_per_process"][10][64] == pytest.approx(128 / (128 + 2 * 63 / 64))
    assert m["here"]["predicted_step_ms"] == pytest.approx(65.0)
    assert m["here"]["measured_efficiency"] == pytest.approx(128 / 132)


# ------------------------------------------------------------------- threads
def test_threads_per_process_follow_the_flag_then_the_environment_then_the_cores():
    from backprop.threads import oversubscription, threads_from_environment, threads_per_process

    assert threads_per_process(3, 2, 8, {"OPENBLAS_NUM_THREADS": "1"}) == 3  # --threads wins
    for env in ({"OPENBLAS_NUM_THREADS": "2"}, {"OMP_NUM_THREADS": "4,2"}, {"MKL_NUM_THREADS": "1"}):
        assert threads_per_process(None, 2, 8, env) is None  # the BLAS already read it
    assert threads_from_environment({"OMP_NUM_THREADS": "4,2"}) == 4
    assert threads_from_environment({"OPENBLAS_NUM_THREADS": "0", "OMP_NUM_THREADS": "x"}) is None
    assert threads_per_process(None, 3, 8, {}) == 2 and threads_per_process(None, 4, 2, {}) == 1
    assert oversubscription(1, 2, 2) is None
    assert oversubscription(2, 2, 2) == ("2 processes × 2 BLAS threads on this machine's 2 cores: oversubscribed, "
                                         "which can be many times slower; use --threads 1 (or set "
                                         "OPENBLAS_NUM_THREADS)")


@pytest.mark.parametrize("flag, variable, warned", [([], "", False), ([], "cores", True),
                                                    (["--threads", "1"], "cores", False),
                                                    (["--threads", "cores"], "", True)])
def test_under_mpiexec_the_thread_setting_is_honoured_and_oversubscription_warned_once(
        mpiexec, tmp_path, flag, variable, warned):
    """``mpiexec -n 2 backprop train`` on one machine: OPENBLAS_NUM_THREADS set to the machine's
    cores makes 2 × cores threads, which is warned once (not once per process); ``--threads``
    wins over the variable; unset, the cores are shared and nothing is warned."""
    cores = str(len(os.sched_getaffinity(0)))
    env = _environment()
    del env["OPENBLAS_NUM_THREADS"], env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"]
    if variable:
        env["OPENBLAS_NUM_THREADS"] = cores
    command = [mpiexec, "-n", "2", sys.executable, "-m", "backprop", "train", "--limit", "60", "--epochs", "1",
               "--layers", "784,8,10", "--batch-size", "20", "--quiet", "--out", str(tmp_path / "m.safetensors"),
               *[cores if a == "cores" else a for a in flag]]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "oversubscribed" in line]
    assert len(lines) == (1 if warned else 0), done.stderr
    if warned:
        assert lines[0].startswith(f"backprop train: warning: 2 processes × {cores} BLAS threads")


def test_a_bad_collective_timeout_is_a_usage_error():
    from backprop.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "--collective-timeout", "0"])
    assert exit_.value.code == 2
    from backprop.distributed.group import check_timeout

    assert check_timeout(None) is None and check_timeout(5) == 5.0
    for bad in (0, -1, float("nan"), float("inf"), "60", True):
        with pytest.raises(bp.errors.ConfigError, match="timeout must be a number of seconds > 0"):
            check_timeout(bad)
