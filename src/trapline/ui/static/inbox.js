// Keyboard triage over the inbox's rows. Without it the page works the same by mouse:
// rows are links and checkboxes, actions are buttons of one form.
(function () {
  "use strict";
  var table = document.querySelector("[data-inbox-rows]");
  var help = document.querySelector("[data-keys-help]");
  if (help) help.hidden = false;
  if (!table) return;
  var form = table.closest("form");
  var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-issue]"));
  var counter = form.querySelector("[data-selected-count]");
  var current = -1;

  function box(row) { return row.querySelector("input[name=ids]"); }

  function checked() { return rows.filter(function (row) { return box(row).checked; }); }

  function showCount() {
    var n = checked().length;
    if (counter) counter.textContent = n ? n + " selected:" : "Selected issues:";
  }

  function highlight(index) {
    if (!rows.length) return;
    if (current >= 0) rows[current].classList.remove("is-current");
    current = Math.max(0, Math.min(rows.length - 1, index));
    rows[current].classList.add("is-current");
    rows[current].scrollIntoView({ block: "nearest" });
  }

  // After ui.js has ticked the boxes for "select all" (it listens further up, on document).
  form.addEventListener("change", function () { setTimeout(showCount, 0); });
  showCount();

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.metaKey || event.ctrlKey || event.altKey) return;
    var target = event.target;
    var tag = (target.tagName || "").toLowerCase();
    // Typing goes to fields; a ticked checkbox keeps the focus but not the keys.
    var choice = tag === "input" && (target.type === "checkbox" || target.type === "radio");
    if ((tag === "input" && !choice) || tag === "textarea" || tag === "select" || target.isContentEditable) return;
    // Enter on a link or a button does what it always does.
    if (event.key === "Enter" && (tag === "a" || tag === "button" || tag === "summary")) return;
    var row = current >= 0 ? rows[current] : null;
    switch (event.key) {
      case "j": highlight(current + 1); break;
      case "k": highlight(current < 0 ? 0 : current - 1); break;
      case "x":
        if (!row) return;
        box(row).checked = !box(row).checked;
        showCount();
        break;
      case "o":
      case "Enter":
        if (!row) return;
        window.location.href = row.querySelector("a[data-open]").href;
        break;
      case "e":
        // The ticked issues, or the one the keyboard is on.
        if (!checked().length) {
          if (!row) return;
          box(row).checked = true;
        }
        form.querySelector("button[data-bulk=resolve]").click();
        break;
      default:
        return;
    }
    event.preventDefault();
  });
})();
