// Small enhancements of our own pages. Everything works without this file.
(function () {
  "use strict";

  // The instance picker (accounts_app/forms/instance_picker.py): htmx fills the listbox
  // with the server's matches; this adds the WAI-ARIA combobox pattern's keyboard and
  // screen-reader behaviour (https://www.w3.org/WAI/ARIA/apg/patterns/combobox/).
  // Without it the input is a plain text field for the instance ID.
  var FACTS = ["architecture", "engine", "status", "accountCount"];

  function bindCombobox(input) {
    var listbox = document.getElementById(input.getAttribute("aria-controls"));
    if (!listbox) return;
    var active = -1;

    function options() {
      return Array.prototype.filter.call(listbox.children, function (item) {
        return item.getAttribute("role") === "option";
      });
    }

    function setOpen(open) {
      open = open && listbox.children.length > 0;
      listbox.hidden = !open;
      input.setAttribute("aria-expanded", open ? "true" : "false");
      if (!open) setActive(-1);
    }

    function setActive(index) {
      var items = options();
      items.forEach(function (item, position) {
        item.setAttribute("aria-selected", position === index ? "true" : "false");
      });
      active = index;
      if (index >= 0 && items[index]) {
        input.setAttribute("aria-activedescendant", items[index].id);
        items[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function move(step) {
      var count = options().length;
      if (!count) return;
      if (listbox.hidden) setOpen(true);
      setActive(active < 0 ? (step > 0 ? 0 : count - 1) : (active + step + count) % count);
    }

    function choose(item) {
      if (!item || item.getAttribute("aria-disabled") === "true") return;
      input.value = item.dataset.value;
      FACTS.forEach(function (fact) {
        if (item.dataset[fact] !== undefined) input.dataset[fact] = item.dataset[fact];
      });
      setOpen(false);
      // The privilege rules and the pre-flight follow the instance's change.
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function forgetFacts() {
      FACTS.forEach(function (fact) {
        delete input.dataset[fact];
      });
    }

    // Each answer of the server: ids for aria-activedescendant, then the list opens.
    listbox.addEventListener("htmx:afterSwap", function () {
      options().forEach(function (item, position) {
        item.id = listbox.id + "-" + position;
      });
      setOpen(document.activeElement === input);
    });
    input.addEventListener("input", function () {
      // Typed, not chosen: the facts of the earlier choice no longer hold. (The
      // browser's own change event follows when the input loses the focus.)
      forgetFacts();
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown") {
        event.preventDefault();
        if (event.altKey) setOpen(true);
        else move(1);
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        move(-1);
      } else if (event.key === "Enter") {
        if (!listbox.hidden && active >= 0) {
          event.preventDefault(); // choose, do not submit the form yet
          choose(options()[active]);
        }
      } else if (event.key === "Escape") {
        if (!listbox.hidden) {
          event.preventDefault();
          setOpen(false);
        } else if (input.value) {
          input.value = "";
          forgetFacts();
          input.dispatchEvent(new Event("change", { bubbles: true }));
        }
      }
    });
    // mousedown, not click: the input keeps the focus, so the list is still open.
    listbox.addEventListener("mousedown", function (event) {
      event.preventDefault();
      choose(event.target.closest("[role=option]"));
    });
    input.addEventListener("blur", function () {
      setOpen(false);
    });
    input.addEventListener("click", function () {
      setOpen(listbox.hidden);
    });
  }

  document.querySelectorAll("input[data-combobox]").forEach(bindCombobox);

  // Copy buttons (templates/requests/_copy_button.html): hidden until this script can
  // copy; they copy what the page already shows, never a password.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    return Promise.resolve();
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copy);
      copyText(source.textContent.trim()).then(function () {
        button.textContent = button.dataset.copied;
        setTimeout(function () {
          button.textContent = label;
        }, 2000);
      });
    });
  });

  // A form whose POST can take seconds (CreateAccount: up to the API's deadline) says
  // so, and is not sent twice. Disabled after the submit event, so the button's own
  // value is still part of the POST.
  document.querySelectorAll("button[data-busy-text]").forEach(function (button) {
    if (!button.form) return;
    button.form.addEventListener("submit", function (event) {
      setTimeout(function () {
        if (event.defaultPrevented) return; // refused in the browser: nothing was sent
        button.disabled = true;
        button.setAttribute("aria-busy", "true");
        button.textContent = button.dataset.busyText;
      }, 0);
    });
  });

  // Forms that undo something ask first (cancelling a request).
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
})();
