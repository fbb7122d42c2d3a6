// Small conveniences over pages that work without it: every form and link is plain HTML.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches("[data-autosubmit]")) target.form.submit();
    if (target.matches("[data-select-all]")) {
      var scope = target.closest("form") || document;
      scope.querySelectorAll("input[type=checkbox][name='" + target.dataset.selectAll + "']").forEach(function (box) {
        box.checked = target.checked;
      });
    }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = (event.submitter && event.submitter.dataset.confirm) || form.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    navigator.clipboard && navigator.clipboard.writeText(button.dataset.copy).then(function () {
      var text = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = text; }, 1200);
    });
  });
  document.addEventListener("focusin", function (event) {
    if (event.target.matches("[data-select-on-focus]")) event.target.select();
  });
  // Keyboard: "/" focuses the page's search box; pages add their own keys with data-key.
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.metaKey || event.ctrlKey || event.altKey) return;
    if (event.key === "/") {
      var search = document.querySelector("[data-search]");
      if (search) { event.preventDefault(); search.focus(); }
      return;
    }
    var bound = document.querySelector("[data-key='" + event.key + "']");
    if (bound) { event.preventDefault(); bound.click(); }
  });
})();
