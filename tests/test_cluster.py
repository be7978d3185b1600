"""``mpiexec`` across several hosts over TCP, with faults on the wire (tests/cluster.py).

The hosts are network namespaces of this machine, each pinned to a core of its own (with three
hosts on two cores, hosts 1 and 2 share core 1), with its own host name and its own private
folder; MPICH moves the data over TCP through a bridge, as between machines. They need root and
``ip``; without them every test here skips, saying why. Every job runs under a time limit and
the cluster is torn down after each test, whatever happens.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cluster as cl

SCRIPT = Path(__file__).parent / "mpi_scripts" / "cluster_train.py"
sys.path.insert(0, str(SCRIPT.parent))

import cases  # noqa: E402

#: the network and run of the tests on their own data: 400 samples of 20 features, 4 classes
FLAGS = ["--layers", "20,32,4", "--dropout", "0.1", "--dtype", "float64", "--engine", "numpy",
         "--batch-size", "40", "--seed", "3", "--quiet"]
#: epochs of the jobs that a fault interrupts, and the least seconds of each of their steps
#: (cluster_train.py's pause): 1,500 steps of at least 5 ms, long enough to be cut in the middle
LONG, PAUSE = 150, 0.005


@pytest.fixture(scope="module")
def mpiexec() -> str:
    why = cl.unavailable()
    if why:
        pytest.skip(f"no cluster of namespaces here: {why}")
    found = cl.find_mpiexec()
    if found is None:
        pytest.skip("no mpiexec: pip install '.[mpi]' (mpi4py and the MPICH wheel)")
    return found


@pytest.fixture
def clusters():
    """``make(k)``: a cluster of k hosts, torn down when the test ends (pass or fail)."""
    made: list[cl.Cluster] = []

    def make(k: int) -> cl.Cluster:
        made.append(cl.Cluster(k))
        made[-1].up()
        return made[-1]

    yield make
    for cluster in made:
        cluster.down()


def environment() -> dict[str, str]:
    """This environment without a launcher's variables (the jobs' threads follow their cores)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "MV2_"))
           and k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    src = str(Path(__file__).parents[1] / "src")
    env.update(MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")])))
    return env


def finish(process: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    """Wait for ``process`` at most ``timeout`` s (then kill its whole session and fail)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"still running after {timeout} s\n{out[-2000:]}\n{err[-2000:]}")
    return process.returncode, out, err


def start(cluster: cl.Cluster, mpiexec: str, args: list[str], hosts: int | None = None,
          pause: float = 0.0) -> subprocess.Popen:
    """``cluster_train.py LOCAL train ARGS`` on one process per host (each step at least
    ``pause`` seconds long: see cluster_train.py)."""
    argv = cluster.mpiexec(mpiexec, [sys.executable, str(SCRIPT), str(cluster.local), "train", *args], hosts=hosts,
                           env={"CLUSTER_TRAIN_PAUSE": str(pause)})
    return cluster.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment())


def train(cluster: cl.Cluster, mpiexec: str, args: list[str], hosts: int | None = None,
          timeout: float = 90) -> list[np.ndarray]:
    """Run the job to its end; every process's final weights, by rank."""
    code, _, err = finish(start(cluster, mpiexec, args, hosts), timeout)
    assert code == 0, err[-3000:]
    k = hosts or len(cluster.hosts)
    return [np.load(cluster.private(r) / f"weights-rank{r}.npy") for r in range(k)]


def alone(tmp: Path, args: list[str]) -> np.ndarray:
    """The same command in one process, no launcher: its final weights."""
    tmp.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp), "train", *args], capture_output=True,
                          text=True, env=environment(), timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return np.load(tmp / "weights-rank0.npy")


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def same_everywhere(weights: list[np.ndarray]) -> np.ndarray:
    for r, w in enumerate(weights[1:], 1):
        assert w.tobytes() == weights[0].tobytes(), f"process {r}'s weights differ from process 0's"
    return weights[0]


