"""The shipped Fig. 1 results: checksum, contents, and that the code reproduces them.

Oracles: sha256 from hashlib; a live re-run of the first 1000 steps with the same seed
(the shipped numbers must come out again); a float64 numpy forward pass with
np.percentile for the percentiles at step 0; a plain loop for steps_to_reach.
"""

import os
import shutil
import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pytest
from torch import nn

from bn_helpers import figure1, models
from bn_helpers.data import DataIntegrityError, load_mnist

LIVE_STEPS = 1000


@pytest.fixture(scope="module")
def shipped():
    return figure1.load_figure1()


@pytest.fixture(scope="module")
def live():
    _, histories = figure1.train_nets(LIVE_STEPS, progress=False)
    return figure1.summarise(histories)


def test_shipped_shapes_and_metadata(shipped):
    n_ckpt = figure1.SETTINGS["steps"] // figure1.SETTINGS["record_every"] + 1
    np.testing.assert_array_equal(shipped.steps, np.arange(n_ckpt) * 500)
    assert shipped.loss_steps.shape == (500,) and shipped.loss_steps[-1] == 50_000
    for net in figure1.NETS:
        acc, pct = shipped.test_accuracy[net], shipped.percentiles[net]
        assert acc.shape == (n_ckpt,) and ((acc >= 0) & (acc <= 1)).all()
        assert pct.shape == (n_ckpt, 3, 100)
        assert (np.diff(pct, axis=1) >= 0).all(), "15th <= 50th <= 85th percentile"
        loss = shipped.loss[net]
        assert loss.shape == (500,) and np.isfinite(loss).all()
    meta = shipped.meta
    for key in ("seed", "lr", "init_std", "steps", "batch_size", "record_every"):
        assert meta[key] == figure1.SETTINGS[key], key
    assert {"torch", "numpy", "python"} <= set(meta)
    assert figure1.DEFAULT_PATH.stat().st_size < 1_000_000


def test_corrupt_copy_is_refused(tmp_path):
    for name in ("figure1_seed0.npz", "SHA256SUMS"):
        shutil.copy(figure1.DEFAULT_PATH.parent / name, tmp_path / name)
    path = tmp_path / "figure1_seed0.npz"
    expected = figure1.sha256_of(path)
    figure1.load_figure1(path)  # the intact copy loads
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataIntegrityError) as err:
        figure1.load_figure1(path)
    msg = str(err.value)
    assert expected in msg and figure1.sha256_of(path) in msg
    assert "tools/reproduce_figure1.py" in msg and str(path) in msg


def test_missing_file_and_missing_checksum(tmp_path):
    with pytest.raises(FileNotFoundError, match="reproduce_figure1"):
        figure1.load_figure1(tmp_path / "figure1_seed0.npz")
    shutil.copy(figure1.DEFAULT_PATH, tmp_path / "figure1_seed0.npz")
    with pytest.raises(FileNotFoundError, match="SHA256SUMS"):
        figure1.load_figure1(tmp_path / "figure1_seed0.npz")
    (tmp_path / "SHA256SUMS").write_text("0" * 64 + "  other.npz\n")
    with pytest.raises(DataIntegrityError, match="no entry"):
        figure1.load_figure1(tmp_path / "figure1_seed0.npz")


def _assert_reproduces(live, shipped):
    """live equals the shipped file's first steps within figure1.REPRO_TOL."""
    tol = figure1.REPRO_TOL
    cut = shipped.until(int(live.steps[-1]))
    np.testing.assert_array_equal(live.steps, cut.steps)
    np.testing.assert_array_equal(live.loss_steps, cut.loss_steps)
    for net in figure1.NETS:
        np.testing.assert_allclose(live.test_accuracy[net], cut.test_accuracy[net],
                                   rtol=0, atol=tol["acc_atol"])
        np.testing.assert_allclose(live.percentiles[net], cut.percentiles[net],
                                   rtol=tol["pct_rtol"], atol=tol["pct_atol"])
        np.testing.assert_allclose(live.loss[net], cut.loss[net],
                                   rtol=tol["loss_rtol"])


def test_first_steps_reproduce_the_shipped_file(shipped, live):
    """The shipped numbers come from this code: a live run gives them again."""
    _assert_reproduces(live, shipped)


_RERUN = """
import sys
import torch
from bn_helpers import figure1
_, histories = figure1.train_nets(int(sys.argv[1]), progress=False)
figure1.save_figure1(figure1.summarise(histories), sys.argv[2])
print(torch.backends.cpu.get_cpu_capability())
"""


