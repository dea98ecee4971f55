// Small progressive enhancements; every page works without them. No inline scripts (CSP).
(function () {
  "use strict";
  // Controls that need JS (Copy, Reveal, Print) are hidden by CSS until this runs.
  document.documentElement.classList.add("js");
  function copy(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) return;
    var text = target.getAttribute("data-value") || target.textContent.trim();
    navigator.clipboard.writeText(text).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  }
  function reveal(button) {
    var target = document.getElementById(button.getAttribute("data-reveal-target"));
    if (!target) return;
    var shown = target.getAttribute("data-shown") === "1";
    target.textContent = shown ? target.getAttribute("data-masked") : target.getAttribute("data-value");
    target.setAttribute("data-shown", shown ? "0" : "1");
    button.textContent = shown ? "Reveal" : "Hide";
  }
  // A quick amount fills the custom amount field and asks for a live quote (the link still works without JS).
  function usePreset(link, event) {
    var input = document.getElementById("tokens-input");
    if (!input || !window.htmx) return;
    event.preventDefault();
    input.value = link.getAttribute("data-preset");
    input.focus();
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var end = Date.parse(el.getAttribute("data-countdown"));
      if (isNaN(end)) return;
      var left = Math.max(0, Math.floor((end - Date.now()) / 1000));
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = left === 0 ? "expired" : (h ? h + "h " : "") + m + "m " + (s < 10 ? "0" : "") + s + "s";
    });
  }
  document.addEventListener("click", function (event) {
    var copyButton = event.target.closest("[data-copy-target]");
    if (copyButton) { event.preventDefault(); copy(copyButton); }
    var revealButton = event.target.closest("[data-reveal-target]");
    if (revealButton) { event.preventDefault(); reveal(revealButton); }
    var preset = event.target.closest("[data-preset]");
    if (preset) { usePreset(preset, event); }
    if (event.target.closest("[data-print]")) { event.preventDefault(); window.print(); }
  });
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 1000); });
  document.addEventListener("htmx:afterSwap", tick);
})();
