"""The uplift forecast's customer groups (SPEC §10.2) built from a period of receipts:
each card by its channel, kind and distance from the threshold, as the seed article's
spreadsheet groups them by hand.

Per card that bought in the period: its average receipt (sales over receipts), its
purchases a month (receipts over the period's length in average months), its channel
(where most of its receipts were; offline on a tie) and its kind: ``new`` when its first
receipt of the period lies in the period's last ``new_days``, else ``loyal``. Cards whose
average receipt is at or above the threshold have nothing to add and are left out. The
others fall in bands of the distance (threshold less average receipt) as a share of their
average receipt: ``BAND_BP`` wide, the last band holding everything past ``LAST_BAND_BP``
(the forecast converts nobody that far). A group is one (channel, kind, band); its
average receipt and frequency are its cards' means, rounded down.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from service.domain.errors import InvalidInput
from service.simulation.receipts import CHANNELS, ReceiptSet
from service.simulation.uplift import BP, CustomerGroup

IntArray = npt.NDArray[np.int64]
BAND_BP = 1_000  # 10% of the average receipt
LAST_BAND_BP = 10_000  # distances past the receipt itself share one band
MONTH_S = 2_629_746  # the average Gregorian month, seconds
DAY_S = 86_400


def customer_groups(
    receipts: ReceiptSet,
    sales: IntArray,
    threshold: int,
    *,
    since: int,
    until: int,
    new_days: int = 90,
) -> list[CustomerGroup]:
    """Groups of the cards that bought in ``[since, until)`` (seconds), each receipt's
    ``sales`` in kopecks, against ``threshold`` kopecks."""
    if threshold <= 0 or until <= since or new_days < 0:
        raise InvalidInput("a threshold above zero, a period, new_days not negative")
    carded = np.flatnonzero(receipts.card >= 0)
    if not len(carded):
        return []
    cards, card_of = np.unique(receipts.card[carded], return_inverse=True)
    count = np.bincount(card_of, minlength=len(cards)).astype(np.int64)
    total = np.zeros(len(cards), dtype=np.int64)
    np.add.at(total, card_of, sales[carded])
    online = np.bincount(
        card_of, weights=(receipts.channel[carded] == CHANNELS.index("online")),
        minlength=len(cards),
    ).astype(np.int64)  # fmt: skip
    first = np.full(len(cards), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, card_of, receipts.occurred[carded])
    average = total // count
    per_month_milli = count * 1000 * MONTH_S // (until - since)
    channel = np.where(2 * online > count, 1, 0)
    kind = np.where(first >= until - new_days * DAY_S, 0, 1)  # 0 new, 1 loyal
    below = (average > 0) & (average < threshold)
    distance_bp = (threshold - average) * BP // np.maximum(average, 1)
    band = np.minimum(distance_bp, LAST_BAND_BP) // BAND_BP
    groups = []
    keys = np.stack([channel, kind, band], axis=1)[below]
    for key in np.unique(keys, axis=0).tolist():
        mine = below & (channel == key[0]) & (kind == key[1]) & (band == key[2])
        size = int(mine.sum())
        group = CustomerGroup(
            channel=CHANNELS[key[0]], kind=("new", "loyal")[key[1]], customers=size,
            average_receipt=int(average[mine].sum()) // size, threshold=threshold,
            purchases_per_month_milli=int(per_month_milli[mine].sum()) // size,
        )  # fmt: skip
        groups.append(group)
    return groups
