"""Percentiles, JSON results and Markdown tables."""

import json
import math
from pathlib import Path


def percentiles(
    values: list[float], points: tuple[float, ...] = (50, 90, 99, 99.9)
) -> dict[str, float]:
    """Exact nearest-rank percentiles, plus min, mean and max; empty when there are no values."""
    if not values:
        return {}
    ordered = sorted(values)
    n = len(ordered)
    result = {"min": ordered[0], "mean": sum(ordered) / n}
    for p in points:
        result[f"p{p:g}"] = ordered[max(0, math.ceil(p / 100 * n) - 1)]
    result["max"] = ordered[-1]
    return {k: round(v, 3) for k, v in result.items()}


def write_json(path: Path, document: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"
