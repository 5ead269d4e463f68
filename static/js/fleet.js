// The fleet's execute page (requests/fleet_execute.html): "a different password for each
// instance", generated here, in the browser, before the run (KVStoreRules.generatePassword,
// crypto.getRandomValues), shown once in the page with copy buttons (app.js) and sent with
// the run's POST; the server never writes a password back. Without this file the choice
// stays hidden and one typed password goes to every instance.
(function () {
  "use strict";
  var choice = document.getElementById("fleet-each-choice");
  var table = document.getElementById("fleet-each");
  var typed = document.getElementById("fleet-typed");
  if (!choice || !table || !window.KVStoreRules) return;
  var box = choice.querySelector('input[type="checkbox"]');
  choice.hidden = false;

  function fill(each) {
    table.querySelectorAll("tr[data-instance]").forEach(function (row) {
      var password = each ? window.KVStoreRules.generatePassword("AccountPassword") : "";
      row.querySelector("[data-each-password]").textContent = password;
      row.querySelector("[data-each-password-field]").value = password;
    });
    table.hidden = !each;
    if (typed) {
      typed.hidden = each;
      typed.querySelectorAll("input").forEach(function (input) {
        input.disabled = each; // not sent, not checked: each instance has its own
        if (each) input.value = "";
      });
    }
  }

  box.addEventListener("change", function () {
    fill(box.checked);
  });
  // Back in the history, a checked box comes back without its passwords: start over.
  box.checked = false;
  fill(false);
})();
