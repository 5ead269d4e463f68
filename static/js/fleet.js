// Copy buttons of the passwords generated for each instance (requests/fleet_execute.html):
// the password goes from the page to the clipboard, never anywhere else.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) {
      return;
    }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent).then(function () {
        button.setAttribute("data-copied", "true");
      });
    }
  });
})();
