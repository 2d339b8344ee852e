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

  // The provider form (dashboard): only the chosen provider's settings are shown. Without this script every
  // provider's group is shown under its name, and the form still saves the chosen one.
  document.querySelectorAll("form[data-provider-form]").forEach(function (form) {
    var show = function () {
      var chosen = form.querySelector("input[name=provider]:checked");
      form.querySelectorAll("fieldset[data-provider]").forEach(function (group) {
        group.hidden = !chosen || group.getAttribute("data-provider") !== chosen.value;
      });
    };
    form.addEventListener("change", function (e) { if (e.target.name === "provider") show(); });
    show();
  });

  // Unsaved changes (dashboard): a form with data-track-changes says "Unsaved changes" beside its save button
  // while what is in it differs from what the page was loaded with; leaving the page then asks first. Saving one
  // section reloads the page: what was typed in the other sections (never a password or a secret) is kept for
  // that one reload, in this tab only, and still shown as unsaved.
  var tracked = Array.prototype.slice.call(document.querySelectorAll("form[data-track-changes]"));
  if (tracked.length && window.FormData && window.sessionStorage) {
    var keep = function (el) { return el.name && el.name !== "csrf" && el.type !== "password" && el.type !== "hidden"; };
    var snapshot = function (form) {
      return JSON.stringify(Array.prototype.filter.call(form.elements, keep).map(function (el) {
        return [el.name, el.type === "checkbox" || el.type === "radio" ? el.checked : el.value];
      }));
    };
    var initial = tracked.map(snapshot);
    var dirty = function (i) { return snapshot(tracked[i]) !== initial[i]; };
    // A section whose save was just refused shows what was typed: that is not saved either.
    var refused = tracked.map(function (form) {
      var section = form.closest("section");
      return !!(section && section.querySelector("[role=alert]"));
    });
    var mark = function (i) {
      var note = tracked[i].querySelector("[data-unsaved]");
      if (note) note.textContent = dirty(i) ? "Unsaved changes" : refused[i] ? "Not saved" : "";
    };
    var key = "callsign-unsaved:" + location.pathname;
    var submitting = false;
    var saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(key) || "null"); } catch (e) { saved = null; }
    sessionStorage.removeItem(key);
    tracked.forEach(function (form, i) {
      var action = form.getAttribute("action");
      if (saved && saved[action]) {
        saved[action].forEach(function (pair) {
          Array.prototype.forEach.call(form.elements, function (el) {
            if (el.name !== pair[0] || !keep(el)) return;
            if (el.type === "checkbox" || el.type === "radio") { if (el.value === pair[1]) el.checked = pair[2]; }
            else el.value = pair[2];
          });
        });
        form.dispatchEvent(new Event("change", { bubbles: true }));
      }
      mark(i);
      form.addEventListener("input", function () { mark(i); });
      form.addEventListener("change", function () { mark(i); });
      form.addEventListener("submit", function () {
        submitting = true;
        var others = {};
        tracked.forEach(function (other, j) {
          if (j === i || !(dirty(j) || refused[j])) return;
          others[other.getAttribute("action")] = Array.prototype.filter.call(other.elements, keep).map(function (el) {
            return [el.name, el.value, el.type === "checkbox" || el.type === "radio" ? el.checked : el.value];
          });
        });
        if (Object.keys(others).length) sessionStorage.setItem(key, JSON.stringify(others));
      });
    });
    window.addEventListener("beforeunload", function (e) {
      if (submitting) return;
      if (tracked.some(function (_, i) { return dirty(i) || refused[i]; })) { e.preventDefault(); e.returnValue = ""; }
    });
  }

  // Local time (dashboard Logs): a <time data-local-time> shows its date in UTC; rewrite it in the browser's time
  // zone (the UTC text stays as its title) and name that zone where the page says which one its times are in
  // ([data-time-zone], "UTC" without this script; the dates themselves stay short).
  var times = document.querySelectorAll("time[data-local-time]");
  if (times.length && window.Intl && Intl.DateTimeFormat) {
    var local = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit"
    });
    var zone = local.resolvedOptions().timeZone;
    if (zone) {
      times.forEach(function (t) {
        var d = new Date(t.getAttribute("datetime"));
        if (isNaN(d.getTime())) return;
        t.title = t.textContent;
        t.textContent = local.format(d);
      });
      document.querySelectorAll("[data-time-zone]").forEach(function (z) { z.textContent = zone; });
    }
  }

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

  // Filterable lists (dashboard phone destinations): an input with data-filter-list="<id>" hides the entries of
  // that element whose data-filter-text does not contain what is typed. Without this script every entry shows.
  document.querySelectorAll("input[data-filter-list]").forEach(function (input) {
    var list = document.getElementById(input.getAttribute("data-filter-list"));
    if (!list) return;
    var entries = list.querySelectorAll("[data-filter-text]");
    // Enter in the filter box filters; it does not submit the form around it.
    input.addEventListener("keydown", function (ev) { if (ev.key === "Enter") ev.preventDefault(); });
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      entries.forEach(function (e) {
        e.hidden = q !== "" && e.getAttribute("data-filter-text").toLowerCase().indexOf(q) === -1;
      });
    });
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
