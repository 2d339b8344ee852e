// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";
  // Resend cooldowns: a button with data-cooldown="N" stays disabled for N seconds and shows the count down.
  document.querySelectorAll("[data-cooldown]").forEach(function (btn) {
    var left = parseInt(btn.getAttribute("data-cooldown"), 10) || 0;
    var label = btn.textContent;
    var out = document.getElementById(btn.getAttribute("aria-describedby") || "");
    if (left <= 0) return;
    btn.disabled = true;
    var tick = function () {
      if (left <= 0) { btn.disabled = false; btn.textContent = label; if (out) out.textContent = ""; return; }
      btn.textContent = label + " (" + left + ")";
      left -= 1;
      setTimeout(tick, 1000);
    };
    tick();
  });
})();
