"""The program editor's forms: a rule as the flat fields of an HTML form and back, the
points settings likewise, the API's field errors placed at the form's fields, and the
templates of the common programs. Pure functions over plain dicts: the API validates.

Form fields are named by the rule's own paths (``effect.percent``,
``conditions.hours.from``), so that an error the API names
``document.rules[3].effect.percent`` lands at the input named ``effect.percent``.
Money is typed in roubles and sent in kopecks; what is not a sum of roubles is sent as
typed, for the API to refuse at the field.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

EFFECTS = (
    "percent", "amount", "fixed_price", "nth_item", "cheapest", "stamps", "bundle",
    "quantity_steps",
    "subtotal_steps", "tier_discount", "personal_discount", "accrual_rate",
    "points_multiplier", "points_per_unit", "bonus_points", "no_earn", "no_pay_with_points",
    "gift", "free_delivery",
)  # fmt: skip
# The effect fields each type takes (service/rules/README.md, "Effects").
EFFECT_FIELDS: dict[str, tuple[str, ...]] = {
    "percent": ("percent",), "amount": ("amount",), "fixed_price": ("price",),
    "nth_item": ("n", "percent"), "cheapest": ("units", "every", "percent", "dearest"),
    "stamps": ("every", "count", "percent"),
    "bundle": ("quantity", "price"), "quantity_steps": ("steps",), "subtotal_steps": ("steps",),
    "accrual_rate": ("percent",), "points_multiplier": ("multiplier",),
    "points_per_unit": ("points",), "bonus_points": ("points",),
    "no_earn": ("discounted_only",), "no_pay_with_points": ("discounted_only",),
    "gift": ("sku", "quantity"),
}  # fmt: skip
POINT_EFFECTS = frozenset({"accrual_rate", "points_multiplier", "points_per_unit", "bonus_points"})
STACKING = ("additive", "compounding", "exclusive", "best_of")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHANNELS = ("offline", "online")
_MONEY_EFFECT_FIELDS = frozenset({"amount", "price"})
_INT_EFFECT_FIELDS = frozenset({"n", "units", "every", "points"})
_BOOL_EFFECT_FIELDS = frozenset({"dearest", "discounted_only"})
_LISTS = ("skus", "categories", "brands")
_CONDITION_LISTS = ("tiers", "segments", "payment_methods")
# Every setting of ``points`` (service/rules/README.md, "points"): (name, kind, label);
# money is typed in roubles, a choice from ``POINT_CHOICES``.
POINT_SETTINGS = (
    ("point_value", "money", "A point is worth, roubles"),
    ("accrual_percent", "text", "Points earned, % of the money paid"),
    ("rounding", "choice", "Rounding"),
    ("max_share_percent", "text", "Payable with points, % of the receipt"),
    ("pending_days", "int", "Pending, days"),
    ("validity_days", "int", "Valid for, days"),
    ("min_line_amount", "money", "A line keeps at least, roubles"),
    ("max_points_per_receipt", "int", "Most points per receipt"),
    ("max_points_per_card_day", "int", "Most points per card a day"),
    ("min_balance_to_spend", "int", "Spending from a balance of, points"),
    ("min_receipt_to_spend", "money", "Spending on receipts from, roubles"),
    ("max_redeem_per_receipt", "int", "Most points spent per receipt"),
    ("welcome_points", "int", "Welcome points"),
    ("referral_points", "int", "Referral points"),
    ("refund_spent_policy", "choice", "A return of points already spent"),
    ("offer_card_threshold", "money", "Offer a card from, roubles"),
    ("fiscal_mode", "choice", "Points on the fiscal receipt"),
    ("hold_seconds", "int", "Points held for, seconds"),
    ("offline_allowance_points", "int", "Offline allowance, points"),
    ("offline_allowance_hours", "int", "Offline allowance, hours"),
)
POINT_CHOICES = {
    "rounding": ("down", "half_up", "up"),
    "refund_spent_policy": ("negative_balance", "withhold"),
    "fiscal_mode": ("discount", "tender"),
}
# The program's other settings on the same form, by their path in the document: wallets,
# the CRM's birthday notice, holidays (dates typed comma-separated).
OTHER_SETTINGS = (
    ("wallets.earn_points", "choice", "Money paid from a wallet earns points"),
    ("wallets.validity_days", "int", "A certificate lives for, days"),
    ("wallets.max_balance", "money", "A wallet holds at most, roubles"),
    ("events.birthday_days_ahead", "int", "Birthday notice, days ahead"),
    ("holiday_calendar", "choice", "Production calendar"),
    ("holidays", "dates", "Holidays (dates, comma-separated)"),
)
OTHER_CHOICES = {"wallets.earn_points": ("true", "false"), "holiday_calendar": ("RU",)}
_SECTION_PATHS = ("document.points.", "document.tiers.", "document.groups[",
                  "document.promo_codes[", "document.wallets.", "document.events.",
                  "document.holiday_calendar", "document.holidays")  # fmt: skip
_LAST_INDEX = re.compile(r"(?<=[a-z_])\[\d+\]$")  # rules[0] of a list typed in one field
_RULE_PATH = re.compile(r"^document\.rules\[(\d+)\]\.?(.*)$")


def roubles(kopecks: Any) -> str:
    """Kopecks as the roubles a form shows (``1500`` or ``1500.50``); other values as text."""
    if not isinstance(kopecks, int) or isinstance(kopecks, bool):
        return "" if kopecks is None else str(kopecks)
    whole, part = divmod(kopecks, 100)
    return str(whole) if part == 0 else f"{kopecks / 100:.2f}"


def kopecks(text: str) -> int | str:
    """Roubles typed (``1500``, ``1 500,50``) as kopecks; anything else as typed."""
    cleaned = text.replace(" ", "").replace("\u00a0", "").replace(",", ".")
    try:
        value = Decimal(cleaned) * 100
    except InvalidOperation:
        return text
    return int(value) if value == value.to_integral_value() else text


def _number(text: str) -> int | str:
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _words(text: str) -> list[str]:
    return [w.strip() for w in re.split(r"[,\n]", text) if w.strip()]


def _steps(text: str, money: bool) -> list[dict[str, Any]] | str:
    """``3: 5; 5: 10`` (from: percent) as the effect's steps."""
    steps: list[dict[str, Any]] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        start, _, percent = part.partition(":")
        steps.append({"from": kopecks(start.strip()) if money else start.strip(),
                      "percent": percent.strip()})  # fmt: skip
    return steps


