"""Missing sequence numbers, as ranges: what finalization reports instead of guessing."""

from __future__ import annotations

from flywheel.plugins.traces.contracts import Gap


def gaps_in(seqs: list[int], expected: int | None = None) -> list[Gap]:
    """Ranges of 1..max(seqs, expected) absent from the sorted `seqs`."""
    out, nxt = [], 1
    for seq in seqs:
        if seq > nxt:
            out.append(Gap(first=nxt, last=seq - 1))
        nxt = max(nxt, seq + 1)
    if expected is not None and expected >= nxt:
        out.append(Gap(first=nxt, last=expected))
    return out
