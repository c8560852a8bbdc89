// Pattern triage: keyboard (j/k move, a approve, r reject with a reason, u undo, x select,
// Enter open, ? keys), live TTL countdowns, and the undo offer's countdown.
// Everything is delegated from the document, so it keeps working when the live panel
// (#pattern-queue) is swapped in again; the current row is re-marked after each swap.
(function () {
  "use strict";
  var URGENT_MS = 3600 * 1000;
  var STORE = "patterns.current";
  var current = null; // { id, index }

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#pattern-queue tr[data-pattern-id]"));
  }

  function mark() {
    var all = rows();
    all.forEach(function (row) { row.classList.remove("current"); row.removeAttribute("aria-current"); });
    if (!all.length) { return null; }
    var row = null;
    if (current) {
      row = all.find(function (r) { return r.dataset.patternId === current.id; }) || null;
      if (!row) { row = all[Math.min(current.index, all.length - 1)]; }
    }
    if (!row) { return null; }
    row.classList.add("current");
    row.setAttribute("aria-current", "true");
    current = { id: row.dataset.patternId, index: all.indexOf(row) };
    return row;
  }

  function select(index) {
    var all = rows();
    if (!all.length) { return; }
    index = Math.max(0, Math.min(index, all.length - 1));
    current = { id: all[index].dataset.patternId, index: index };
    var row = mark();
    if (row) { row.scrollIntoView({ block: "nearest" }); }
  }

  function currentRow() {
    return current ? mark() : null;
  }

  function remember() {
    try { sessionStorage.setItem(STORE, JSON.stringify(current)); } catch (e) { /* private mode */ }
  }

  function restore() {
    try { current = JSON.parse(sessionStorage.getItem(STORE) || "null"); } catch (e) { current = null; }
    if (current) { mark(); }
  }

  function typing(target) {
    if (!target || !target.closest) { return false; }
    return Boolean(target.closest("input, textarea, select, [contenteditable], dialog[open]"));
  }

  function openDialog(dialog) {
    if (!dialog) { return; }
    if (typeof dialog.showModal === "function") { dialog.showModal(); } else { dialog.setAttribute("open", ""); }
  }

  function closeDialog(dialog) {
    if (!dialog) { return; }
    if (typeof dialog.close === "function") { dialog.close(); } else { dialog.removeAttribute("open"); }
  }

  function submit(form) {
    if (!form) { return; }
    remember();
    if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.submit(); }
  }

  function askReason(row) {
    var dialog = document.getElementById("reject-dialog");
    var rowForm = row.querySelector("form.reject");
    if (!dialog || !rowForm) { return; }
    var form = dialog.querySelector("form");
    form.setAttribute("action", rowForm.getAttribute("action"));
    var name = row.querySelector("strong");
    dialog.querySelector(".reject-name").textContent = name ? name.textContent : row.dataset.patternId;
    var reason = dialog.querySelector("textarea");
    reason.value = "";
    openDialog(dialog);
    reason.focus();
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var dialog = document.getElementById("reject-dialog");
    if (dialog && dialog.open && event.target && event.target.id === "reject-reason" &&
        event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      if (event.target.value.trim()) { submit(dialog.querySelector("form")); }
      return;
    }
    if (typing(event.target)) { return; }
    var all = rows();
    var index = current ? Math.max(0, all.findIndex(function (r) { return r.dataset.patternId === current.id; })) : -1;
    var row;
    switch (event.key) {
      case "j":
        select(index + 1);
        break;
      case "k":
        select(index < 0 ? 0 : index - 1);
        break;
      case "Enter":
        row = currentRow();
        if (!row) { return; }
        window.location.href = row.querySelector("a").href;
        break;
      case "a":
        row = currentRow();
        if (!row) { return; }
        submit(row.querySelector("form.approve"));
        break;
      case "r":
        row = currentRow();
        if (!row) { return; }
        askReason(row);
        break;
      case "x":
        row = currentRow();
        var box = row && row.querySelector("input[type=checkbox]");
        if (!box) { return; }
        box.checked = !box.checked;
        break;
      case "u":
        submit(document.getElementById("undo-form"));
        break;
      case "?":
        var help = document.getElementById("keys-help");
        if (help && help.open) { closeDialog(help); } else { openDialog(help); }
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  document.addEventListener("click", function (event) {
    var cancel = event.target.closest && event.target.closest("#reject-dialog .cancel");
    if (cancel) { closeDialog(document.getElementById("reject-dialog")); return; }
    var row = event.target.closest && event.target.closest("#pattern-queue tr[data-pattern-id]");
    if (row) { select(rows().indexOf(row)); }
  });

  document.addEventListener("submit", function (event) {
    if (event.target.closest && event.target.closest("#pattern-queue, #reject-dialog, #bulk-form, #undo-form")) {
      remember();
    }
  });

  // --- countdowns -------------------------------------------------------------------

  function duration(ms) {
    if (ms < 0) { return "-"; }
    var seconds = Math.floor(ms / 1000);
    var hours = Math.floor(seconds / 3600);
    var minutes = Math.floor((seconds % 3600) / 60);
    var secs = seconds % 60;
    function two(n) { return (n < 10 ? "0" : "") + n; }
    if (hours) { return hours + "h " + two(minutes) + "m"; }
    if (minutes) { return minutes + "m " + two(secs) + "s"; }
    return secs + "s";
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-ttl-ms]").forEach(function (el) {
      if (!el.dataset.expiresAt) { el.dataset.expiresAt = String(now + Number(el.dataset.ttlMs)); }
      var left = Number(el.dataset.expiresAt) - now;
      var row = el.closest("tr") || el.closest("dd");
      el.textContent = left > 0 ? duration(left) : "expired";
      if (row) {
        row.classList.toggle("urgent", left < URGENT_MS);
        row.classList.toggle("expired", left <= 0);
      }
    });
    var undo = document.getElementById("undo-form");
    if (undo) {
      if (!undo.dataset.until) { undo.dataset.until = String(now + Number(undo.dataset.undoMs)); }
      var rest = Number(undo.dataset.until) - now;
      if (rest <= 0) { undo.remove(); } else {
        var label = undo.querySelector(".undo-left");
        if (label) { label.textContent = Math.ceil(rest / 1000) + " s left"; }
      }
    }
  }

  // htmx settles a swapped row by giving it the old classes, then the new ones: mark the
  // current row again once that is done (and on every tick, in case no event says so).
  function refresh() { if (current) { mark(); } tick(); }
  ["htmx:oobAfterSwap", "htmx:afterSwap", "htmx:afterSettle"].forEach(function (name) {
    document.addEventListener(name, function () { refresh(); setTimeout(refresh, 50); });
  });
  document.addEventListener("DOMContentLoaded", function () { restore(); tick(); });
  setInterval(refresh, 1000);
})();
