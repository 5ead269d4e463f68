// The request form's expiry, checked as the user types: the same rules and the same
// translated messages as the server (accounts_app/policy.py expiry_refusal), from
// <script type="application/json" id="expiry-policy"> (forms.requests.expiry_browser_spec).
// The first message goes to setCustomValidity (the form does not submit) and to the
// field's #<id>-rule-msg. No eval, no inline code, nothing sent anywhere.
(function () {
  "use strict";
  const source = document.getElementById("expiry-policy");
  const days = document.getElementById("id_expires_in_days");
  const date = document.getElementById("id_expires_at");
  if (!source || !days || !date) return;
  const spec = JSON.parse(source.textContent);
  const privilege = document.getElementById("id_account_privilege");
  const kind = document.getElementById("id_kind");
  const DAY = 24 * 3600 * 1000;

  function format(template, count) {
    return template.replace("%(days)s", String(count));
  }

  function expiryOf() {
    if (days.value !== "") return Date.now() + Number(days.value) * DAY;
    if (date.value === "") return null;
    const parts = date.value.split("-").map(Number); // the day begins, the user's zone
    return new Date(parts[0], parts[1] - 1, parts[2]).getTime();
  }

  // [field, message] of the first rule broken; null when none is.
  function refusal() {
    const what = kind ? kind.value || "create" : "create";
    const target = date.value !== "" ? date : days;
    const given = days.value !== "" || date.value !== "";
    if (days.value !== "" && date.value !== "") return [date, spec.messages.both];
    if (spec.kinds.indexOf(what) < 0) return given ? [target, spec.messages.only] : null;
    if (what === "adopt") return null; // the account's own privilege: checked at submission
    const rules = spec.lifetimes[privilege ? privilege.value : ""] || {
      max_days: null,
      allow_no_expiry: true,
    };
    const expires = expiryOf();
    if (expires === null) {
      if (what === "extend") return [days, spec.messages.give_new];
      if (rules.allow_no_expiry) return null;
      return [days, rules.max_days ? format(spec.messages.needs_days, rules.max_days) : spec.messages.needs];
    }
    if (expires <= Date.now()) return [target, spec.messages.past];
    if (rules.max_days !== null && expires > Date.now() + rules.max_days * DAY) {
      return [target, format(spec.messages.too_long, rules.max_days)];
    }
    return null;
  }

  function show(field, text) {
    field.setCustomValidity(text);
    const box = document.getElementById(field.id + "-rule-msg");
    if (box) box.textContent = text;
  }

  function check() {
    const rules = spec.lifetimes[privilege ? privilege.value : ""];
    if (rules && rules.max_days) days.max = rules.max_days;
    else days.removeAttribute("max");
    show(days, "");
    show(date, "");
    const broken = refusal();
    if (broken) show(broken[0], broken[1]);
  }

  // The quick choices fill the number of days (and clear the date).
  document.querySelectorAll("[data-expiry-days]").forEach(function (button) {
    button.addEventListener("click", function () {
      days.value = button.getAttribute("data-expiry-days");
      date.value = "";
      check();
    });
  });

  [days, date, privilege, kind].forEach(function (field) {
    if (!field) return;
    field.addEventListener("input", check);
    field.addEventListener("change", check);
  });
  check();
})();
