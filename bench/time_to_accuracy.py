"""Time to accuracy of the default recipe on real Fashion-MNIST.

Wall seconds from process start (imports included) to the end of each epoch, with that epoch's
validation and test accuracy. Test accuracy is measured here for the table only (the recipe
selects on validation); the time spent measuring it is subtracted from the wall clock.

    .venv/bin/python bench/time_to_accuracy.py [recipe] [key=value ...]
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


def main() -> None:
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
    for goal in (0.925, 0.93):
        hit = probe.first_reaching(goal)
        shown = f"{hit:.1f} s" if hit is not None else "not_reached s"
        print(
            f"bench time_to_{str(goal * 100).rstrip('0').rstrip('.').replace('.', '_')}_s {shown}"
        )


if __name__ == "__main__":
    main()
