"""What-if simulation (SPEC §10.1): a period of receipts under a draft program and the
current one, side by side, through the batch kernel, no HTTP and no ledger writes.

``read_receipts`` (or ``receipt_set``) gives a ``ReceiptSet``; ``prepare`` does the
program-independent work once; ``compare`` runs both programs and summarises them
(``Comparison.as_json`` / ``as_csv``); ``simulate`` and ``summarize`` are its halves.
"""