def _steps_text(steps: list[dict[str, Any]], money: bool) -> str:
    return "; ".join(f"{roubles(s.get('from')) if money else s.get('from')}: {s.get('percent')}"
                     for s in steps)  # fmt: skip


def _effect(form: Mapping[str, str], checked: set[str]) -> dict[str, Any]:
    kind = form.get("effect.type", "percent")
    effect: dict[str, Any] = {"type": kind}
    for name in EFFECT_FIELDS.get(kind, ()):
        value = form.get(f"effect.{name}", "").strip()
        if name in _BOOL_EFFECT_FIELDS:
            if f"effect.{name}" in checked:
                effect[name] = True
        elif not value:
            continue
        elif name == "steps":
            effect[name] = _steps(value, money=kind == "subtotal_steps")
        elif name in _MONEY_EFFECT_FIELDS:
            effect[name] = kopecks(value)
        elif name in _INT_EFFECT_FIELDS or (kind == "bundle" and name == "quantity"):
            effect[name] = _number(value)
        else:
            effect[name] = value
    return effect


def _target(form: Mapping[str, str]) -> dict[str, Any]:
    target: dict[str, Any] = {}
    for name in (*_LISTS, "stores", "regions"):
        if words := _words(form.get(f"target.{name}", "")):
            target[name] = words
    exclude = {n: w for n in _LISTS if (w := _words(form.get(f"target.exclude.{n}", "")))}
    if exclude:
        target["exclude"] = exclude
    return target


