// The console's only script: it shows the effect fields the chosen effect type takes and
// asks before a publish or a rollback. Every page works without it.
"use strict";
(function () {
  const FIELDS = {
    percent: ["percent"], amount: ["amount"], fixed_price: ["price"], nth_item: ["n", "percent"],
    cheapest: ["units", "every", "percent", "dearest"], stamps: ["every", "count", "percent"],
    bundle: ["quantity", "price"],
    quantity_steps: ["steps"], subtotal_steps: ["steps"], accrual_rate: ["percent"],
    points_multiplier: ["multiplier"], points_per_unit: ["points"], bonus_points: ["points"],
    no_earn: ["discounted_only"], no_pay_with_points: ["discounted_only"], gift: ["sku", "quantity"],
  };
  function showEffectFields(select) {
    const wanted = FIELDS[select.value] || [];
    document.querySelectorAll("[data-effect-field]").forEach(function (box) {
      const name = box.getAttribute("data-effect-field");
      const invalid = box.querySelector(".field-error") !== null;
      box.hidden = !(wanted.includes(name) || invalid);
      box.querySelectorAll("input").forEach(function (input) { input.disabled = box.hidden; });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    const select = document.querySelector("select[name='effect.type']");
    if (select) {
      showEffectFields(select);
      select.addEventListener("change", function () { showEffectFields(select); });
    }
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  });
})();
