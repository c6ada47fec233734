// The staff pages work without this script; it only helps (CSP: script-src 'self', no inline code).
(function () {
  "use strict";

  // After a refused form the error summary gets the focus, so that a screen reader reads it first and a
  // keyboard user continues from there (WCAG 3.3.1); a fragment in the address (a row) keeps its place,
  // unless the page has no such place (a refused preview of a mail text has no preview to jump to).
  var summary = document.getElementById("error-summary");
  var target = window.location.hash && document.getElementById(window.location.hash.slice(1));
  if (summary && !target) {
    summary.focus();
  }
  // A saved form's confirmation stands at the row or section the page jumped back to; with the focus
  // there a screen reader reads it (a status in the page as loaded is not announced reliably), and the
  // keyboard continues from that row.
  var saved = document.getElementById("saved-notice");
  if (saved && !summary) {
    // After the browser's own jump to the row, which leaves the focus on no element.
    window.addEventListener("load", function () {
      window.setTimeout(function () { saved.focus(); }, 0);
    });
  }

  // The session ends after some minutes without a request (typing does not count): two minutes before,
  // a warning with a button that extends it (WCAG 2.2.1), and a note when it has ended, so that text
  // not yet sent can be copied before signing in again. The focus moves into the (non-modal) alert
  // dialog, which a screen reader announces with its text; after extending it returns.
  var warning = document.getElementById("session-warning");
  var text = document.getElementById("session-warning-text");
  var button = document.getElementById("session-extend");
  var heading = document.getElementById("session-warning-heading");
  var idleMs = warning ? Number(warning.getAttribute("data-idle-minutes")) * 60000 : 0;
  if (!warning || !text || !button || !heading || !(idleMs > 0)) {
    return;
  }
  var aheadMs = Math.min(120000, idleMs / 2);
  var warnTimer = 0;
  var endTimer = 0;
  var before = null;

  function clock(moment) {
    return moment.toLocaleTimeString("de-DE", { hour: "2-digit", minute: "2-digit" });
  }

  function schedule() {
    var end = new Date(Date.now() + idleMs);
    window.clearTimeout(warnTimer);
    window.clearTimeout(endTimer);
    warnTimer = window.setTimeout(function () { warn(end); }, idleMs - aheadMs);
    endTimer = window.setTimeout(ended, idleMs);
  }

  function warn(end) {
    before = document.activeElement;
    heading.textContent = "Sitzung läuft ab";
    text.textContent = "Ihre Sitzung endet um " + clock(end) + " Uhr, wenn Sie bis dahin nichts senden. " +
      "Nicht gesendete Eingaben gehen dann verloren.";
    button.hidden = false;
    warning.hidden = false;
    button.focus();
  }

  function ended() {
    window.clearTimeout(warnTimer);
    window.clearTimeout(endTimer);
    text.textContent = "Ihre Sitzung ist abgelaufen. Bitte kopieren Sie nicht gesendete Eingaben " +
      "und melden Sie sich neu an (die Seite neu laden).";
    heading.textContent = "Sitzung abgelaufen";
    button.hidden = true;
    warning.hidden = false;
    text.focus();
  }

  button.addEventListener("click", function () {
    window.fetch("/api/v1/staff/me", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          ended();
          return;
        }
        warning.hidden = true;
        text.textContent = "";
        schedule();
        if (before && before !== document.body && typeof before.focus === "function") {
          before.focus();  // back to where the user was typing
        }
      }, ended);
  });

  schedule();
})();
