"""Lambda's platform lines in its text format, one request id on all three (the Go emulator prints a different id on
START, a bug this does not copy), with a real ``Init Duration`` on cold starts:

    START RequestId: <id> Version: $LATEST
    END RequestId: <id>
    REPORT RequestId: <id>\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 3008 MB\tMax Memory Used: 41 MB\t
    (with "Init Duration: 95.10 ms\t" after Max Memory Used on a cold start)

and SnapStart's, as Lambda writes them for a function restored from its snapshot (CloudWatch logs of SnapStart
functions, e.g. "RESTORE_REPORT Restore Duration: 511.25 ms" then "REPORT ...\tDuration: 306.34 ms\tBilled Duration:
610 ms\tMemory Size: 3009 MB\tMax Memory Used: 155 MB\tRestore Duration: 511.25 ms\tBilled Restore Duration: 303 ms\t";
docs.aws.amazon.com/lambda/latest/dg/snapstart-monitoring.html):

    INIT_REPORT Init Duration: 13316.04 ms                          the init (and the before-snapshot hooks)
    RESTORE_REPORT Restore Duration: 398.97 ms                      the restore (and the after-restore hooks)
    REPORT ...\tMax Memory Used: 41 MB\tRestore Duration: 398.97 ms\tBilled Restore Duration: 399 ms\t

Lambda's Billed Duration then counts the Billed Restore Duration too (307 + 303 = 610 above). Lambda bills only part
of its restore (not the snapshot's loading); with no snapshot to load, pyrie bills the whole of it. A phase that
failed says how: "\tPhase: init\tStatus: error\tError Type: Runtime.BeforeSnapshotError", or "\tStatus: timeout".
"""

from __future__ import annotations

import math

__all__ = ["billed_durations", "end_line", "init_report_line", "report_line", "restore_report_line", "start_line"]


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def billed_durations(duration_ms: float, restore_duration_ms: float | None) -> tuple[int, int]:
    """Billed Duration and Billed Restore Duration (0 without a restore), each rounded up to the millisecond; the
    first counts the second too. REPORT's text and ``platform.report`` both take them from here."""
    billed_restore_ms = math.ceil(restore_duration_ms) if restore_duration_ms is not None else 0
    return math.ceil(duration_ms) + billed_restore_ms, billed_restore_ms


def report_line(
    request_id: str,
    duration_ms: float,
    memory_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
    *,
    restore_duration_ms: float | None = None,
) -> str:
    billed_ms, billed_restore_ms = billed_durations(duration_ms, restore_duration_ms)
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed_ms} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_memory_used_mb} MB",
    ]
    if init_duration_ms is not None:
        fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if restore_duration_ms is not None:
        fields.append(f"Restore Duration: {restore_duration_ms:.2f} ms")
        fields.append(f"Billed Restore Duration: {billed_restore_ms} ms")
    return "\t".join(fields) + "\t"


def init_report_line(duration_ms: float, status: str, error_type: str | None = None) -> str:
    """SnapStart's INIT_REPORT (its REPORT has no Init Duration); a failed init adds its phase and status."""
    return _phase_report("INIT_REPORT Init Duration", duration_ms, status, error_type, phase="init")


def restore_report_line(duration_ms: float, status: str, error_type: str | None = None) -> str:
    return _phase_report("RESTORE_REPORT Restore Duration", duration_ms, status, error_type)


def _phase_report(head: str, duration_ms: float, status: str, error_type: str | None, phase: str | None = None) -> str:
    fields = [f"{head}: {duration_ms:.2f} ms"]
    if status == "success":
        return fields[0]
    if phase is not None:
        fields.append(f"Phase: {phase}")
    fields.append(f"Status: {status}")
    if error_type and status != "timeout":
        fields.append(f"Error Type: {error_type}")
    return "\t".join(fields)
