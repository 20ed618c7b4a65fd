/* Postback tracking snippet: <script async src="https://HOST/__cc/t.js" data-site="SITE_ID"></script> */
(function () {
  try {
    var s = document.currentScript || document.querySelector("script[data-site][src*='/__cc/t.js']");
    if (!s) return;
    var site = s.getAttribute("data-site");
    var base = new URL(s.src, location.href).origin;
    var EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
    var vid = (document.cookie.match(/(?:^|; )_pb_vid=([A-Za-z0-9_-]{8,64})/) || [])[1];
    if (!vid) {
      vid = window.crypto && crypto.randomUUID ? crypto.randomUUID()
        : Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
      document.cookie = "_pb_vid=" + vid + "; path=/; max-age=31536000; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
    }
    var send = function (path, data) {
      data.site = site;
      data.vid = vid;
      var body = JSON.stringify(data);
      try {
        if (navigator.sendBeacon && navigator.sendBeacon(base + path, new Blob([body], { type: "text/plain" }))) return;
      } catch (e) {}
      try {
        fetch(base + path, { method: "POST", body: body, keepalive: true, mode: "cors", credentials: "omit",
          headers: { "Content-Type": "text/plain" } })["catch"](function () {});
      } catch (e) {}
    };
    var identify = function (email) {
      if (typeof email !== "string") return;
      email = email.trim();
      if (EMAIL.test(email)) send("/__cc/identify", { email: email });
    };
    // A tracking-link click (/__cc/go/SLUG) arrives with pb_click: report it with the landing so
    // the click joins this visitor, and drop it from the address bar so a reload is a plain visit.
    var click;
    try {
      var q = new URLSearchParams(location.search);
      click = q.get("pb_click") || undefined;
      if (click && history.replaceState) {
        q["delete"]("pb_click");
        var qs = q.toString();
        history.replaceState(history.state, "", location.pathname + (qs ? "?" + qs : "") + location.hash);
      }
    } catch (x) {}
    send("/__cc/collect", { url: location.href, referrer: document.referrer || "", webdriver: !!navigator.webdriver, click: click });
    document.addEventListener("submit", function (e) {
      try {
        var f = e.target, els = (f && f.elements) || [];
        for (var i = 0; i < els.length; i++) {
          var el = els[i];
          if (el && (el.type === "email" || /email/i.test(el.name || "")) && EMAIL.test((el.value || "").trim())) {
            identify(el.value);
            return;
          }
        }
      } catch (x) {}
    }, true);
    window.postback = window.postback || {};
    window.postback.identify = function (email) { try { identify(email); } catch (x) {} };
  } catch (e) {}
})();
