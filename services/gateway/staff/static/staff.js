// The staff pages work without this script; it only helps (CSP: script-src 'self', no inline code).
// After a refused form the error summary gets the focus, so that a screen reader reads it first and a
// keyboard user continues from there (WCAG 3.3.1); a fragment in the address (a row) keeps its place.
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (summary && !window.location.hash) {
    summary.focus();
  }
})();
