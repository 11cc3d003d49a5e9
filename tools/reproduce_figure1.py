"""Train both MNIST nets of the paper's Fig. 1 for 50,000 steps and ship the result.

    python tools/reproduce_figure1.py            # writes data/figure1/figure1_seed0.npz
    python tools/reproduce_figure1.py --seed 3   # writes data/figure1/figure1_seed3.npz
    python tools/reproduce_figure1.py --steps 1000 --out /tmp/fig1.npz   # a quick try

Deterministic: the seed fixes the initial weights and the mini-batches, torch runs on
one thread, and the .npz is written with fixed timestamps, so a rerun with the same torch,
numpy and CPU gives the same bytes (the same sha256). The checksum goes into SHA256SUMS
beside the file; bn_helpers.figure1.load_figure1 verifies it. Takes about 2-3 minutes
per seed on 2 quiet cores (measured on a loaded machine: about 260 s of CPU time,
47 minutes of wall-clock time); a progress bar shows each net's training.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bn_helpers import figure1


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=figure1.SETTINGS["steps"],
                        help="training steps per net, a multiple of 500 (default "
                             "%(default)s, the paper's)")
    parser.add_argument("--seed", type=int, default=figure1.SETTINGS["seed"],
                        help="initial weights and batch order (default %(default)s)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the .npz to write; SHA256SUMS goes beside it (default "
                             "data/figure1/figure1_seed{SEED}.npz)")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = figure1.path_for(args.seed)
    start = time.perf_counter()
    cpu = time.process_time()
    _, histories = figure1.train_nets(args.steps, seed=args.seed)
    fig1 = figure1.summarise(histories)
    digest = figure1.save_figure1(fig1, args.out)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1e3:.0f} kB), sha256 {digest}, "
          f"in {time.perf_counter() - start:.0f} s "
          f"({time.process_time() - cpu:.0f} s of CPU time)")
    for label in figure1.NETS:
        print(f"{label:>6}: final test accuracy {fig1.test_accuracy[label][-1]:.4f}")


if __name__ == "__main__":
    main()
