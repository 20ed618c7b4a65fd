// Postback dashboard: progressive enhancements only; every page works without this file.
(function () {
  "use strict";
  document.addEventListener("click", function (e) {
    var btn = e.target.closest ? e.target.closest("[data-copy]") : null;
    if (!btn) return;
    var source = document.querySelector(btn.getAttribute("data-copy"));
    if (!source) return;
    var text = source.textContent.trim();
    var done = function () {
      var label = btn.textContent;
      btn.textContent = "Copied";
      setTimeout(function () { btn.textContent = label; }, 2000);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, function () { selectText(source); });
    } else {
      selectText(source);
    }
  });
  // Webhook form: add and remove condition rows, show the 1st/Last choice only for fields
  // that have it, and insert URL tokens at the cursor (seed 002).
  function syncTouch(row) {
    var field = row.querySelector(".cond-field");
    var touch = row.querySelector(".cond-touch");
    if (!field || !touch) return;
    var opt = field.options[field.selectedIndex];
    touch.hidden = !(opt && opt.getAttribute("data-touch") === "true");
  }
  document.querySelectorAll(".condition-row").forEach(syncTouch);
  document.addEventListener("change", function (e) {
    if (e.target.classList && e.target.classList.contains("cond-field")) {
      syncTouch(e.target.closest(".condition-row"));
    }
  });
  document.addEventListener("click", function (e) {
    var t = e.target;
    if (t.id === "add-condition") {
      var tpl = document.getElementById("condition-template");
      var rows = document.getElementById("condition-rows");
      if (!tpl || !rows) return;
      var row = tpl.content.firstElementChild.cloneNode(true);
      rows.appendChild(row);
      syncTouch(row);
      row.querySelector(".cond-field").focus();
    } else if (t.classList && t.classList.contains("remove-condition")) {
      t.closest(".condition-row").remove();
    } else if (t.hasAttribute && t.hasAttribute("data-token")) {
      var input = document.getElementById("url");
      if (!input) return;
      var token = t.getAttribute("data-token");
      var start = input.selectionStart != null ? input.selectionStart : input.value.length;
      var end = input.selectionEnd != null ? input.selectionEnd : start;
      input.value = input.value.slice(0, start) + token + input.value.slice(end);
      input.focus();
      input.setSelectionRange(start + token.length, start + token.length);
    }
  });
  // Tracking link forms: add and remove target rows.
  document.addEventListener("click", function (e) {
    var t = e.target;
    if (!t.classList) return;
    if (t.classList.contains("add-target")) {
      var set = t.closest("fieldset");
      var tpl = set && set.querySelector(".target-template");
      var rows = set && set.querySelector(".target-rows");
      if (!tpl || !rows) return;
      var row = tpl.content.firstElementChild.cloneNode(true);
      rows.appendChild(row);
      row.querySelector("input[name='target_url']").focus();
    } else if (t.classList.contains("remove-target")) {
      t.closest(".target-row").remove();
    }
  });
  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }
})();
