// The browser twin of accounts_app/rules.py: the same constraint data, the same algorithm.
//
// The data comes from <script type="application/json" id="kvstore-rules"> (Django's
// json_script of rules.browser_spec()), translated into the page's language. This file
// knows the constraint *kinds* (min_length, charset, ...), never a parameter's rules, so
// the server and the browser cannot drift apart; tests/test_rules_browser.py runs the
// shared table tests/rule_cases.json through both.
//
// The HTML it expects (everything but the spec and data-rule is optional: what is missing
// is created, with the spec's translated labels):
//   <script type="application/json" id="kvstore-rules">…</script>        json_script
//   <input id="X" data-rule="AccountName" aria-describedby="X-rule-msg" …widget_attrs>
//   <div class="field-error" id="X-rule-msg" aria-live="polite"></div>  all messages
// Password, P = the password input's id:
//   <input type="password" id="P" data-rule="AccountPassword">
//   <div data-password-tools="P">                                        the buttons' box
//     <button type="button" data-password-toggle="P">  <button type="button" data-password-generate="P">
//   <ul class="rule-checklist" id="P-checklist"></ul>                    filled from the spec
//   <input type="password" id="C" data-confirm-for="P"> + <div class="field-error" id="C-rule-msg">
// Privilege and instance:
//   <select data-rule="InstanceId"> options: data-architecture, data-engine, and optionally
//     data-status, data-account-count (rules.instance_option_attrs); or an
//     <input role="combobox" data-rule="InstanceId"> holding the same data attributes for
//     the instance chosen (accounts_app/forms/instance_picker.py)
//   <select id="R" data-rule="AccountPrivilege" [data-instance-select="<instance select id>"]>
//   <p class="rule-note" id="R-rule-note"> or any element with data-reason-for="R": the reason
//     why an option (RoleRepl) is disabled for the selected instance.
//
// What it does:
// - every [data-rule] field is checked on input, change, blur and invalid; the first message
//   goes to setCustomValidity (so checkValidity() is false and :invalid applies), all of
//   them to #<id>-rule-msg, one <span class="rule-message" data-key="…"> each;
// - the password gets a live checklist, "Generate" (crypto.getRandomValues, fills the
//   confirmation too) and "Show"/"Hide" (both fields); the confirmation must repeat it;
// - the privilege select follows the instance select; the instance select reports what
//   keeps an instance from taking an account (not running, engine < 4.0, full).
// window.KVStoreRules exposes the pure functions (validate, checklist, ...) for tests.
//
// It never sends anything anywhere: no fetch, no XHR (the password stays in the page until
// the form is submitted). No eval and no inline code, for the site's strict CSP.
(function () {
  "use strict";

  const SPEC_ELEMENT_ID = "kvstore-rules";
  // Chromium compiles `pattern` with the `v` flag; the spec's classes are written so they
  // are valid under `v` and under `u` (for a browser without `v`).
  const FLAGS = (function () {
    try {
      new RegExp("[a]", "v");
      return "v";
    } catch (error) {
      return "u";
    }
  })();
  const ASCII = /^[\x00-\x7F]*$/;
  const ENGINE = /^([0-9]{1,3})\.([0-9]{1,3})$/;

  let specElement = null;
  let specText = null;
  let spec = null;

  // --- The spec -----------------------------------------------------------------------

  // The parsed spec, kept while its element stays in the page; `recheck` (on enhance, after
  // htmx swapped content in) also notices a changed text.
  function loadSpec(recheck) {
    if (spec && specElement.isConnected && !(recheck && specElement.textContent !== specText)) {
      return spec;
    }
    const element = document.getElementById(SPEC_ELEMENT_ID);
    if (!element) return null;
    spec = compile(JSON.parse(element.textContent));
    specElement = element;
    specText = element.textContent;
    return spec;
  }

  function requireSpec() {
    const loaded = loadSpec();
    if (!loaded) throw new Error("No #" + SPEC_ELEMENT_ID + " element: render rules.browser_spec() with json_script.");
    return loaded;
  }

  function oneCharRegExp(source) {
    return new RegExp("^" + source + "$", FLAGS);
  }

  function compile(data) {
    Object.values(data.params).forEach(function (rules) {
      rules.constraints.forEach(function (constraint) {
        if (!CHECKS[constraint.kind]) throw new Error("Unknown constraint kind: " + constraint.kind);
        if (constraint.class) constraint.re = oneCharRegExp(constraint.class);
        if (constraint.words) constraint.wordSet = new Set(constraint.words);
        (constraint.types || []).forEach(function (type) {
          type.re = oneCharRegExp(type.class);
        });
      });
    });
    return data;
  }

  // --- Helpers shared with rules.py (same names there) --------------------------------

  // Python's "%(name)s" formatting, and "%%" for a percent sign.
  function format(template, params) {
    return template.replace(/%\(([A-Za-z_]+)\)s|%%/g, function (match, name) {
      return match === "%%" ? "%" : String(params[name]);
    });
  }

  function join(items) {
    return items.join(requireSpec().listSeparator);
  }

  function asciiLower(value) {
    return ASCII.test(value) ? value.toLowerCase() : null;
  }

  function showChar(char) {
    const cp = char.codePointAt(0);
    const invisible = requireSpec().invisible.some(function (range) {
      return range[0] <= cp && cp <= range[1];
    });
    if (invisible) return "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
    return char === "'" ? "\"'\"" : "'" + char + "'";
  }

  function found(chars) {
    const data = requireSpec();
    const unique = Array.from(new Set(chars));
    const shown = unique.slice(0, data.foundLimit).map(showChar);
    if (unique.length > data.foundLimit) shown.push(data.ellipsis);
    return join(shown);
  }

  function engineTuple(version) {
    const match = ENGINE.exec(version == null ? "" : String(version));
    return match ? [parseInt(match[1], 10), parseInt(match[2], 10)] : null;
  }

  function compareVersions(a, b) {
    return a[0] !== b[0] ? a[0] - b[0] : a[1] - b[1];
  }

  // --- The constraint kinds ------------------------------------------------------------
  // Each returns null when the value passes, else the message's placeholders.
  // `cps` is the value as code points: lengths count code points, as in Python.

  const CHECKS = {
    min_length: function (c, cps) {
      return cps.length >= c.min ? null : { min: c.min, count: cps.length };
    },
    max_length: function (c, cps) {
      return cps.length <= c.max ? null : { max: c.max, count: cps.length };
    },
    forbidden_prefix: function (c, cps) {
      for (const prefix of c.prefixes) {
        if (asciiLower(cps.slice(0, prefix.length).join("")) === prefix) return { prefix: prefix };
      }
      return null;
    },
    start: function (c, cps) {
      return cps.length && c.re.test(cps[0]) ? null : {};
    },
    charset: function (c, cps) {
      const bad = cps.filter(function (ch) {
        return !c.re.test(ch);
      });
      return bad.length ? { found: found(bad) } : null;
    },
    char_types: function (c, cps) {
      const present = c.types.filter(function (type) {
        return cps.some(function (ch) {
          return type.re.test(ch);
        });
      });
      if (present.length >= c.atLeast) return null;
      return {
        count: present.length,
        present: join(present.map(function (type) {
          return type.label;
        })),
      };
    },
    reserved: function (c, cps, value) {
      const lowered = asciiLower(value);
      return lowered !== null && c.wordSet.has(lowered) ? { word: lowered } : null;
    },
    choice: function (c, cps, value) {
      return c.choices.some(function (choice) {
        return choice[0] === value;
      }) ? null : {};
    },
  };

  function messageFor(constraint, params) {
    if (constraint.kind === "char_types" && params.count === 0) return constraint.messageNone;
    return constraint.message;
  }

  // --- Public, pure functions (window.KVStoreRules) ----------------------------------

  function paramRules(param) {
    const rules = requireSpec().params[param];
    if (!rules) throw new Error("Unknown parameter: " + param);
    return rules;
  }

  // Every rule the value breaks, in constraint order: [{key, message}], [] when valid.
  function validate(param, value) {
    const rules = paramRules(param);
    const text = value == null ? "" : String(value);
    if (text === "") {
      return rules.required ? [{ key: "required", message: rules.requiredMessage }] : [];
    }
    const cps = Array.from(text);
    const violations = [];
    rules.constraints.forEach(function (constraint) {
      const params = CHECKS[constraint.kind](constraint, cps, text);
      if (params) {
        const all = Object.assign({}, constraint.params, params);
        violations.push({ key: constraint.key, message: format(messageFor(constraint, params), all) });
      }
    });
    return violations;
  }

  function checklist(param, value) {
    const rules = paramRules(param);
    const text = value == null ? "" : String(value);
    const keys = new Set(validate(param, text).map(function (v) {
      return v.key;
    }));
    const typesConstraint = rules.constraints.find(function (c) {
      return c.kind === "char_types";
    });
    const cps = Array.from(text);
    return (rules.checklist || []).map(function (item) {
      let met;
      if (item.charType) {
        const type = typesConstraint.types.find(function (t) {
          return t.name === item.charType;
        });
        met = cps.some(function (ch) {
          return type.re.test(ch);
        });
      } else {
        met = text !== "" && !item.keys.some(function (key) {
          return keys.has(key);
        });
      }
      return { id: item.id, label: item.label, met: met };
    });
  }

  function confirmViolations(password, confirmation) {
    const confirm = requireSpec().confirm;
    return password === confirmation ? [] : [{ key: confirm.key, message: confirm.message }];
  }

  function privilegeChoices() {
    const choice = paramRules("AccountPrivilege").constraints.find(function (c) {
      return c.kind === "choice";
    });
    return choice.choices.map(function (pair) {
      return pair[0];
    });
  }

  // facts: {architecture, engine}, as the instance <option>'s data-architecture/-engine.
  function privilegeAllowed(privilege, facts) {
    if (privilegeChoices().indexOf(privilege) === -1) return false;
    const needs = requireSpec().privileges[privilege];
    if (!needs) return true;
    // Compared exactly, as DescribeInstances writes them ("standard", "4.0").
    return Boolean(
      facts &&
        needs.architectures.indexOf(facts.architecture) !== -1 &&
        needs.engines.indexOf(facts.engine) !== -1
    );
  }

  function privilegeReason(privilege, facts) {
    const needs = requireSpec().privileges[privilege];
    if (!needs) return "";
    if (!facts || facts.architecture == null || facts.engine == null) {
      return format(needs.messageUnknown, { privilege: needs.label });
    }
    return format(needs.message, {
      privilege: needs.label,
      architecture: facts.architecture,
      engine: facts.engine,
    });
  }

  // facts: {status, engine, accountCount}; a fact left out is not checked.
  function instanceBlockers(facts) {
    const instance = requireSpec().instance;
    const violations = [];
    instance.blockers.forEach(function (blocker) {
      let params = null;
      if (blocker.check === "status" && facts.status != null) {
        if (facts.status !== instance.runningStatus) params = { status: facts.status };
      } else if (blocker.check === "engine" && facts.engine != null) {
        const engine = engineTuple(facts.engine);
        if (!engine || compareVersions(engine, instance.minEngine) < 0) params = { engine: facts.engine };
      } else if (blocker.check === "account_count" && facts.accountCount != null) {
        const count = Number(facts.accountCount);
        if (Number.isInteger(count) && count >= instance.maxAccounts) {
          params = { count: count, max: instance.maxAccounts };
        }
      }
      if (params) violations.push({ key: blocker.key, message: format(blocker.message, params) });
    });
    return violations;
  }

  // Uniform in [0, n): rejection sampling, so no character is likelier than another.
  function randomIndex(n) {
    const limit = Math.floor(0x100000000 / n) * n;
    const buffer = new Uint32Array(1);
    do {
      crypto.getRandomValues(buffer);
    } while (buffer[0] >= limit);
    return buffer[0] % n;
  }

  // One character of every type, the rest from all of them, shuffled; checked against
  // the same rules before it is returned.
  function generatePassword(param) {
    const name = param || "AccountPassword";
    const generator = paramRules(name).generator;
    if (!generator) throw new Error("No generator for " + name);
    const sets = generator.sets.map(function (set) {
      return Array.from(set);
    });
    const all = [].concat.apply([], sets);
    for (let attempt = 0; attempt < 100; attempt++) {
      const chars = sets.map(function (set) {
        return set[randomIndex(set.length)];
      });
      while (chars.length < generator.length) chars.push(all[randomIndex(all.length)]);
      for (let i = chars.length - 1; i > 0; i--) {
        const j = randomIndex(i + 1);
        const swap = chars[i];
        chars[i] = chars[j];
        chars[j] = swap;
      }
      const password = chars.join("");
      if (validate(name, password).length === 0) return password;
    }
    throw new Error("Could not generate a valid " + name);
  }

  // --- The page ----------------------------------------------------------------------

  const bound = new WeakSet();
  const updaters = new WeakMap(); // field -> update(show), to re-check after a generated value
  let generatedIds = 0;

  function ensureId(element, prefix) {
    if (!element.id) element.id = prefix + "-" + ++generatedIds;
    return element.id;
  }

  function describe(field, element) {
    const ids = (field.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    if (ids.indexOf(element.id) === -1) {
      ids.push(element.id);
      field.setAttribute("aria-describedby", ids.join(" "));
    }
  }

  function insertAfter(reference, element) {
    reference.parentNode.insertBefore(element, reference.nextSibling);
  }

  // The field's message element, #<id>-rule-msg; created after `after` if the page has none.
  function companion(field, suffix, tag, className, after) {
    const id = ensureId(field, "kvstore-field") + "-" + suffix;
    let element = document.getElementById(id);
    if (!element) {
      element = document.createElement(tag);
      element.id = id;
      element.className = className;
      element.setAttribute("aria-live", "polite");
      insertAfter(after || field, element);
    }
    describe(field, element);
    return element;
  }

  function report(field, violations, show) {
    field.setCustomValidity(violations.length ? violations[0].message : "");
    if (!show) return;
    field.classList.add("touched");
    field.setAttribute("aria-invalid", violations.length ? "true" : "false");
    const box = companion(field, "rule-msg", "div", "field-error");
    box.replaceChildren.apply(
      box,
      violations.map(function (violation) {
        const line = document.createElement("span");
        line.className = "rule-message";
        line.dataset.key = violation.key;
        line.textContent = violation.message;
        return line;
      })
    );
  }

  // A select's chosen option; the instance picker (a combobox input) holds the facts of
  // the chosen instance in its own data attributes.
  function selectedOption(select) {
    if (select.getAttribute("role") === "combobox") return select.dataset.architecture ? select : null;
    return select.selectedOptions && select.selectedOptions[0];
  }

  function optionFacts(option) {
    if (!option || !option.value) return null;
    return {
      architecture: option.dataset.architecture,
      engine: option.dataset.engine,
      status: option.dataset.status,
      accountCount: option.dataset.accountCount,
    };
  }

  // The instance select a privilege select follows: named by data-instance-select, else the
  // form's [data-rule="InstanceId"] select, else the form's select whose options describe
  // instances (data-architecture).
  function instanceSelectFor(select) {
    if (select.dataset.instanceSelect) return document.getElementById(select.dataset.instanceSelect);
    const scope = select.form || document;
    const marked = scope.querySelector('[data-rule="InstanceId"]');
    if (marked) return marked;
    const option = scope.querySelector("select option[data-architecture]");
    return option ? option.closest("select") : null;
  }

  // What the field's own value breaks, plus what its instance makes impossible.
  function fieldViolations(field) {
    const param = field.dataset.rule;
    const violations = validate(param, field.value);
    const picker = field.tagName === "SELECT" || field.getAttribute("role") === "combobox";
    if (violations.length || !picker) return violations;
    if (param === "InstanceId") {
      const facts = optionFacts(selectedOption(field));
      return facts ? instanceBlockers(facts) : [];
    }
    if (param === "AccountPrivilege" && requireSpec().privileges[field.value]) {
      const instanceSelect = instanceSelectFor(field);
      const facts = instanceSelect ? optionFacts(selectedOption(instanceSelect)) : null;
      if (!privilegeAllowed(field.value, facts)) {
        const needs = requireSpec().privileges[field.value];
        return [{ key: needs.key, message: privilegeReason(field.value, facts) }];
      }
    }
    return violations;
  }

  function bindField(field) {
    const param = field.dataset.rule;
    if (!requireSpec().params[param]) return;
    const update = function (show) {
      report(field, fieldViolations(field), show);
      field.dispatchEvent(new CustomEvent("kvstore:checked", { bubbles: false }));
    };
    updaters.set(field, update);
    ["input", "change", "blur", "invalid"].forEach(function (type) {
      field.addEventListener(type, function () {
        update(true);
      });
    });
    // Values the server sent back are checked at once, but the message waits for the user.
    update(false);
    if (param === "AccountPassword") bindPassword(field);
    if (param === "AccountPrivilege" && field.tagName === "SELECT") bindPrivilege(field);
  }

  function confirmFields(password) {
    return Array.from(document.querySelectorAll('[data-confirm-for="' + CSS.escape(password.id) + '"]'));
  }

  function bindConfirm(confirm) {
    const password = document.getElementById(confirm.dataset.confirmFor);
    if (!password) return;
    let touched = false;
    const update = function (show) {
      touched = touched || show;
      report(confirm, confirmViolations(password.value, confirm.value), touched);
    };
    updaters.set(confirm, update);
    ["input", "change", "blur", "invalid"].forEach(function (type) {
      confirm.addEventListener(type, function () {
        update(true);
      });
    });
    password.addEventListener("kvstore:checked", function () {
      update(touched && confirm.value !== "");
    });
    update(false);
  }

  function button(existing, create) {
    if (existing) return existing;
    const element = document.createElement("button");
    element.type = "button";
    element.className = "button-small";
    create(element);
    return element;
  }

  function bindPassword(input) {
    const data = requireSpec();
    const ui = data.ui;
    const id = input.id;
    const message = companion(input, "rule-msg", "div", "field-error");

    let tools = document.querySelector('[data-password-tools="' + CSS.escape(id) + '"]');
    if (!tools) {
      tools = document.createElement("div");
      tools.className = "rule-password-tools";
      tools.dataset.passwordTools = id;
      insertAfter(input, tools);
    }
    const toggle = button(document.querySelector('[data-password-toggle="' + CSS.escape(id) + '"]'), function (b) {
      b.dataset.passwordToggle = id;
      tools.appendChild(b);
    });
    const generate = button(document.querySelector('[data-password-generate="' + CSS.escape(id) + '"]'), function (b) {
      b.dataset.passwordGenerate = id;
      b.textContent = ui.generate;
      b.setAttribute("aria-label", ui.generateLabel);
      tools.appendChild(b);
    });
    // Copies the field's value from the page itself: the password never leaves the
    // browser except in the form's POST to CreateAccount.
    const copy = button(document.querySelector('[data-password-copy="' + CSS.escape(id) + '"]'), function (b) {
      b.dataset.passwordCopy = id;
      b.textContent = ui.copy;
      b.setAttribute("aria-label", ui.copyLabel);
      tools.appendChild(b);
    });
    const status = companion(input, "generate-status", "span", "rule-status", copy);

    const list = companion(input, "checklist", "ul", "rule-checklist", message);
    list.dataset.checklistFor = id;
    list.setAttribute("aria-label", ui.checklistLabel);
    list.removeAttribute("aria-live"); // the field's message already announces changes
    const items = {};
    list.replaceChildren();
    (data.params[input.dataset.rule].checklist || []).forEach(function (item) {
      const li = document.createElement("li");
      li.className = "rule-check";
      li.dataset.check = item.id;
      const label = document.createElement("span");
      label.textContent = item.label;
      const state = document.createElement("span");
      state.className = "rule-check-state";
      li.append(label, state);
      list.appendChild(li);
      items[item.id] = { li: li, state: state };
    });

    function refreshChecklist() {
      checklist(input.dataset.rule, input.value).forEach(function (item) {
        const entry = items[item.id];
        entry.li.classList.toggle("is-met", item.met);
        entry.state.textContent = " (" + (item.met ? ui.met : ui.unmet) + ")";
      });
    }

    function setShown(shown) {
      [input].concat(confirmFields(input)).forEach(function (field) {
        field.type = shown ? "text" : "password";
      });
      toggle.textContent = shown ? ui.hide : ui.show;
      toggle.setAttribute("aria-label", shown ? ui.hideLabel : ui.showLabel);
      toggle.setAttribute("aria-controls", id);
    }

    toggle.addEventListener("click", function () {
      setShown(input.type === "password");
    });
    // Submitted from type=password inputs whatever the toggle says: Chromium keeps the
    // POST body of a form without a password input in its session-restore files, on disk.
    if (input.form) {
      input.form.addEventListener("submit", function () {
        setShown(false);
      }, true);
    }
    // No input or change event is dispatched: nothing else on the page (htmx triggers)
    // gets a chance to send the new password anywhere.
    generate.addEventListener("click", function () {
      const password = generatePassword(input.dataset.rule);
      input.value = password;
      updaters.get(input)(true);
      confirmFields(input).forEach(function (confirm) {
        confirm.value = password;
        if (updaters.has(confirm)) updaters.get(confirm)(true);
      });
      status.textContent = ui.generated;
    });
    copy.addEventListener("click", function () {
      if (!input.value || !navigator.clipboard) return;
      navigator.clipboard.writeText(input.value).then(function () {
        status.textContent = ui.copied;
      });
    });
    input.addEventListener("kvstore:checked", refreshChecklist);
    input.addEventListener("input", function () {
      status.textContent = "";
    });
    setShown(input.type !== "password");
    refreshChecklist();
  }

  function bindPrivilege(select) {
    const instanceSelect = instanceSelectFor(select);
    const note =
      document.querySelector('[data-reason-for="' + CSS.escape(select.id) + '"]') ||
      companion(select, "rule-note", "p", "rule-note", companion(select, "rule-msg", "div", "field-error"));
    ensureId(note, "kvstore-note");
    describe(select, note);
    const defaultValue = requireSpec().params[select.dataset.rule].default;

    // The note follows the choice: it says why the chosen privilege was taken back (the
    // instance cannot have it), and nothing otherwise; a disabled option keeps its reason
    // in its title.
    function refresh() {
      const facts = instanceSelect ? optionFacts(selectedOption(instanceSelect)) : null;
      Array.from(select.options).forEach(function (option) {
        if (!requireSpec().privileges[option.value]) return;
        const allowed = privilegeAllowed(option.value, facts);
        option.disabled = !allowed;
        option.title = allowed ? "" : privilegeReason(option.value, facts);
      });
      const current = selectedOption(select);
      let said = "";
      if (current && current.disabled) {
        said = current.title;
        select.value = defaultValue;
        // The privilege (never a password) changed: let the page's own listeners know.
        takingBack = true;
        select.dispatchEvent(new Event("change", { bubbles: true }));
        takingBack = false;
      }
      note.textContent = said;
      updaters.get(select)(false);
    }

    let takingBack = false;
    select.addEventListener("change", function () {
      if (!takingBack) note.textContent = "";  // another privilege chosen
    });
    if (instanceSelect) instanceSelect.addEventListener("change", refresh);
    refresh();
  }

  function enhance(root) {
    if (!loadSpec(true)) return;
    const scope = root && root.querySelectorAll ? root : document;
    const fields = Array.from(scope.querySelectorAll("[data-rule]"));
    const confirms = Array.from(scope.querySelectorAll("[data-confirm-for]"));
    if (scope.matches && scope.matches("[data-rule]")) fields.push(scope);
    if (scope.matches && scope.matches("[data-confirm-for]")) confirms.push(scope);
    // Privilege selects last: they read the instance select, which must be bound first.
    fields.sort(function (a, b) {
      return (a.dataset.rule === "AccountPrivilege") - (b.dataset.rule === "AccountPrivilege");
    });
    fields.concat(confirms).forEach(function (element) {
      if (bound.has(element)) return;
      bound.add(element);
      if (element.dataset.rule) bindField(element);
      else bindConfirm(element);
    });
  }

  window.KVStoreRules = Object.freeze({
    validate: validate,
    checklist: checklist,
    confirmViolations: confirmViolations,
    privilegeAllowed: privilegeAllowed,
    privilegeReason: privilegeReason,
    instanceBlockers: instanceBlockers,
    generatePassword: generatePassword,
    showChar: showChar,
    enhance: enhance,
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      enhance(document);
    });
  } else {
    enhance(document);
  }
  // Content swapped in by htmx gets the same treatment.
  document.addEventListener("htmx:load", function (event) {
    enhance(event.detail && event.detail.elt);
  });
})();
