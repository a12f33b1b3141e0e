"""This process's resident memory, from /proc/self/status (Linux).

`peak_mib` reads VmHWM, the high-water mark of the process's own address space. `resource.getrusage`'s
`ru_maxrss` is not that: Linux carries the parent's high-water mark over fork and exec, so a child started by
a benchmark that holds 1.5 GB reports at least 1.5 GB whatever it used itself.
"""

from __future__ import annotations

from pathlib import Path


def _field_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(f"/proc/self/status has no {field} (not Linux?)")


def resident_mib() -> float:
    """Resident memory now, MiB."""
    return _field_mib("VmRSS")


def peak_mib() -> float:
    """Peak resident memory of this process since it started (or last exec), MiB."""
    return _field_mib("VmHWM")
