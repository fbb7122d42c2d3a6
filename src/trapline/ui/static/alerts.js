// The alert form shows only the fields of the chosen trigger and destination. Without this
// file every field shows, its label saying when it applies, and the server ignores the others.
(function () {
  "use strict";

  function show(form, attribute, chosen) {
    form.querySelectorAll("[" + attribute + "]").forEach(function (element) {
      element.hidden = element.getAttribute(attribute).split(" ").indexOf(chosen) < 0;
    });
  }

  function setUp(form) {
    var trigger = form.querySelector("[data-trigger]");
    var destination = form.querySelector("[data-destination]");
    if (!trigger || !destination) return;
    function sync() {
      show(form, "data-when-trigger", trigger.value);
      show(form, "data-when-destination", destination.value);
    }
    trigger.addEventListener("change", sync);
    destination.addEventListener("change", sync);
    sync();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.alert-form").forEach(setUp);
  });
})();
