"""What the host took from this machine while a benchmark ran: CPU steal.

On a virtual machine, "steal" is time a virtual CPU was ready to run but the hypervisor
ran something else (``/proc/stat``, the eighth figure of the ``cpu`` line, in clock
ticks). A run with much of it measures the neighbours as much as the code, and it can
fall on one side of a comparison and not the other, so the benchmarks print it.
"""

from __future__ import annotations

from pathlib import Path

_STAT = Path("/proc/stat")
#: Above this share of CPU time taken by the host, the benchmarks add a note.
NOTABLE_STEAL = 0.05


def cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) clock ticks of all CPUs since boot; ``None`` where the system has no
    ``/proc/stat`` (not Linux)."""
    try:
        line = _STAT.read_text().split("\n", 1)[0]
    except OSError:
        return None
    name, *fields = line.split()
    if name != "cpu" or len(fields) < 8:
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
    # already counted in user and nice.
    ticks = [int(f) for f in fields[:8]]
    return ticks[7], sum(ticks)


class StealMeter:
    """Adds up the steal share of the spans it measures: ``with meter: ...`` for each."""

    def __init__(self) -> None:
        self._steal = self._total = 0
        self._at: tuple[int, int] | None = None

    def __enter__(self) -> StealMeter:
        self._at = cpu_ticks()
        return self

    def __exit__(self, *_exc: object) -> None:
        end, start, self._at = cpu_ticks(), self._at, None
        if start is not None and end is not None:
            self._steal += end[0] - start[0]
            self._total += end[1] - start[1]

    @property
    def share(self) -> float | None:
        """Steal over all CPU time in the spans so far; ``None`` if nothing was measured."""
        return self._steal / self._total if self._total else None


def steal_report(meters: dict[str, StealMeter]) -> list[str]:
    """Lines to print: the steal of each named span, and a note when it is notable."""
    shares = {name: meter.share for name, meter in meters.items()}
    known = [share for share in shares.values() if share is not None]
    if not known or len(known) < len(shares):  # no /proc/stat, or a span too short to tell
        return []
    lines = ["  host CPU steal: " + ", ".join(f"{name} {share:.0%}" for name, share in shares.items())]
    worst = max(known)
    if worst > NOTABLE_STEAL:
        lines.append(
            f"  note: the host held back up to {worst:.0%} of the CPU time (steal): these "
            "figures measure its other guests too;\n  compare runs with little steal"
        )
    return lines
