"""Tiny ``nodes.csv`` / ``edges.csv`` pairs for the graph tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_graph(
    folder: Path,
    n_per_class: int = 10,
    classes: tuple[str, ...] = ("cat", "dog", "fox"),
    split: bool = False,
    extra_edges: list[str] = (),  # type: ignore[assignment]
    seed: int = 0,
) -> tuple[Path, Path]:
    """A graph of ``len(classes)`` rings of ``n_per_class`` nodes (ids ``n0``, ``n1``, …), one
    ring per class, two features (the class index + noise, and noise) and a label column;
    rings are linked by one edge each. ``split``: a split column (first 60 % train, 20 % val,
    20 % test of each class). Returns (nodes.csv, edges.csv)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    header = "id,f1,f2,label" + (",split" if split else "")
    rows, edges = [header], ["source,target"]
    n = n_per_class
    for c, name in enumerate(classes):
        for i in range(n):
            node = c * n + i
            row = f"n{node},{c + 0.3 * rng.normal():.4f},{rng.normal():.4f},{name}"
            if split:
                row += "," + ("train" if i < 0.6 * n else "val" if i < 0.8 * n else "test")
            rows.append(row)
            edges.append(f"n{node},n{c * n + (i + 1) % n}")
        if c:
            edges.append(f"n{(c - 1) * n},n{c * n}")
    edges += list(extra_edges)
    nodes_csv, edges_csv = folder / "nodes.csv", folder / "edges.csv"
    nodes_csv.write_text("\n".join(rows) + "\n")
    edges_csv.write_text("\n".join(edges) + "\n")
    return nodes_csv, edges_csv