def give_data(cluster: cl.Cluster, also: Path | None = None) -> list[str]:
    """A copy of the training data in every host's private folder (and in ``also``); the flags
    that name it, the same path on every host."""
    x, y = cases.data(400, 20, 4, seed=5)
    for folder in [cluster.private(h.index) for h in cluster.hosts] + ([also] if also else []):
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "x.npy", x)
        np.save(folder / "y.npy", y)
    return ["--train-file", str(cluster.local / "x.npy"), "--train-labels", str(cluster.local / "y.npy")]


def own_data(folder: Path) -> list[str]:
    return ["--train-file", str(folder / "x.npy"), "--train-labels", str(folder / "y.npy")]


def wait_for_epoch(checkpoints: Path, epoch: int, process: subprocess.Popen, timeout: float = 60) -> None:
    """Until the checkpoint of ``epoch`` or a later one is written (the job is under way),
    failing if the job ends first."""
    end = time.monotonic() + timeout
    while not any(p.stem[11:].isdigit() and int(p.stem[11:]) >= epoch
                  for p in checkpoints.glob("checkpoint-*.safetensors")):
        assert process.poll() is None, f"the job ended before epoch {epoch}: {process.communicate()[1][-2000:]}"
        assert time.monotonic() < end, f"no checkpoint of epoch {epoch} after {timeout} s"
        time.sleep(0.05)


def stopped_lines(err: str) -> list[str]:
    """The "stopped answering" messages in ``err``, one per process that printed one (mpiexec
    forwards the processes' output as it arrives, so two may share a line of ``err``)."""
    return re.findall(r"backprop: [^\[]*stopped answering[^\[]*\[process \d+ of \d+; ending the job\]", err)


# ------------------------------------------------------------------ equality
def test_two_hosts_each_reading_its_own_copy_train_the_model_of_one_process(mpiexec, clusters, tmp_path):
    """Each host reads the .npy files in its private folder: the weights are bitwise the same
    on both, within 1e-12 of one process's in float64, and the gradients crossed the wire."""
    cluster = clusters(2)
    args = [*FLAGS, "--epochs", "3", "--out", str(cluster.local / "m.safetensors")]
    sent = [cluster.bytes_sent(i) for i in range(2)]
    got = same_everywhere(train(cluster, mpiexec, [*give_data(cluster, tmp_path), *args]))
    reference = alone(tmp_path / "one", [*own_data(tmp_path), *args[:-1], str(tmp_path / "one.safetensors")])
    difference = relative(got, reference)
    print(f"2 hosts, own copies: max relative difference to one process {difference:.2e}")
    assert difference <= 1e-12
    steps = 3 * 10
    for i in range(2):  # each step's all-reduce moves the gradient (8 bytes a weight) across
        assert cluster.bytes_sent(i) - sent[i] > steps * got.size * 8, f"host {i} sent too little: shared memory?"
    assert (cluster.private(0) / "m.safetensors").exists() and not (cluster.private(1) / "m.safetensors").exists()


def test_three_hosts_on_two_cores_train_mnist_as_one_process(mpiexec, clusters, tmp_path):
    """The embedded MNIST on three hosts (hosts 1 and 2 share a core): bitwise the same weights
    everywhere, within 1e-12 of one process's."""
    cluster = clusters(3)
    args = ["--limit", "300", "--layers", "784,16,10", "--dropout", "0.2", "--dtype", "float64",
            "--engine", "numpy", "--batch-size", "32", "--epochs", "2", "--quiet"]
    got = same_everywhere(train(cluster, mpiexec, [*args, "--out", str(cluster.local / "m.safetensors")]))
    reference = alone(tmp_path, [*args, "--out", str(tmp_path / "m.safetensors")])
    difference = relative(got, reference)
    print(f"3 hosts on 2 cores, MNIST: max relative difference to one process {difference:.2e}")
    assert difference <= 1e-12


