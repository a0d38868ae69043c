"""The /v1/commit load of benchmarks/service.py, as a POS sends it.

A POS calculates a receipt, shows it, and commits it with the calculation's id; the
commit then records what was shown without evaluating the receipt again. Before the
measured run, one calculation per benchmark card is made (which also caches the card, as
a POS's calculation does); the wrk script then commits sales over the cards in turn,
each with a new transaction id and its card's calculation id. A calculation is reused
by that card's later sales, which the ledger records as new sales (the commit checks
the receipt against the calculation, not the transaction id). The other flow, a commit
that sends the receipt again without a calculation id (evaluated again at commit), is
measured the same way with PLAN unset.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from benchmarks.fixtures import POS_KEY, commit_body, sale_receipt

# PLAN: a file with one calculation id per card, in card order (the "after calculate"
# flow); without it the sales carry no calculation id.
COMMIT_LUA = """
local f = io.open(os.getenv("BODY"), "r"); local template = f:read("*a"); f:close()
local cards = tonumber(os.getenv("CARDS")); local run = os.getenv("RUN")
local plan = {}
if os.getenv("PLAN") then
  for line in io.lines(os.getenv("PLAN")) do plan[#plan + 1] = line end
end
local counter = 0
local headers = {["Content-Type"] = "application/json",
                 ["Authorization"] = "Bearer " .. os.getenv("KEY")}
request = function()
  counter = counter + 1
  local index = counter % cards
  local body = template:gsub("@CARD@", string.format("88%011d", index))
                       :gsub("@TX@", run .. "-" .. counter)
  if #plan > 0 then body = body:gsub("@CALC@", plan[index + 1]) end
  return wrk.format("POST", "/v1/commit", headers, body)
end
"""


async def _calculations(base: str, cards: int, concurrency: int = 8) -> list[str]:
    headers = {"Authorization": f"Bearer {POS_KEY}"}
    ids: list[str] = [""] * cards
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:

        async def calculate(indexes: range) -> None:
            for index in indexes:
                answer = await client.post("/v1/calculate", json=sale_receipt(index))
                answer.raise_for_status()
                ids[index] = answer.json()["calculation_id"]

        await asyncio.gather(*(calculate(range(k, cards, concurrency)) for k in range(concurrency)))
    return ids


def prepare(base: str, work: Path, cards: int) -> dict[str, Path]:
    """Files for the two flows: the commit templates and the calculation ids per card."""
    ids = asyncio.run(_calculations(base, cards))
    files = {"plan": work / "commit-plan.txt", "receipt": work / "commit.json",
             "after_calculate": work / "commit-calculated.json"}  # fmt: skip
    files["plan"].write_text("\n".join(ids) + "\n")
    files["receipt"].write_bytes(commit_body(None, None))
    files["after_calculate"].write_bytes(commit_body(None, None, "@CALC@"))
    return files


def paced_body(ids: list[str], run: str) -> object:
    """Bodies for the open-loop latency run of the "after calculate" flow."""

    def body(k: int) -> bytes:
        index = k % len(ids)
        return commit_body(index, f"{run}-{k}", ids[index])

    return body


def read_plan(path: Path) -> list[str]:
    return path.read_text().split()