def _range(form: Mapping[str, str], name: str) -> dict[str, str] | None:
    start, end = form.get(f"{name}.from", "").strip(), form.get(f"{name}.to", "").strip()
    return {"from": start, "to": end} if start or end else None


def _conditions(form: Mapping[str, str], lists: Mapping[str, list[str]]) -> dict[str, Any]:
    c: dict[str, Any] = {}
    for name in ("weekdays", "channels"):
        if lists.get(f"conditions.{name}"):
            c[name] = lists[f"conditions.{name}"]
    for name in _CONDITION_LISTS:
        if words := _words(form.get(f"conditions.{name}", "")):
            c[name] = words
    for name in ("hours", "dates"):
        if (span := _range(form, f"conditions.{name}")) is not None:
            c[name] = span
    for name in ("on_holidays", "pickup"):  # any (empty), only (true), never (false)
        if (chosen := form.get(f"conditions.{name}", "")) in ("true", "false"):
            c[name] = chosen == "true"
    if text := form.get("conditions.birthday_window_days", "").strip():
        c["birthday_window_days"] = _number(text)
    if text := form.get("conditions.min_subtotal", "").strip():
        c["min_subtotal"] = kopecks(text)
    if text := form.get("conditions.min_quantity", "").strip():
        c["min_quantity"] = text
    for kind in ("equals", "every"):
        if text := form.get(f"conditions.purchase_number.{kind}", "").strip():
            c["purchase_number"] = {kind: _number(text)}
    if form.get("conditions.promo_code") == "on":
        c["promo_code"] = True
    return c