# ------------------------------------------------------------------ faults
@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> np.ndarray:
    """One process's weights after the LONG run that the fault tests interrupt and resume."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    x, y = cases.data(400, 20, 4, seed=5)
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", y)
    return alone(folder, [*own_data(folder), *FLAGS, "--epochs", str(LONG), "--out", str(folder / "m.safetensors")])


def resume_on(cluster: cl.Cluster, mpiexec: str, data: list[str], checkpoints: Path, hosts: int) -> np.ndarray:
    """Resume the LONG run from ``checkpoints`` on the first ``hosts`` hosts."""
    args = [*data, *FLAGS, "--epochs", str(LONG), "--checkpoint-dir", str(checkpoints), "--resume",
            "--out", str(cluster.local / "resumed.safetensors")]
    return same_everywhere(train(cluster, mpiexec, args, hosts=hosts))


def test_a_cut_link_ends_the_job_and_the_survivors_resume(mpiexec, clusters, uninterrupted):
    """Host 2's link goes down for good in the middle of the run (collective timeout 3 s): the
    job ends within the timeout + 30 s; processes 0 and 1 each print one line naming process 2.
    Resumed on hosts 0 and 1 from the checkpoint on shared storage, the run ends within 1e-12
    of one process's uninterrupted run."""
    cluster = clusters(3)
    data, checkpoints = give_data(cluster), cluster.workdir / "shared" / "checkpoints"
    args = [*data, *FLAGS, "--epochs", str(LONG), "--checkpoint-dir", str(checkpoints),
            "--collective-timeout", "3", "--out", str(cluster.local / "m.safetensors")]
    job = start(cluster, mpiexec, args, pause=PAUSE)
    wait_for_epoch(checkpoints, 3, job)
    cluster.cut(2)
    cut = time.monotonic()
    code, _, err = finish(job, 60)
    ended = time.monotonic() - cut
    print(f"cut link: the job ended {ended:.1f} s after the cut (timeout 3 s), exit code {code}")
    assert code != 0 and ended < 3 + 30
    lines = stopped_lines(err)
    assert sorted(line.split("[process ")[1].split()[0] for line in lines) == ["0", "1"], err[-3000:]
    assert all(line.startswith("backprop: process 2 stopped answering") for line in lines), lines
    resumed = resume_on(cluster, mpiexec, data, checkpoints, hosts=2)
    difference = relative(resumed, uninterrupted)
    print(f"resumed on 2 hosts: max relative difference to the uninterrupted run {difference:.2e}")
    assert difference <= 1e-12


def test_a_link_back_within_the_timeout_lets_the_job_go_on(mpiexec, clusters, uninterrupted):
    """Host 1's link is down for 1.5 s while the timeout is 20 s: the job goes on and ends with
    the weights it would have had."""
    cluster = clusters(2)
    checkpoints = cluster.workdir / "shared" / "checkpoints"
    args = [*give_data(cluster), *FLAGS, "--epochs", str(LONG), "--checkpoint-dir", str(checkpoints),
            "--collective-timeout", "20", "--out", str(cluster.local / "m.safetensors")]
    job = start(cluster, mpiexec, args, pause=PAUSE)
    wait_for_epoch(checkpoints, 3, job)
    cluster.cut(1)
    time.sleep(1.5)
    assert job.poll() is None, "the job ended while the link was down"
    cluster.mend(1)
    code, _, err = finish(job, 90)
    assert code == 0, err[-3000:]
    got = same_everywhere([np.load(cluster.private(r) / f"weights-rank{r}.npy") for r in range(2)])
    assert relative(got, uninterrupted) <= 1e-12


def test_five_percent_loss_gives_the_same_weights(mpiexec, clusters):
    """The switch drops 5% of the frames at random: the job completes with bitwise the weights
    of the same job on a clean link."""
    if cl.tool_missing("nft"):
        pytest.skip(cl.tool_missing("nft"))
    cluster = clusters(2)
    args = [*give_data(cluster), *FLAGS, "--epochs", "4", "--out", str(cluster.local / "m.safetensors")]
    clean = same_everywhere(train(cluster, mpiexec, args))
    cluster.lose(5)
    lossy = same_everywhere(train(cluster, mpiexec, args, timeout=120))
    print(f"5% loss: {cluster.dropped()} frames dropped")
    assert cluster.dropped() > 0
    assert lossy.tobytes() == clean.tobytes()


