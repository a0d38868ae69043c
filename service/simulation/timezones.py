"""Store-local dates and times of many receipts at once.

Rule conditions read the receipt's time in its store's zone (SPEC §2). A zone's UTC
offset is looked up once per quarter hour that some receipt falls in (every offset in
use today changes on a quarter hour) rather than once per receipt: a year of one
zone is at most 35,040 look-ups whatever the number of receipts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import numpy as np
import numpy.typing as npt

from service.domain.receipt import StoreInfo
from service.kernels.facts import zone

IntArray = npt.NDArray[np.int64]

QUARTER_S = 900
DAY_S = 86_400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def local_times(
    occurred: IntArray, store: IntArray, stores: Sequence[StoreInfo]
) -> tuple[IntArray, IntArray]:
    """Per receipt, the store-local date (proleptic ordinal) and minute of the day."""
    local = np.array(occurred, dtype=np.int64, copy=True)
    zones = np.array([s.timezone for s in stores] + [""], dtype=object)[store]
    for name in set(zones.tolist()):
        chosen = np.flatnonzero(zones == name)
        local[chosen] += _offsets(occurred[chosen], name)
    days = np.floor_divide(local, DAY_S)
    return days + EPOCH_ORDINAL, (local - days * DAY_S) // 60


def _offset_s(local: datetime) -> int:
    offset = local.utcoffset()
    assert offset is not None  # an aware time
    return int(offset.total_seconds())


def _offsets(seconds: IntArray, name: str) -> IntArray:
    """The zone's UTC offset, in seconds, at each of ``seconds``."""
    quarters, where = np.unique(np.floor_divide(seconds, QUARTER_S), return_inverse=True)
    tz = zone(name or "UTC")
    offsets = [
        _offset_s(datetime.fromtimestamp(int(q) * QUARTER_S, UTC).astimezone(tz))
        for q in quarters.tolist()
    ]
    return np.array(offsets, dtype=np.int64)[where.reshape(-1)]