@pytest.mark.parametrize("capability", ["default", "avx2"])
def test_reproduces_with_other_cpu_kernels(shipped, capability, tmp_path):
    """Another CPU picks other torch kernels: force them, the file must still agree.

    torch reads ATEN_CPU_CAPABILITY once, at start-up, so each level runs in its own
    interpreter. This is the spread REPRO_TOL was set from.
    """
    out = tmp_path / "figure1_seed0.npz"
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability)
    run = subprocess.run([sys.executable, "-c", _RERUN, str(LIVE_STEPS), str(out)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-1].lower() == capability, run.stdout
    _assert_reproduces(figure1.load_figure1(out), shipped)


def test_save_round_trip_is_byte_stable(live, tmp_path):
    digests = [figure1.save_figure1(live, tmp_path / f"run{i}" / "f.npz")
               for i in range(2)]
    assert digests[0] == digests[1], "same numbers must give the same file"
    back = figure1.load_figure1(tmp_path / "run0" / "f.npz")
    for net in figure1.NETS:
        np.testing.assert_array_equal(back.percentiles[net], live.percentiles[net])
        np.testing.assert_array_equal(back.test_accuracy[net], live.test_accuracy[net])
    assert back.meta == live.meta


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_step0_percentiles_match_numpy_forward(shipped):
    """Before training: layer-3 sigmoid inputs by a float64 numpy forward pass."""
    probe, _ = load_mnist("test")
    u = probe[:figure1.SETTINGS["n_probe"]].astype(np.float64)
    for net_name in figure1.NETS:
        bn = net_name == "BN"
        net = models.build_mlp(batchnorm=bn, init_std=0.1, seed=0)
        weights = [m.weight.detach().double().numpy() for m in net
                   if isinstance(m, nn.Linear)]
        h = u
        for w in weights[:3]:
            z = h @ w.T  # biases start at 0; BN starts at gamma = 1, beta = 0
            if bn:
                z = (z - z.mean(0)) / np.sqrt(z.var(0) + 1e-5)
            h = _sigmoid(z)
        expected = np.percentile(z, [15, 50, 85], axis=0)
        np.testing.assert_allclose(shipped.percentiles[net_name][0], expected,
                                   rtol=1e-4, atol=1e-5)


def test_steps_to_reach_against_a_loop(shipped):
    for net in figure1.NETS:
        acc = shipped.test_accuracy[net]
        for target in (0.5, 0.9, 0.95, 0.97, 0.999):
            first = next((int(s) for s, a in zip(shipped.steps, acc, strict=True)
                          if a >= target), None)
            assert figure1.steps_to_reach(shipped.steps, acc, target) == first
    with pytest.raises(ValueError, match="target"):
        figure1.steps_to_reach(shipped.steps, acc, 95)


def test_plot_has_three_labelled_panels(shipped):
    fig = figure1.plot_figure1(shipped)
    axes = fig.axes
    assert len(axes) == 3
    assert [ax.get_title()[:3] for ax in axes] == ["(a)", "(b)", "(c)"]
    assert all(ax.get_xlabel() and ax.get_legend() for ax in axes)
    with pytest.raises(ValueError, match="unit"):
        figure1.plot_figure1(shipped, unit=100)
    assert axes[0].get_xscale() == "symlog" and axes[0].child_axes  # log x, inset
    plt.close(fig)
    fig = figure1.plot_figure1(shipped, others=[shipped])  # the seed band in (a)
    assert len(fig.axes[0].collections) == 2
    plt.close(fig)
    with pytest.raises(ValueError, match="others"):
        figure1.plot_figure1(shipped, others=[shipped.until(1000)])


def test_every_shipped_seed_loads_and_says_its_seed():
    runs = figure1.load_seeds()
    assert sorted(runs) == sorted(figure1.SEEDS) and len(runs) >= 3
    for seed, run in runs.items():
        assert run.meta["seed"] == seed
        assert figure1.path_for(seed).stat().st_size < 1_000_000
        for key in ("lr", "init_std", "steps", "batch_size", "record_every"):
            assert run.meta[key] == figure1.SETTINGS[key], (seed, key)
    accs = [run.test_accuracy["BN"] for run in runs.values()]
    assert not any(np.array_equal(accs[0], a) for a in accs[1:])  # really other seeds
    with pytest.raises(ValueError, match="seed"):
        figure1.path_for(-1)