def test_a_paused_host_ends_the_job_and_one_process_resumes(mpiexec, clusters, uninterrupted):
    """Host 1 is paused (SIGSTOP) past the timeout: process 0 prints one line naming process 1
    and the job ends; one process resumes from the checkpoint and ends within 1e-12 of the
    uninterrupted run."""
    cluster = clusters(2)
    data, checkpoints = give_data(cluster), cluster.workdir / "shared" / "checkpoints"
    args = [*data, *FLAGS, "--epochs", str(LONG), "--checkpoint-dir", str(checkpoints),
            "--collective-timeout", "3", "--out", str(cluster.local / "m.safetensors")]
    job = start(cluster, mpiexec, args, pause=PAUSE)
    wait_for_epoch(checkpoints, 3, job)
    for pid in cluster.pids(1):
        os.kill(pid, signal.SIGSTOP)
    paused = time.monotonic()
    code, _, err = finish(job, 60)
    ended = time.monotonic() - paused
    print(f"paused host: the job ended {ended:.1f} s after SIGSTOP (timeout 3 s), exit code {code}")
    assert code != 0 and ended < 3 + 30
    lines = stopped_lines(err)
    assert len(lines) == 1 and lines[0].startswith("backprop: process 1 stopped answering"), err[-3000:]
    assert "[process 0 of 2; ending the job]" in lines[0]
    for pid in cluster.pids(1):  # what is left of the paused host's processes (ours)
        os.kill(pid, signal.SIGKILL)
    local = cluster.private(0)
    shutil.copy(local / "x.npy", cluster.workdir / "x.npy")
    shutil.copy(local / "y.npy", cluster.workdir / "y.npy")
    resumed = alone(cluster.workdir / "one", [*own_data(cluster.workdir), *FLAGS, "--epochs", str(LONG),
                                              "--checkpoint-dir", str(checkpoints), "--resume",
                                              "--out", str(cluster.workdir / "resumed.safetensors")])
    assert relative(resumed, uninterrupted) <= 1e-12


def test_the_cluster_is_torn_down(mpiexec):
    """After a cluster is closed (and even when its process died), none of its namespaces remain."""
    with cl.Cluster(2) as cluster:
        names = {h.namespace for h in cluster.hosts} | {cluster.switch}
        assert names <= set(cl._namespaces())
    assert not names & set(cl._namespaces())
    assert not cluster.workdir.exists()


def test_a_dead_process_s_cluster_is_removed_by_the_next(mpiexec):
    """Namespaces named for a process that no longer runs are deleted when a cluster starts."""
    dead = next(pid for pid in range(4_000_000, 4_100_000) if not Path(f"/proc/{pid}").exists())
    name = f"{cl.PREFIX}{dead}x0-host0"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert name in cl.remove_stale()
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)
    assert name not in cl._namespaces()


def test_where_namespaces_cannot_be_made_the_reason_is_given(monkeypatch):
    """Not root, or no `ip`: unavailable() says which (the tests above skip with it)."""
    if sys.platform != "linux":
        assert cl.unavailable() == "network namespaces need Linux"
        return
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cl.unavailable() == "making network namespaces needs root"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert cl.unavailable() == "no `ip` on PATH (apt-get install iproute2)"


def test_hosts_get_cores_of_their_own_while_they_last():
    assert cl.default_cores(2, [0, 1]) == ["0", "1"]
    assert cl.default_cores(3, [0, 1]) == ["0", "1", "1"]  # host 0 runs mpiexec: it keeps its core
    assert cl.default_cores(5, [4, 5, 6]) == ["4", "5", "6", "5", "6"]
    assert cl.default_cores(2, [7]) == ["7", "7"]
