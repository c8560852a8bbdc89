// The security wizard page with htmx. A run the server refuses (400: the form with its
// errors) and a finding that cannot be staged (404, 409: why) are swapped in like a
// success, where htmx would drop them and django-htmx's debug handler would replace the
// whole page with them; any other failure is said under the form.
(function () {
  "use strict";
  var SHOWN = [400, 404, 409];
  var root = document.getElementById("security-wizard");
  if (!root) { return; }

  function shown(event) {
    return event.detail.xhr && SHOWN.indexOf(event.detail.xhr.status) !== -1;
  }

  // Listeners on the page's own element run before any on the document.
  root.addEventListener("htmx:beforeOnLoad", function (event) {
    if (shown(event)) { event.stopPropagation(); }
  });

  root.addEventListener("htmx:beforeSwap", function (event) {
    if (shown(event)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function fail(text) {
    var box = document.getElementById("wizard-failure");
    if (box) { box.textContent = text; box.hidden = false; }
  }

  root.addEventListener("htmx:responseError", function (event) {
    fail("The request failed (HTTP " + event.detail.xhr.status + "). Reload the page and try again.");
  });

  root.addEventListener("htmx:sendError", function () {
    fail("The server could not be reached. Check the connection and try again.");
  });
})();
