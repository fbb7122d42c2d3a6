// Conveniences for the settings pages; every form there works without this file.
(function () {
  "use strict";
  var NO_VALUE = ["is_set", "is_not_set"];

  function renumber(body) {
    body.querySelectorAll("tr.condition").forEach(function (row, index) {
      row.querySelectorAll("[id]").forEach(function (field) {
        var base = field.id.replace(/-[^-]+$/, "");
        var label = row.querySelector("label[for='" + field.id + "']");
        field.id = base + "-" + (index + 1);
        if (label) label.htmlFor = field.id;
      });
    });
  }

  function showValueHint(select) {
    var row = select.closest("tr");
    var value = row && row.querySelector("[data-value]");
    if (!value) return;
    var none = NO_VALUE.indexOf(select.value) >= 0;
    // readOnly, not disabled: a disabled field is not posted and the rows' lists would shift.
    value.readOnly = none;
    if (none) value.placeholder = "no value needed";
    else if (value.placeholder === "no value needed") value.placeholder = "";
    if (none) value.value = "";
  }

  function setUp(form) {
    var body = form.querySelector("[data-conditions]");
    var template = form.querySelector("#condition-template");
    var add = form.querySelector("[data-add-condition]");
    if (!body || !template || !add) return;
    // With a button to add rows, one spare blank row is enough.
    var blanks = Array.prototype.filter.call(body.querySelectorAll("tr.condition"), function (row) {
      return !row.querySelector("[name=key]").value && !row.querySelector("[name=value]").value;
    });
    blanks.slice(1).forEach(function (row) { row.remove(); });
    add.hidden = false;
    body.querySelectorAll("[data-remove-condition]").forEach(function (button) { button.hidden = false; });
    add.addEventListener("click", function () {
      var row = template.content.firstElementChild.cloneNode(true);
      row.querySelector("[data-remove-condition]").hidden = false;
      body.appendChild(row);
      renumber(body);
      row.querySelector("[name=key]").focus();
    });
    body.addEventListener("click", function (event) {
      var button = event.target.closest("[data-remove-condition]");
      if (!button) return;
      var row = button.closest("tr");
      if (body.querySelectorAll("tr.condition").length > 1) {
        row.remove();
        renumber(body);
      } else {
        row.querySelectorAll("input, textarea").forEach(function (field) { field.value = ""; });
      }
    });
    body.addEventListener("change", function (event) {
      if (event.target.matches("[data-operator]")) showValueHint(event.target);
    });
    body.querySelectorAll("[data-operator]").forEach(showValueHint);
    renumber(body);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.rule-form").forEach(setUp);
  });
})();
