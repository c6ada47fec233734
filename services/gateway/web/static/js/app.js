// Small enhancements of the customer pages; every page works without them.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  document.addEventListener("DOMContentLoaded", function () {
    // Move focus to the error summary or to what the page is about (the chosen day's times, a result).
    var target = document.querySelector(".error-summary") || document.querySelector("[data-focus-on-load]");
    if (target) {
      target.focus();
    }

    // Print buttons (R10): shown only where a script can print.
    document.querySelectorAll("[data-action=print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });

    // The concern page (R11): a concern offered in one way only checks that way; the next concern with a
    // choice takes back what the script checked, never what the customer chose.
    var checkedByScript = null;
    document.querySelectorAll("input[name=concern][data-modes]").forEach(function (concern) {
      concern.addEventListener("change", function () {
        var modes = concern.getAttribute("data-modes").split(" ");
        if (modes.length === 1) {
          var only = document.querySelector("input[name=mode][value=" + modes[0] + "]");
          if (only && !only.checked) {
            only.checked = true;
            checkedByScript = only;
          }
        } else if (checkedByScript && checkedByScript.checked) {
          checkedByScript.checked = false;
          checkedByScript = null;
        }
      });
    });
    document.querySelectorAll("input[name=mode]").forEach(function (mode) {
      mode.addEventListener("change", function () { checkedByScript = null; });
    });

    // The held slot (R38): a live countdown with a warning, never a silent time limit (WCAG 2.2.1).
    var hold = document.getElementById("hold");
    if (hold) {
      var seconds = parseInt(hold.getAttribute("data-hold-seconds"), 10);
      var live = document.getElementById("hold-live");
      var text = document.getElementById("hold-text");
      var expired = document.getElementById("hold-expired");
      // The renewal (the button below the form and its hint) is offered from the warning on.
      var renew = document.querySelectorAll(".hold-renew");
      var offer = function (shown) {
        renew.forEach(function (element) { element.hidden = !shown; });
      };
      offer(seconds <= 120);
      var more = document.getElementById("hold-more");
      var hint = more ? more.textContent : "";
      var warned = false;
      var messages = [hold.getAttribute("data-warning") || "", hold.getAttribute("data-expired") || ""];
      var started = Date.now();
      var timer = window.setInterval(function () {
        var left = seconds - Math.floor((Date.now() - started) / 1000);
        if (left <= 120 && !warned && left > 0) {
          warned = true;
          offer(true);
          if (more) { more.textContent = messages[0]; }  // the warning visible too, not only announced
          live.textContent = messages[0];
        }
        if (left <= 0) {
          window.clearInterval(timer);
          if (text) { text.hidden = true; }
          expired.hidden = false;
          offer(true);
          if (more) { more.textContent = hint; }
          live.textContent = messages[1];
        }
      }, 1000);
    }

    // Inside an iframe on the jobcenter's homepage (R36): tell the parent page our height.
    if (window.parent !== window) {
      var last = 0;
      var report = function () {
        var height = Math.ceil(document.documentElement.scrollHeight);
        if (height !== last) {
          last = height;
          window.parent.postMessage({ type: "otv:height", height: height }, "*");
        }
      };
      if (window.ResizeObserver) {
        new ResizeObserver(report).observe(document.body);
      }
      window.addEventListener("load", report);
      report();
    }
  });
})();
