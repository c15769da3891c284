"""rnnkit.runtime: the thread policy (load readings injected; no timing) and the malloc switch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import rnnkit.training
from rnnkit import runtime
from rnnkit.errors import UserError
from rnnkit.runtime import auto_threads, busy_cores, choose_threads, resolve_threads, use_threads


@pytest.mark.parametrize(
    "cpus,busy,default,expected",
    [
        (2, 0.0, 2, 2),  # quiet: torch's default
        (2, 0.4, 2, 2),  # a little noise is still quiet
        (2, 0.6, 2, 1),  # more than half a core taken: one thread
        (2, 1.0, 2, 1),
        (2, 2.0, 2, 1),  # both cores busy
        (2, 7.5, 2, 1),  # oversubscribed: never below one
        (1, 0.0, 1, 1),
        (4, 1.0, 4, 3),
        (4, 2.6, 4, 1),
        (16, 0.0, 8, 8),  # hyper-threads: torch's default is the physical cores
        (16, 4.0, 8, 6),
        (2, 0.0, 8, 8),  # the user set more threads than CPUs: quiet keeps their choice
        (2, 1.5, 8, 1),
        (8, 0.0, 1, 1),  # never more than the default
    ],
)
def test_choose_threads(cpus, busy, default, expected):
    assert choose_threads(cpus=cpus, busy=busy, default=default) == expected


def test_auto_threads_takes_an_injected_reading():
    assert auto_threads(busy=0.0, cpus=2, default=2) == 2
    assert auto_threads(busy=1.9, cpus=2, default=2) == 1


def test_busy_cores_from_proc_stat_and_own_use():
    stat = "cpu  9 9 9 9 9 9 9 9 0 0\ncpu0 {} 0 {} {} 0 0 0 0 0 0\ncpu1 {} 0 0 {} 0 0 0 {} 0 0\n"
    before = runtime._cpu_ticks([0, 1], stat.format(100, 0, 100, 100, 100, 0))
    # Over the window: cpu0 spent 10 ticks busy (user, system), cpu1 5 idle and 5 stolen.
    after = runtime._cpu_ticks([0, 1], stat.format(105, 5, 100, 100, 105, 5))
    assert before == (200, 400) and after == (215, 420)
    assert busy_cores(before, after, 2, own_cores=0.0) == pytest.approx(1.5)
    assert busy_cores(before, after, 2, own_cores=0.5) == pytest.approx(1.0)  # ours excluded
    assert busy_cores(before, after, 2, own_cores=3.0) == 0.0
    only_cpu1 = runtime._cpu_ticks([1], stat.format(100, 0, 100, 100, 100, 0))
    assert only_cpu1 == (100, 200)  # CPUs outside our affinity do not count
    assert busy_cores(before, before, 2, 0.0) == 0.0  # no time passed


def test_measurement_on_this_machine_is_a_number():
    busy = runtime.measure_busy_cores(0.02)
    if busy is None:
        pytest.skip("no load reading on this platform")
    assert 0.0 <= busy <= 4 * (os.cpu_count() or 1)


def test_only_the_first_reading_waits(monkeypatch):
    if runtime._read() is None:
        pytest.skip("no /proc/stat here")
    waits = []
    monkeypatch.setattr(runtime, "_last", None)
    monkeypatch.setattr(runtime.time, "sleep", waits.append)
    first = runtime.measure_busy_cores(0.0)
    second = runtime.measure_busy_cores(0.0)  # the window since the first reading
    assert waits == [0.0] and first >= 0.0 and second >= 0.0


def test_use_threads_applies_the_policy_and_restores(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(runtime, "_decision", None)
    monkeypatch.setattr(runtime, "measure_busy_cores", lambda seconds=0.1: 99.0)  # all busy
    with use_threads("auto"):
        assert torch.get_num_threads() == 1
        with use_threads("auto"):  # nested: the decision is reused
            assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user chose: None leaves torch alone
    assert resolve_threads(None) is None
    assert resolve_threads("auto") == 1  # "auto" asks for the policy all the same
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert resolve_threads(None) == 1
    assert resolve_threads(3) == 3


def test_policy_decision_is_reused_then_remeasured(monkeypatch):
    readings = iter([0.0, 2.0])
    monkeypatch.setattr(runtime, "_decision", None)
    monkeypatch.setattr(runtime, "measure_busy_cores", lambda seconds=0.1: next(readings))
    assert auto_threads(cpus=2, default=2) == 2
    assert auto_threads(cpus=2, default=2) == 2  # reused: no second reading
    monkeypatch.setattr(runtime, "REUSE_SECONDS", 0.0)
    assert auto_threads(cpus=2, default=2) == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "two", "AUTO"])
def test_bad_threads_are_refused(bad):
    with pytest.raises(UserError, match="threads must be a positive integer, 'auto' or None"):
        resolve_threads(bad)
    with pytest.raises(UserError, match="threads must be a positive integer"):
        runtime.check_threads(bad)


def test_tune_allocator_still_importable_from_training():
    assert rnnkit.training.tune_allocator is runtime.tune_allocator


# The kernel's resident set size is the oracle: after freeing 64 blocks of 1 MB,
# glibc's defaults hand them back (mmap'd above 128 KB); tuned, they stay for reuse.
_PROBE = textwrap.dedent(
    """
    import ctypes
    from rnnkit.runtime import use_threads
    with use_threads(1):  # what every estimator and CLI enters
        pass
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    def rss_mb():
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("VmRSS"))
        return int(line.split()[1]) / 1024
    blocks = [libc.malloc(1 << 20) for _ in range(64)]
    for b in blocks:
        ctypes.memset(b, 1, 1 << 20)
    full = rss_mb()
    for b in blocks:
        libc.free(b)
    print(full - rss_mb())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc, /proc")
@pytest.mark.parametrize("setting,retained", [(None, True), ("1", True), ("0", False)])
def test_allocator_switch_is_honoured(setting, retained):
    env = dict(os.environ)
    env.pop(runtime.MALLOC_TUNING_ENV, None)
    if setting is not None:
        env[runtime.MALLOC_TUNING_ENV] = setting
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    )
    released_mb = float(out.stdout)
    if retained:
        assert released_mb < 8, f"tuned: freed blocks should stay, {released_mb:.0f} MB went"
    else:
        assert released_mb > 48, f"off: freed blocks should go back, only {released_mb:.0f} MB"


def test_cli_threads_option_takes_auto():
    import argparse

    from rnnkit.cli_common import add_runtime_arguments

    p = argparse.ArgumentParser()
    add_runtime_arguments(p)
    assert p.parse_args(["--threads", "auto"]).threads == "auto"
    assert p.parse_args(["--threads", "2"]).threads == 2
    assert p.parse_args([]).threads is None
    with pytest.raises(SystemExit):
        p.parse_args(["--threads", "0"])
