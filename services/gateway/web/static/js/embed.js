// For the jobcenter's homepage: resizes the OTV booking iframe to its content (R36).
// <iframe id="otv-booking" src="https://.../"></iframe>
// <script src="https://.../static/js/embed.js" data-frame="otv-booking" defer></script>
(function () {
  "use strict";
  var script = document.currentScript;
  var frameId = (script && script.getAttribute("data-frame")) || "otv-booking";
  var origin = script ? new URL(script.src).origin : null;
  window.addEventListener("message", function (event) {
    var frame = document.getElementById(frameId);
    if (!frame || event.source !== frame.contentWindow) { return; }
    if (origin && event.origin !== origin) { return; }
    var data = event.data;
    if (data && data.type === "otv:height" && typeof data.height === "number" && data.height > 0) {
      frame.style.height = Math.min(Math.ceil(data.height), 20000) + "px";
    }
  });
})();
