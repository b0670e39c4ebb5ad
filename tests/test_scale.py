"""Scale: mergeable accumulators, spilled rows, resumable scans, torch.distributed sharding."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from captum_fau.errors import ConfigError, DistributedError, ResumeError, StatisticsError
from captum_fau.stats.checkpoint import ScanCheckpoint
from captum_fau.stats.rows import RowStore
from captum_fau.stats.scan import scan
from captum_fau.stats.topn import RunningTopN

from helpers import scale_worker

WORKER = Path(scale_worker.__file__).resolve()
ROOT = Path(__file__).resolve().parents[1]


def _rows(start: int, stop: int, channels: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(start)
    index = np.arange(start, stop)
    return (
        index,
        rng.normal(size=(stop - start, channels)).astype(np.float32),
        rng.integers(0, 9, (stop - start, channels, 2)).astype(np.int32),
    )


# ----------------------------------------------------------------------------- RowStore
@pytest.mark.parametrize("spill_bytes", [None, 0, 200])
def test_row_store_keeps_rows_in_order_in_memory_and_spilled(spill_bytes) -> None:
    store = RowStore(spill_bytes=spill_bytes)
    for start in range(0, 50, 7):
        index, values, where = _rows(start, min(start + 7, 50))
        store.add(index, maxima=values, positions=where)
    index, values, where = _rows(0, 50)
    expected = np.concatenate([_rows(s, min(s + 7, 50))[1] for s in range(0, 50, 7)])
    assert len(store) == 50
    assert store.spilled == (spill_bytes is not None)
    np.testing.assert_array_equal(store.indices.numpy(), np.arange(50))
    np.testing.assert_array_equal(store.column("maxima").numpy(), expected)
    if store.spilled:
        assert isinstance(store.array("maxima"), np.memmap)  # read back through a map, not held in memory


def test_row_store_merge_in_any_order_equals_one_store() -> None:
    shards = [(0, 13), (13, 30), (30, 41)]
    whole = RowStore()
    for a, b in shards:
        index, values, where = _rows(a, b)
        whole.add(index, maxima=values, positions=where)
    for order in itertools.permutations(range(3)):
        merged = RowStore(spill_bytes=64)
        for k in order:
            part = RowStore()
            index, values, where = _rows(*shards[k])
            part.add(index, maxima=values, positions=where)
            merged.merge(part)
        for column in ("index", "maxima", "positions"):
            np.testing.assert_array_equal(np.asarray(merged.array(column)), np.asarray(whole.array(column)))


def test_row_store_state_dict_round_trip_and_bad_merges() -> None:
    store = RowStore(spill_bytes=0)
    index, values, where = _rows(0, 20)
    store.add(index, maxima=values, positions=where)
    copy = RowStore().load_state_dict(store.state_dict())
    np.testing.assert_array_equal(copy.column("maxima").numpy(), values)
    np.testing.assert_array_equal(copy.column("positions").numpy(), where)
    overlapping = RowStore()
    overlapping.add(*_rows(15, 25)[:1], maxima=_rows(15, 25)[1], positions=_rows(15, 25)[2])
    with pytest.raises(StatisticsError, match="occurs in more than one shard"):
        copy.merge(overlapping)
    other = RowStore()
    other.add(np.array([99]), maxima=np.zeros((1, 3), np.float32))
    with pytest.raises(StatisticsError, match="different columns"):
        RowStore().load_state_dict(store.state_dict()).merge(other)
    with pytest.raises(StatisticsError, match="same columns"):
        store.add(np.array([50]), maxima=np.zeros((1, 3), np.float32))
    with pytest.raises(StatisticsError, match="one row per image"):
        store.add(np.array([50, 51]), maxima=np.zeros((1, 3), np.float32), positions=np.zeros((1, 3, 2), np.int32))


def test_row_store_reopen_cuts_back_to_checkpointed_rows(tmp_path) -> None:
    store = RowStore(tmp_path, "rows")
    index, values, where = _rows(0, 30)
    store.add(index[:10], maxima=values[:10])
    store.flush()
    store.add(index[10:], maxima=values[10:])  # rows after the last checkpoint
    store.flush()
    reopened = RowStore.reopen(tmp_path, "rows", 10)
    assert len(reopened) == 10
    np.testing.assert_array_equal(reopened.column("maxima").numpy(), values[:10])
    with pytest.raises(ResumeError, match="holds 10"):
        RowStore.reopen(tmp_path, "rows", 11)


def test_topn_merge_in_any_order_with_ties_equals_one_tracker() -> None:
    rng = np.random.default_rng(0)
    values = torch.from_numpy(rng.integers(0, 4, (60, 5)).astype(np.float32))  # many exact ties
    positions = torch.from_numpy(rng.integers(0, 7, (60, 5, 2)).astype(np.int32))
    whole = RunningTopN(5, 8)
    whole.add(values, torch.arange(60), positions)
    shards = [(0, 17), (17, 18), (18, 60)]
    for order in itertools.permutations(range(3)):
        merged = RunningTopN(5, 8)
        for k in order:
            a, b = shards[k]
            part = RunningTopN(5, 8)
            part.add(values[a:b], torch.arange(a, b), positions[a:b])
            merged.merge(RunningTopN.from_state_dict(part.state_dict()))
        for key, tensor in whole.result().items():
            assert torch.equal(merged.result()[key], tensor), (order, key)


# ----------------------------------------------------------------------------- scans
@pytest.fixture(scope="module")
def net():
    return scale_worker.model()


def test_spilled_scan_equals_in_memory_scan(net) -> None:
    data = scale_worker.SlowSynth(40)
    memory = scan(net, "conv3", data, top_n=3, batch_size=8, keep_outputs=True, progress=False)
    spilled = scan(net, "conv3", data, top_n=3, batch_size=8, keep_outputs=True, progress=False, spill_bytes=0)
    a, b = scale_worker.summary(memory), scale_worker.summary(spilled)
    assert a.keys() == b.keys() and "extra_aus" in a and "outputs" in a
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_checkpointed_scan_resumes_and_rejects_other_settings(tmp_path, net) -> None:
    data = scale_worker.SlowSynth(40)
    plain = scale_worker.summary(scan(net, "conv3", data, top_n=3, batch_size=8, keep_inputs=True, progress=False))
    first = scan(net, "conv3", data, top_n=3, batch_size=8, keep_inputs=True, progress=False, checkpoint=tmp_path)
    assert first.resumed_batches == 0
    again = scan(net, "conv3", data, top_n=3, batch_size=8, keep_inputs=True, progress=False, checkpoint=tmp_path)
    assert again.resumed_batches == 5  # the finished checkpoint is reused, nothing is read again
    for result in (first, again):
        got = scale_worker.summary(result)
        for key in plain:
            assert torch.equal(got[key], plain[key]), key
    # Other settings: the checkpoint is discarded with a note and the scan starts clean.
    other = scan(net, "conv3", data, top_n=4, batch_size=8, progress=False, checkpoint=tmp_path)
    assert other.resumed_batches == 0 and any("top_n: 3 -> 4" in note for note in other.notes)
    fresh = scan(net, "conv3", data, top_n=4, batch_size=8, progress=False)
    assert torch.equal(other.layers["conv3"].maxima, fresh.layers["conv3"].maxima)
    (tmp_path / "scan.rank0-of-3.safetensors").write_bytes(b"")
    with pytest.raises(ResumeError, match="3 process"):
        scan(net, "conv3", data, top_n=3, batch_size=8, progress=False, checkpoint=tmp_path)
    with pytest.raises(ResumeError, match="map-style"):
        scan(net, "conv3", [torch.zeros(2, 1, 96, 96)], progress=False, checkpoint=tmp_path / "other")
    with pytest.raises(ConfigError, match="checkpoint_every_s"):
        scan(net, "conv3", data, progress=False, checkpoint=tmp_path / "other", checkpoint_every_s=-1)
    with pytest.raises(ConfigError, match="gather must be"):
        scan(net, "conv3", data, progress=False, gather="rank1")


def test_killed_scan_restarts_from_its_last_checkpoint(tmp_path, net) -> None:
    """A scan killed with SIGKILL mid-way resumes and ends exactly like an uninterrupted one."""
    ckpt = tmp_path / "ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(WORKER), "slow", str(ckpt)], env=env)
    state = ckpt / "scan.rank0-of-1.safetensors"
    settings = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if state.exists() and proc.poll() is None:
                from safetensors import safe_open

                try:
                    with safe_open(str(state), framework="pt") as handle:
                        meta = json.loads(handle.metadata()["captum_fau_scan"])
                except Exception:  # noqa: BLE001 - the file is being replaced; look again
                    meta = {"batches_done": 0}
                if meta["batches_done"] >= 6:
                    settings = meta["settings"]
                    break
            assert proc.poll() is None, "the scan finished before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert settings is not None, "no checkpoint appeared in time"
    done = ScanCheckpoint(ckpt, settings).load()
    assert done is not None and 6 <= done["batches_done"] < 20 and not done["complete"]
    data = scale_worker.SlowSynth(160)
    kwargs = dict(top_n=scale_worker.TOP_N, batch_size=8, keep_inputs=True, progress=False)
    resumed = scan(net, "conv3", data, checkpoint=ckpt, checkpoint_every_s=0, spill_bytes=0, **kwargs)
    assert resumed.resumed_batches == done["batches_done"]
    plain = scan(net, "conv3", data, **kwargs)
    a, b = scale_worker.summary(resumed), scale_worker.summary(plain)
    for key in b:
        assert torch.equal(a[key], b[key]), key


# ----------------------------------------------------------------------------- torch.distributed
@pytest.fixture()
def one_thread():
    """The ranks run with one thread each; matrix products may round differently with more threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _torchrun(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_two_gloo_processes_give_the_single_process_scan(tmp_path, net, one_thread) -> None:
    from safetensors.torch import load_file

    # A finished single-process checkpoint: resuming it with two processes must be refused.
    scan(net, "conv3", scale_worker.SlowSynth(70), top_n=scale_worker.TOP_N, batch_size=scale_worker.BATCH,
         progress=False, checkpoint=tmp_path / "single-ckpt")  # fmt: skip
    run = _torchrun(str(WORKER), "dist", str(tmp_path), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    results = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]

    single = scale_worker.summary(scan(net, "conv3", scale_worker.faces(), top_n=scale_worker.TOP_N,
                                       batch_size=scale_worker.BATCH, keep_inputs=True, keep_outputs=True,
                                       progress=False))  # fmt: skip
    for r in range(2):  # gather="all": every rank holds exactly the single-process result
        for key, value in single.items():
            assert torch.equal(results[r][f"all_{key}"], value), (r, key)
        assert reports[r]["all_num_images"] == scale_worker.FACES_N

    from captum_fau.attr import TopNDeconv

    top = TopNDeconv(net, "conv3").top_n(scale_worker.faces(), n=3, filters=list(range(0, 256, 8)),
                                         batch_size=scale_worker.BATCH, progress=False)  # fmt: skip
    for r in range(2):  # each rank reconstructed half of the filters; every rank holds them all
        assert reports[r]["topn_processes"] == 2
        for key in ("filters", "indices", "patches", "image_patches"):
            assert torch.equal(results[r][f"topn_{key}"], getattr(top, key)), (r, key)

    lazy = scale_worker.summary(scan(net, "conv3", scale_worker.SlowSynth(70), top_n=scale_worker.TOP_N,
                                     batch_size=scale_worker.BATCH, keep_inputs=True, progress=False))  # fmt: skip
    for key, value in lazy.items():  # gather="rank0", checkpointed and spilled: rank 0 holds it all
        assert torch.equal(results[0][f"rank0_{key}"], value), key
    assert reports[0]["rank0_rows_here"] and not reports[1]["rank0_rows_here"]
    assert results[1]["rank0_maxima"].shape[0] == 0 and reports[1]["rank0_num_images"] == 70
    for key in ("top_values", "top_indices", "kept", "kept_inputs"):  # merged top-N and inputs everywhere
        assert torch.equal(results[1][f"rank0_{key}"], lazy[key]), key

    for r in range(2):
        assert reports[r]["failure"].startswith("DistributedError"), reports[r]["failure"]
        assert "rank 1" in reports[r]["failure"] and "image 50" in reports[r]["failure"]
        assert reports[r]["length"].startswith("DistributedError") and "rank 1: 71" in reports[r]["length"]
        assert reports[r]["world_mismatch"].startswith("ResumeError") and "1 process" in reports[r]["world_mismatch"]
        assert reports[r]["iterable"].startswith("DistributedError") and "map-style" in reports[r]["iterable"]


def test_torchrun_analyze_cli_equals_one_process(tmp_path, one_thread) -> None:
    from safetensors.torch import load_file

    from captum_fau.analyze import analyze

    options = ["--data", "synthfacs:96", "--batch-size", "16", "--top-n", "3", "--permutations", "20",
               "--bootstrap", "5", "--featured", "4", "--no-sanity-check", "--quiet"]  # fmt: skip
    run = _torchrun("-m", "captum_fau.cli", "analyze", "--model", "zerobias-synthfacs-8class", "--out", "two",
                    *options, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("Report:") == 1  # rank 0 alone summarises
    one = analyze("zerobias-synthfacs-8class", "synthfacs:96", out=tmp_path / "one", batch_size=16, n=3,
                  permutations=20, bootstrap=5, n_featured=4, progress=False, sanity_check=False)  # fmt: skip
    assert one.report is not None
    for name in ("topn.safetensors", "fau_kl.safetensors"):
        a, b = load_file(str(tmp_path / "one" / name)), load_file(str(tmp_path / "two" / name))
        assert a.keys() == b.keys()
        for key in a:
            if name == "fau_kl.safetensors" and a[key].is_floating_point():
                # statistics summed in another order across ranks: equal to float64 rounding, NaNs in place
                assert torch.allclose(a[key], b[key], rtol=1e-9, atol=1e-12, equal_nan=True), (name, key)
            else:
                assert torch.equal(a[key], b[key]), (name, key)
    with np.load(tmp_path / "one" / "maxima.npz") as x, np.load(tmp_path / "two" / "maxima.npz") as y:
        for key in x.files:
            np.testing.assert_array_equal(x[key], y[key])
    manifest = json.loads((tmp_path / "two" / "analysis.json").read_text())
    assert manifest["steps"]["scan"]["info"]["processes"] == 2
    assert not (tmp_path / "two" / "scan-checkpoint").exists()  # removed once the results were written


def test_process_group_from_env_needs_torchrun_variables(monkeypatch) -> None:
    from captum_fau._utils.distributed import process_group_from_env

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(DistributedError, match="torchrun"):
        with process_group_from_env(torch.device("cpu")):
            pass


def test_analyze_reads_labels_from_the_items_of_a_lazy_dataset(tmp_path) -> None:
    """A lazy dataset carries AU and emotion labels per item; analyze takes them from the scan."""
    from captum_fau.analyze import analyze
    from captum_fau.data.synthfacs import SynthFACS, load_synthfacs

    lazy = analyze("zerobias-synthfacs-8class", SynthFACS(n=64, seed=2), out=tmp_path / "lazy", n=2,
                   permutations=20, bootstrap=5, n_featured=3, progress=False, sanity_check=False)  # fmt: skip
    eager = analyze("zerobias-synthfacs-8class", load_synthfacs(n=64, seed=2), out=tmp_path / "eager", n=2,
                    permutations=20, bootstrap=5, n_featured=3, progress=False, sanity_check=False)  # fmt: skip
    assert lazy.faukl is not None and lazy.accuracy is not None
    assert lazy.accuracy["accuracy"] == eager.accuracy["accuracy"] and lazy.accuracy["n"] == 64
    np.testing.assert_array_equal(lazy.faukl.stats("conv3").kl, eager.faukl.stats("conv3").kl)
    again = analyze("zerobias-synthfacs-8class", SynthFACS(n=64, seed=2), out=tmp_path / "lazy", n=2,
                    permutations=20, bootstrap=5, n_featured=3, progress=False, sanity_check=False)  # fmt: skip
    assert again.timings["scan"] < lazy.timings["scan"] and again.accuracy == lazy.accuracy  # labels kept on disk
