"""Time to accuracy of the default recipe on real Fashion-MNIST.

Wall seconds from process start (imports included) to the end of each epoch, with that epoch's
validation and test accuracy. Test accuracy is measured here for the table only (the recipe
selects on validation); the time spent measuring it is subtracted from the wall clock.

    .venv/bin/python bench/time_to_accuracy.py [recipe] [key=value ...]
    .venv/bin/python bench/time_to_accuracy.py --seeds 0,1,2,3,4 [recipe] [key=value ...]

With ``--seeds``, each seed runs as a fresh process (imports counted every time, like a user's
command), one after the other; the table gives each seed's final validation and test accuracy
and its time to 92.5 % and 93 %, then their mean ± standard deviation (``bench …_mean`` lines).
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # before torch is imported: "from process start" as a user sees it

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from _common import TestEachEpoch, split_recipe_args  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from trainlab import load_config  # noqa: E402
from trainlab.experiment import build_callbacks, build_experiment  # noqa: E402


def _bench_lines(out: str) -> dict[str, str]:
    return {p[1]: p[2] for p in (line.split() for line in out.splitlines())
            if len(p) >= 3 and p[0] == "bench"}  # fmt: skip


def many_seeds(seeds: list[int], argv: list[str]) -> None:
    import statistics
    import subprocess

    table = Table(title=f"time to accuracy, seeds {seeds}: {' '.join(argv) or 'default recipe'}")
    for col in ("seed", "val acc", "test acc", "time to 92.5 %", "time to 93 %", "wall s"):
        table.add_column(col, justify="right")
    accs, t93 = [], []
    for seed in seeds:
        proc = subprocess.run([sys.executable, __file__, *argv, f"seed={seed}"],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0:
            sys.exit(f"seed {seed} failed:\n{proc.stderr[-2000:]}")
        b = _bench_lines(proc.stdout)
        accs.append(float(b["default_recipe_test_acc"]))
        t93.append(float(b["time_to_93_s"]) if b["time_to_93_s"] != "not_reached" else None)
        cells = ("default_recipe_val_acc", "default_recipe_test_acc", "time_to_92_5_s",
                 "time_to_93_s", "default_recipe_wall_s")  # fmt: skip
        table.add_row(str(seed), *(b[c] for c in cells))
    Console().print(table)
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    print(f"bench default_recipe_test_acc_mean {statistics.mean(accs):.4f} frac (std {sd:.4f}, "
          f"n={len(accs)})")  # fmt: skip
    reached = [t for t in t93 if t is not None]
    if reached:
        sd_t = statistics.stdev(reached) if len(reached) > 1 else 0.0
        print(f"bench time_to_93_s_mean {statistics.mean(reached):.1f} s (std {sd_t:.1f}, "
              f"reached by {len(reached)} of {len(t93)} seeds)")  # fmt: skip
    else:
        print(f"bench time_to_93_s_mean not_reached s (0 of {len(t93)} seeds)")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--seeds":
        many_seeds([int(s) for s in sys.argv[2].split(",")], sys.argv[3:])
        return
    recipe, args = split_recipe_args(sys.argv[1:])
    cfg = load_config(recipe, args)
    probe = TestEachEpoch(T0)
    exp = build_experiment(cfg, callbacks=[*build_callbacks(cfg), probe])
    probe.exp = exp
    exp.trainer.fit(exp.model, exp.task, exp.data, exp.optimizer, exp.schedule)
    total = time.perf_counter() - T0 - probe.excluded

    table = Table(title=f"time to accuracy: {Path(recipe).name} {' '.join(args)}")
    for col in ("epoch", "wall s", "val acc", "test acc"):
        table.add_column(col, justify="right")
    for epoch, wall, val, test in probe.rows:
        table.add_row(str(epoch), f"{wall:.1f}", f"{val:.4f}", f"{test:.4f}")
    Console().print(table)
    final_test = probe.rows[-1][3]
    print(
        f"precision {exp.trainer.precision}, channels_last {exp.trainer.channels_last}, "
        f"threads {__import__('torch').get_num_threads()}"
    )
    print(f"bench default_recipe_wall_s {total:.1f} s")
    print(f"bench default_recipe_test_acc {final_test:.4f} frac")
    print(f"bench default_recipe_val_acc {probe.rows[-1][2]:.4f} frac")
    for goal in (0.925, 0.93):
        hit = probe.first_reaching(goal)
        shown = f"{hit:.1f} s" if hit is not None else "not_reached s"
        print(
            f"bench time_to_{str(goal * 100).rstrip('0').rstrip('.').replace('.', '_')}_s {shown}"
        )


if __name__ == "__main__":
    main()
