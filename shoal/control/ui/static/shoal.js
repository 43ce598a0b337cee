// shoal web UI: live fragments and streams without a framework or a CDN.
// Elements with data-refresh="URL" are re-fetched every data-interval ms (default 2000) and
// their contents replaced; elements with data-stream="URL" append server-sent events.
(function () {
  "use strict";

  function refresh(el) {
    if (document.hidden) return;
    fetch(el.dataset.refresh, { credentials: "same-origin", headers: { "X-Fragment": "1" } })
      .then(function (r) {
        if (r.status === 401) { window.location = "/login"; return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined && el.innerHTML !== html) {
          var focused = document.activeElement && el.contains(document.activeElement);
          if (!focused) el.innerHTML = html;
        }
      })
      .catch(function () { /* the next tick tries again */ });
  }

  function startRefresh(el) {
    var every = parseInt(el.dataset.interval || "2000", 10);
    setInterval(function () { refresh(el); }, every);
  }

  function startStream(el) {
    var source = new EventSource(el.dataset.stream, { withCredentials: true });
    var max = parseInt(el.dataset.max || "200", 10);
    source.onmessage = function (msg) {
      var line = document.createElement(el.dataset.item || "li");
      line.textContent = formatEvent(msg.data);
      if (el.dataset.order === "append") { el.appendChild(line); } else { el.insertBefore(line, el.firstChild); }
      while (el.children.length > max) {
        el.removeChild(el.dataset.order === "append" ? el.firstChild : el.lastChild);
      }
      if (el.dataset.order === "append") el.scrollTop = el.scrollHeight;
    };
  }

  function formatEvent(data) {
    try {
      var ev = JSON.parse(data);
      if (ev && ev.kind) {
        var when = new Date(ev.time * 1000).toLocaleTimeString();
        return when + "  " + ev.kind + "  " + ev.subject + "  " + ev.message;
      }
    } catch (e) { /* plain text line */ }
    return data;
  }

  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.dataset.confirm)) e.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(startRefresh);
    document.querySelectorAll("[data-stream]").forEach(startStream);
    confirmForms();
  });
})();
