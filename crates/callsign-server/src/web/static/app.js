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

  // Live template preview (dashboard): a form with data-live-preview="<table id>" asks the server for its preview
  // (the Preview button's request: same renderer, nothing saved) as the operator types, and swaps the table in.
  document.querySelectorAll("form[data-live-preview]").forEach(function (form) {
    var table = document.getElementById(form.getAttribute("data-live-preview"));
    if (!table || !window.fetch || !window.DOMParser) return;
    var timer = null;
    var seq = 0;
    var refresh = function () {
      var mine = ++seq;
      var body = new URLSearchParams(new FormData(form));
      body.set("action", "preview");
      fetch(form.getAttribute("action"), { method: "POST", body: body, credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          if (mine !== seq) return; // an older answer arriving late
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(table.id);
          if (!fresh) return;
          table.replaceChildren.apply(table, Array.prototype.map.call(fresh.childNodes, function (n) {
            return document.importNode(n, true);
          }));
        })
        .catch(function () { /* the Preview button still works */ });
    };
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    });
  });

  // Branding preview (dashboard): a form with data-brand-preview="<id>" recolours that mock login card as colours
  // are typed or picked, with the server's rules (web/brand.rs): button text black or white, whichever reads better;
  // links moved towards black (white in the dark scheme) until they read at 4.5:1 on the card. Each colour picker
  // (data-color-text) and its text field (data-color-var) are kept in step.
  document.querySelectorAll("form[data-brand-preview]").forEach(function (form) {
    var preview = document.getElementById(form.getAttribute("data-brand-preview"));
    if (!preview) return;
    var parse = function (v) {
      var m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec((v || "").trim());
      if (!m) return null;
      var h = m[1].length === 3 ? m[1].replace(/./g, "$&$&") : m[1];
      return [0, 2, 4].map(function (i) { return parseInt(h.substr(i, 2), 16); });
    };
    var hex = function (c) { return "#" + c.map(function (x) { return ("0" + x.toString(16)).slice(-2); }).join(""); };
    var lum = function (c) {
      var l = c.map(function (x) { x /= 255; return x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
      return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
    };
    var contrast = function (a, b) {
      var x = lum(a), y = lum(b);
      return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
    };
    var readableOn = function (c, bg) {
      if (contrast(c, bg) >= 4.5) return c;
      var to = lum(bg) > 0.18 ? [0, 0, 0] : [255, 255, 255];
      for (var i = 1; i <= 20; i++) {
        var m = c.map(function (x, k) { return Math.round(x + (to[k] - x) * i / 20); });
        if (contrast(m, bg) >= 4.5) return m;
      }
      return to;
    };
    var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
    var cards = dark ? [[0x1b, 0x20, 0x27], [0x1f, 0x33, 0x57]] : [[255, 255, 255], [0xe3, 0xec, 0xfb]];
    var apply = function (name, value) {
      var c = parse(value);
      if (name === "primary") {
        if (!c) c = parse(form.querySelector("[data-color-var=primary]").getAttribute("placeholder"));
        if (!c) return;
        var black = [0, 0, 0], white = [255, 255, 255];
        var link = cards.reduce(function (x, bg) { return readableOn(x, bg); }, c);
        preview.style.setProperty("--button-bg", hex(c));
        preview.style.setProperty("--button-fg", hex(contrast(c, black) >= contrast(c, white) ? black : white));
        preview.style.setProperty("--accent", hex(link));
      } else if (name === "page_background") {
        if (!c) c = parse(form.querySelector("[data-color-var=page_background]").getAttribute("placeholder"));
        if (c) preview.style.setProperty("--page-bg", hex(c));
      }
    };
    form.querySelectorAll("[data-color-var]").forEach(function (text) {
      var name = text.getAttribute("data-color-var");
      var picker = document.querySelector("[data-color-text='" + text.id + "']");
      text.addEventListener("input", function () {
        var c = parse(text.value);
        if (c && picker) picker.value = hex(c);
        if (c || text.value.trim() === "") apply(name, text.value);
      });
      if (picker) {
        picker.addEventListener("input", function () { text.value = picker.value; apply(name, picker.value); });
      }
    });
    var logoInput = form.querySelector("input[name=logo_url]");
    var logo = preview.querySelector("img");
    if (logoInput && logo) {
      logoInput.addEventListener("input", function () {
        var v = logoInput.value.trim();
        if (/^https?:\/\/\S+$/.test(v)) { logo.src = v; logo.hidden = false; } else if (v === "") { logo.hidden = true; }
      });
    }
  });

  // response_mode=form_post: the form carrying the authorization response posts itself to the application (its
  // button does it without JavaScript).
  document.querySelectorAll("form[data-auto-submit]").forEach(function (form) { form.submit(); });

  // response_mode=web_message: post the authorization response to the page that opened or framed this one, for
  // the one origin the server checked (data-origin); never to "*".
  var wm = document.getElementById("cs-web-message");
  if (wm) {
    var target = window.opener || (window.parent !== window ? window.parent : null);
    var origin = wm.getAttribute("data-origin");
    if (target && origin && origin !== "*") {
      target.postMessage(JSON.parse(wm.getAttribute("data-message")), origin);
    }
  }
})();
