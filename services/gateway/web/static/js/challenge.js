// The proof-of-work check of the bot defence (R39): the vendored ALTCHA widget with local workers only
// (no CDN, no blob: workers), so that the Content-Security-Policy stays strict.
const base = "/static/vendor/altcha/workers/";
const altcha = globalThis.$altcha;
if (altcha) {
  for (const name of ["PBKDF2/SHA-256", "PBKDF2/SHA-384", "PBKDF2/SHA-512"]) {
    altcha.algorithms.set(name, () => new Worker(base + "pbkdf2.js"));
  }
  for (const name of ["SHA-256", "SHA-384", "SHA-512"]) {
    altcha.algorithms.set(name, () => new Worker(base + "sha.js"));
  }
  // The texts come from the page's message catalogue (R43), as a JSON data block.
  const block = document.getElementById("altcha-strings");
  const language = document.documentElement.lang;
  if (block) {
    altcha.i18n.set(language, JSON.parse(block.textContent));
  }
  // Start at once: the person does not need to do anything but wait a moment.
  document.querySelectorAll("altcha-widget").forEach((widget) => {
    // The widget announces none of its states: the page's status region says them (WCAG 4.1.3), the
    // texts from its data attributes (altcha_status.html). Listening before verify() starts hears "verifying".
    const status = document.getElementById("altcha-status");
    if (status) {
      widget.addEventListener("statechange", (event) => {
        const said = event.detail ? status.dataset[event.detail.state] : undefined;
        if (said) {
          status.textContent = said;
        }
      });
    }
    if (typeof widget.configure === "function" && block) {
      widget.configure({ language: language });
    }
    if (typeof widget.verify === "function") {
      widget.verify();
    }
  });
}
