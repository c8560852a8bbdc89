// Live dashboard: connection status, signal-feed resume, polling fallback, countdowns.
(function () {
  "use strict";
  var POLL_AFTER_FAILURES = 3;
  var POLL_EVERY_MS = 5000;
  var failures = 0;
  var pollTimer = null;

  // Reconnect soon after a blip (a server or Redis restart): 250-500 ms first, doubling
  // to at most 4-8 s. The random half keeps many dashboards from returning at once.
  if (window.htmx) htmx.config.wsReconnectDelay = function (retryCount) {
    var ceiling = Math.min(500 * Math.pow(2, retryCount), 8000);
    return ceiling * (0.5 + Math.random() / 2);
  };

  function setStatus(state, text) {
    var el = document.getElementById("live-status");
    if (el) { el.dataset.state = state; el.textContent = text; }
  }

  function newestSignalId() {
    var first = document.querySelector("#signal-items [data-signal-id]");
    return first ? first.dataset.signalId : "";
  }

  function poll() {
    var main = document.querySelector("main[data-live-poll]");
    if (!main) { return; }
    var url = main.dataset.livePoll + "&after=" + encodeURIComponent(newestSignalId());
    htmx.ajax("GET", url, { swap: "none" });
  }

  function startPolling() {
    if (pollTimer) { return; }
    setStatus("polling", "polling every 5 s");
    poll();
    pollTimer = setInterval(poll, POLL_EVERY_MS);
  }

  function stopPolling() {
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  document.addEventListener("htmx:wsOpen", function (event) {
    failures = 0;
    stopPolling();
    setStatus("live", "live");
    // Ask for every signal newer than the newest one shown: nothing missed, no repeats.
    event.detail.socketWrapper.send(JSON.stringify({ resume: newestSignalId() }));
  });

  document.addEventListener("htmx:wsClose", function () {
    failures += 1;
    if (failures >= POLL_AFTER_FAILURES) { startPolling(); } else { setStatus("reconnecting", "reconnecting…"); }
  });

  // A failed attempt fires wsError and then wsClose: count it once, on close.

  // A live update keeps a preserved select (hx-preserve: what the person chose, and its
  // open list) but brings the options it renders, such as a task type that has just
  // appeared: add those to the kept select, each before the option it precedes there.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var fragment = event.detail.fragment;
    if (!fragment || !fragment.querySelectorAll) { return; }
    fragment.querySelectorAll("select[hx-preserve][id]").forEach(function (fresh) {
      var kept = document.getElementById(fresh.id);
      if (!kept || kept.tagName !== "SELECT") { return; }
      var next = null;
      for (var i = fresh.options.length - 1; i >= 0; i--) {
        var value = fresh.options[i].value;
        var option = Array.prototype.find.call(kept.options, function (o) { return o.value === value; });
        if (!option) {
          option = new Option(fresh.options[i].text, value);
          kept.insertBefore(option, next);
        }
        next = option;
      }
    });
  });

  document.addEventListener("htmx:oobAfterSwap", function () {
    var empty = document.querySelector("#signal-items .empty");
    if (empty && document.querySelector("#signal-items [data-signal-id]")) { empty.remove(); }
    // A poll answered just as the websocket came back can repeat what the socket sent.
    var seen = {};
    document.querySelectorAll("#signal-items [data-signal-id]").forEach(function (el) {
      if (seen[el.dataset.signalId]) { el.remove(); } else { seen[el.dataset.signalId] = true; }
    });
  });

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = Math.round((Number(el.dataset.deadline) - now) / 1000);
      el.textContent = left > 0 ? left + " s" : "expired";
      el.classList.toggle("urgent", left <= 10);
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
})();
