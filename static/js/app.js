// Small enhancements of our own pages. Everything works without this file.
(function () {
  "use strict";

  // A search box that narrows the options of a long <select> (the instance picker).
  function bindSelectFilter(input) {
    var select = document.getElementById(input.dataset.filterSelect);
    if (!select) return;
    input.addEventListener("input", function () {
      var needle = input.value.trim().toLowerCase();
      Array.prototype.forEach.call(select.options, function (option) {
        if (!option.value) return;
        option.hidden = needle !== "" && option.text.toLowerCase().indexOf(needle) === -1;
      });
    });
  }

  document.querySelectorAll("input[data-filter-select]").forEach(bindSelectFilter);
})();