def rule_from_form(
    form: Mapping[str, str], lists: Mapping[str, list[str]], original: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The rule a submitted form describes; ``original`` is the rule it edits (None: a
    new one), whose settings no form shows are kept."""
    checked = {name for name, value in form.items() if value == "on"}
    rule: dict[str, Any] = {"id": form.get("id", "").strip(), "name": form.get("name", "").strip()}
    if text := form.get("priority", "").strip():
        rule["priority"] = _number(text)
    rule["stacking"] = form.get("stacking", "additive")
    if group := form.get("group", "").strip():
        rule["group"] = group
    if "active" not in checked:
        rule["active"] = False
    rule["target"] = _target(form)
    rule["conditions"] = _conditions(form, lists)
    beyond = ((original or {}).get("conditions") or {}).get("requires", [])[MAX_REQUIRES:]
    if requires := [*_requires(form), *beyond]:  # groups the form has no row for are kept
        rule["conditions"]["requires"] = requires
    rule["effect"] = effect = _effect(form, checked)
    points = effect["type"] in POINT_EFFECTS
    for cap in ("max_per_receipt", "budget"):
        if text := form.get(cap, "").strip():
            rule[cap] = _number(text) if points else kopecks(text)
    for name in ("max_uses", "max_uses_per_card"):
        if text := form.get(name, "").strip():
            rule[name] = _number(text)
    for name in ("uses_period", "threshold_basis"):
        if value := form.get(name, "").strip():
            rule[name] = value
    return rule


def form_from_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """The form's values for ``rule``: text by field name, lists for the checkboxes."""
    effect = rule.get("effect") or {}
    kind = effect.get("type", "percent")
    values: dict[str, Any] = {
        "id": rule.get("id", ""), "name": rule.get("name", ""),
        "priority": str(rule.get("priority", "")), "stacking": rule.get("stacking", "additive"),
        "group": rule.get("group", ""), "active": rule.get("active", True), "effect.type": kind,
        "uses_period": rule.get("uses_period", ""),
        "threshold_basis": rule.get("threshold_basis", ""),
    }  # fmt: skip
    for name, value in effect.items():
        if name == "steps":
            values["effect.steps"] = _steps_text(value, money=kind == "subtotal_steps")
        elif name in _MONEY_EFFECT_FIELDS:
            values[f"effect.{name}"] = roubles(value)
        elif name != "type":
            values[f"effect.{name}"] = value if isinstance(value, bool) else str(value)
    target = rule.get("target") or {}
    for name in (*_LISTS, "stores", "regions"):
        values[f"target.{name}"] = ", ".join(target.get(name, []))
    for name in _LISTS:
        values[f"target.exclude.{name}"] = ", ".join((target.get("exclude") or {}).get(name, []))
    _conditions_to_form(rule.get("conditions") or {}, values)
    points = kind in POINT_EFFECTS
    for cap in ("max_per_receipt", "budget"):
        value = rule.get(cap)
        values[cap] = "" if value is None else (str(value) if points else roubles(value))
    for name in ("max_uses", "max_uses_per_card"):
        values[name] = "" if rule.get(name) is None else str(rule[name])
    return values


MAX_REQUIRES = 3  # groups of required goods the form shows (the API takes up to 10)


def _requires(form: Mapping[str, str]) -> list[dict[str, Any]]:
    """The groups of goods the receipt must hold besides the rule's target."""
    groups = []
    for i in range(MAX_REQUIRES):
        at = f"conditions.requires[{i}]"
        group: dict[str, Any] = {n: w for n in _LISTS if (w := _words(form.get(f"{at}.{n}", "")))}
        if text := form.get(f"{at}.min_quantity", "").strip():
            group["min_quantity"] = text
        if text := form.get(f"{at}.min_amount", "").strip():
            group["min_amount"] = kopecks(text)
        if group:
            groups.append(group)
    return groups


def _conditions_to_form(c: Mapping[str, Any], values: dict[str, Any]) -> None:
    values["conditions.weekdays"] = list(c.get("weekdays", []))
    values["conditions.channels"] = list(c.get("channels", []))
    for name in _CONDITION_LISTS:
        values[f"conditions.{name}"] = ", ".join(c.get(name, []))
    for name in ("hours", "dates"):
        span = c.get(name) or {}
        values[f"conditions.{name}.from"] = span.get("from", "")
        values[f"conditions.{name}.to"] = span.get("to", "")
    for name in ("on_holidays", "pickup"):
        chosen = c.get(name)
        values[f"conditions.{name}"] = "" if chosen is None else str(chosen).lower()
    window = c.get("birthday_window_days")
    values["conditions.birthday_window_days"] = "" if window is None else str(window)
    values["conditions.min_subtotal"] = roubles(c.get("min_subtotal"))
    values["conditions.min_quantity"] = c.get("min_quantity", "")
    for kind in ("equals", "every"):
        number = (c.get("purchase_number") or {}).get(kind)
        values[f"conditions.purchase_number.{kind}"] = "" if number is None else str(number)
    values["conditions.promo_code"] = bool(c.get("promo_code"))
    for i, group in enumerate(c.get("requires", [])):
        at = f"conditions.requires[{i}]"
        for name in _LISTS:
            values[f"{at}.{name}"] = ", ".join(group.get(name, []))
        values[f"{at}.min_quantity"] = group.get("min_quantity") or ""
        values[f"{at}.min_amount"] = roubles(group.get("min_amount"))


def with_rule(
    document: Mapping[str, Any], rule: dict[str, Any], replaces: str
) -> tuple[dict[str, Any], int]:
    """The document with ``rule`` in place of the rule ``replaces`` names (added last when
    it names none), and the rule's index there."""
    edited = copy.deepcopy(dict(document))
    rules = edited.setdefault("rules", [])
    for index, existing in enumerate(rules):
        if replaces and existing.get("id") == replaces:
            rules[index] = rule
            return edited, index
    rules.append(rule)
    return edited, len(rules) - 1


def field_errors(
    errors: list[dict[str, str]], rule_at: int | None
) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The API's errors split into those at the form's fields (the rule at ``rule_at``'s,
    ``points.*``, ``tiers.*``, ``groups[i].*``, ``promo_codes[i].*``), by field name, and
    the others."""
    at_fields: dict[str, str] = {}
    others: list[dict[str, str]] = []
    for error in errors:
        field = error.get("field", "")
        match = _RULE_PATH.match(field)
        if match and rule_at is not None and int(match.group(1)) == rule_at and match.group(2):
            at_fields.setdefault(_LAST_INDEX.sub("", match.group(2)), error["message"])
        elif field.startswith(_SECTION_PATHS):
            name = _LAST_INDEX.sub("", field.removeprefix("document."))
            at_fields.setdefault(name, error["message"])
        else:
            others.append(error)
    return at_fields, others


def points_from_form(document: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """The document with the points settings of the form (empty: the setting removed)."""
    edited = copy.deepcopy(dict(document))
    points = edited.setdefault("points", {})
    for name, kind, _ in POINT_SETTINGS:
        text = form.get(f"points.{name}", "").strip()
        if not text:
            points.pop(name, None)
        elif kind == "money":
            points[name] = kopecks(text)
        elif kind == "int":
            points[name] = _number(text)
        else:
            points[name] = text
    for path, kind, _ in OTHER_SETTINGS:
        section, _, name = path.rpartition(".")
        text = form.get(path, "").strip()
        if not text:  # the setting removed (its default), no section made for it
            (edited.get(section) or {} if section else edited).pop(name, None)
            continue
        holder = edited.setdefault(section, {}) if section else edited
        if kind == "money":
            holder[name] = kopecks(text)
        elif kind == "int":
            holder[name] = _number(text)
        elif kind == "dates":
            holder[name] = [day.strip() for day in text.split(",") if day.strip()]
        elif path == "wallets.earn_points":
            holder[name] = {"true": True, "false": False}.get(text, text)
        else:
            holder[name] = text
    return edited


def points_form(document: Mapping[str, Any]) -> dict[str, str]:
    points = document.get("points", {})
    values = {}
    for name, kind, _ in POINT_SETTINGS:
        value = points.get(name)
        values[f"points.{name}"] = roubles(value) if kind == "money" else (
            "" if value is None else str(value))  # fmt: skip
    for path, kind, _ in OTHER_SETTINGS:
        section, _, name = path.rpartition(".")
        value = (document.get(section) or {}).get(name) if section else document.get(name)
        if value is None:
            values[path] = ""
        elif kind == "money":
            values[path] = roubles(value)
        elif kind == "dates":
            values[path] = ", ".join(str(day) for day in value)
        elif isinstance(value, bool):
            values[path] = "true" if value else "false"
        else:
            values[path] = str(value)
    return values


TIER_FIELDS = ("code", "name", "threshold", "accrual_percent", "discount_percent")


def tiers_form(document: Mapping[str, Any]) -> dict[str, str]:
    """The tiers as form values: ``levels[i].threshold`` in roubles, one empty row more."""
    tiers = document.get("tiers") or {}
    values = {"tiers.window_days": "" if tiers.get("window_days") is None
              else str(tiers["window_days"])}  # fmt: skip
    for i, level in enumerate(tiers.get("levels", [])):
        for name in TIER_FIELDS:
            value = level.get(name)
            shown = roubles(value) if name == "threshold" else ("" if value is None else str(value))
            values[f"tiers.levels[{i}].{name}"] = shown
    return values


def tiers_from_form(document: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """The document with the form's tiers: a row with no code is left out; none at all
    removes the tiers."""
    edited = copy.deepcopy(dict(document))
    old = {lvl.get("code"): lvl for lvl in (edited.get("tiers") or {}).get("levels", [])}
    levels = []
    for i in range(MAX_TIERS):
        code = form.get(f"tiers.levels[{i}].code", "").strip()
        if not code:
            continue
        level: dict[str, Any] = {k: v for k, v in old.get(code, {}).items()
                                 if k not in TIER_FIELDS}  # fmt: skip
        level["code"] = code
        level["name"] = form.get(f"tiers.levels[{i}].name", "").strip()
        level["threshold"] = kopecks(form.get(f"tiers.levels[{i}].threshold", "").strip() or "0")
        for name in ("accrual_percent", "discount_percent"):
            if text := form.get(f"tiers.levels[{i}].{name}", "").strip():
                level[name] = text
        levels.append(level)
    if not levels:
        edited.pop("tiers", None)
        return edited
    tiers = {k: v for k, v in (edited.get("tiers") or {}).items() if k != "levels"}
    window = form.get("tiers.window_days", "").strip()
    tiers["window_days"] = _number(window) if window else None
    edited["tiers"] = {**tiers, "levels": levels}
    return edited


MAX_TIERS = 10


def groups_form(document: Mapping[str, Any]) -> dict[str, str]:
    """The ``best_of`` groups as form values (``groups[i].id``, ``groups[i].name``)."""
    values = {}
    for i, group in enumerate(document.get("groups", [])):
        values[f"groups[{i}].id"] = group.get("id", "")
        values[f"groups[{i}].name"] = group.get("name", "")
    return values


def groups_from_form(document: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """The document with the form's groups (a row with no id is left out)."""
    edited = copy.deepcopy(dict(document))
    groups = []
    for i in range(MAX_GROUPS):
        if group_id := form.get(f"groups[{i}].id", "").strip():
            groups.append({"id": group_id, "name": form.get(f"groups[{i}].name", "").strip()})
    edited["groups"] = groups
    return edited


MAX_GROUPS = 20


CODE_FIELDS = ("code", "rules", "max_uses", "per_card_limit", "valid_from", "valid_to")
MAX_CODES = 30


def codes_form(document: Mapping[str, Any]) -> dict[str, Any]:
    """The promo codes the document declares as form values (``promo_codes[i].rules``
    comma-separated; ``single_use`` a checkbox)."""
    values: dict[str, Any] = {}
    for i, promo in enumerate(document.get("promo_codes", [])):
        for name in CODE_FIELDS:
            value = promo.get(name)
            shown = ", ".join(value) if name == "rules" else "" if value is None else str(value)
            values[f"promo_codes[{i}].{name}"] = shown
        values[f"promo_codes[{i}].single_use"] = bool(promo.get("single_use"))
    return values


def codes_from_form(document: Mapping[str, Any], form: Mapping[str, str]) -> dict[str, Any]:
    """The document with the form's declared codes (a row with no code is left out)."""
    edited = copy.deepcopy(dict(document))
    codes = []
    for i in range(MAX_CODES):
        code = form.get(f"promo_codes[{i}].code", "").strip()
        if not code:
            continue
        promo: dict[str, Any] = {
            "code": code,
            "rules": _words(form.get(f"promo_codes[{i}].rules", "")),
        }
        if form.get(f"promo_codes[{i}].single_use") == "on":
            promo["single_use"] = True
        for name in ("max_uses", "per_card_limit"):
            if text := form.get(f"promo_codes[{i}].{name}", "").strip():
                promo[name] = _number(text)
        for name in ("valid_from", "valid_to"):
            if text := form.get(f"promo_codes[{i}].{name}", "").strip():
                promo[name] = text
        codes.append(promo)
    edited["promo_codes"] = codes
    return edited


def rule_field_names() -> frozenset[str]:
    """Every field of the rule form (an error named otherwise is shown above the forms)."""
    names = set(form_from_rule({"effect": {"type": "percent"}}))
    names |= {f"effect.{name}" for fields in EFFECT_FIELDS.values() for name in fields}
    names |= {f"conditions.requires[{i}].{name}" for i in range(MAX_REQUIRES)
              for name in (*_LISTS, "min_quantity", "min_amount")}  # fmt: skip
    return frozenset(names)
