"""Plain-text tables for terminal reports (right-aligned numbers, a rule under the header)."""

from collections.abc import Sequence

__all__ = ["format_table"]


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], footer: Sequence[object] | None = None
) -> str:
    """Format rows as an aligned table; numbers are right-aligned, text left-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    if footer is not None:
        cells.append([_cell(v) for v in footer])
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [
        all(_is_number(row[i]) for row in list(rows) + ([footer] if footer else []) if row[i] != "")
        for i in range(len(headers))
    ]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(cells[0]), rule] + [line(r) for r in cells[1 : len(rows) + 1]]
    if footer is not None:
        out += [rule, line(cells[-1])]
    return "\n".join(out)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
