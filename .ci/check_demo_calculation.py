"""Check the CI's calculate on the demo program against SPEC §9, worked by hand.

Silver card 2000000000022 buys one dress at 3,499.00 on a Friday at noon in Moscow:
Silver 5% = 174.95 off; the rest, 3,324.05, is paid in money and earns Silver's 3%
rounded down per receipt: 99 points.
"""

import json
import sys

with open(sys.argv[1]) as handle:
    body = json.load(handle)
print(json.dumps(body["totals"]), json.dumps(body["card"]))
line = body["lines"][0]
assert body["totals"]["subtotal"] == 349900, body["totals"]
assert body["totals"]["discount"] == 17495, body["totals"]
assert body["totals"]["amount_due"] == 332405, body["totals"]
assert body["totals"]["points_earned"] == 99, body["totals"]
assert line["discount"] + line["points_paid"] + line["final_amount"] == line["amount"]
assert body["card"]["tier"] == "silver" and body["card"]["balance"] == 5000, body["card"]
print("demo calculation ok")
