/* ispsupport supervisors' dashboard: live figures over the console's WebSocket.
 *
 * The page subscribes to the "dashboard" topic (the server checks the role). Notices carry no
 * figures: the page refetches the server-rendered partial (the same template as the first
 * load, charts drawn as SVG on the server), at most once per interval the server announces,
 * and once more an interval after each notice, because the server stays quiet for the rest
 * of an interval after a notice. A fetch every minute keeps the waiting times growing.
 * No framework, no inline scripts (CSP without 'unsafe-inline').
 */
(function () {
  "use strict";

  const body = document.body;
  if (!body.classList.contains("dashboard-page")) return;

  // Words this script writes, rendered by the template in the page's language (#console-text).
  const words = (document.getElementById("console-text") || { dataset: {} }).dataset;
  function text(key, fallback) { return words[key] || fallback; }
  const box = document.getElementById("dashboard");
  if (!box) return;
  const url = box.dataset.liveUrl;

  const state = {
    intervalMs: 2000,
    lastFetch: Date.now(),
    pending: null,
    trailing: null,
    inflight: false,
    socket: null,
    retries: 0,
    heartbeat: null,
    heartbeatSeconds: 20,
  };

  function setConn(kind, label) {
    const conn = document.getElementById("conn");
    if (!conn) return;
    conn.dataset.state = kind;
    const text = conn.querySelector(".conn-label");
    if (text) text.textContent = label;
  }

  async function refresh() {
    state.pending = null;
    if (state.inflight) {
      schedule(state.intervalMs);
      return;
    }
    state.inflight = true;
    state.lastFetch = Date.now();
    try {
      const response = await fetch(url, {
        headers: { "X-Requested-With": "fetch" },
        credentials: "same-origin",
      });
      if (response.redirected || response.status === 403) {
        window.location.reload(); // logged out or no longer a supervisor
        return;
      }
      if (response.ok) box.innerHTML = await response.text();
    } catch (_) {
      // offline for a moment: the next notice or the minute tick tries again
    } finally {
      state.inflight = false;
    }
  }

  function schedule(delay) {
    if (state.pending) return;
    state.pending = setTimeout(refresh, Math.max(0, delay));
  }

  function onNotice() {
    const since = Date.now() - state.lastFetch;
    schedule(since >= state.intervalMs ? 0 : state.intervalMs - since);
    clearTimeout(state.trailing);
    state.trailing = setTimeout(() => schedule(0), state.intervalMs + 500);
  }

  function send(payload) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify(payload));
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/console/`);
    state.socket = socket;
    setConn("connecting", text("connecting", "conectando…"));
    socket.addEventListener("open", () => {
      const reconnected = state.retries > 0;
      state.retries = 0;
      setConn("open", text("live", "ao vivo"));
      send({ type: "subscribe", topic: "dashboard" });
      send({ type: "heartbeat", state: "online" });
      if (!state.heartbeat) {
        state.heartbeat = setInterval(
          () => send({ type: "heartbeat", state: "online" }),
          state.heartbeatSeconds * 1000
        );
      }
      if (reconnected) schedule(0); // notices were missed while away
    });
    socket.addEventListener("message", (e) => {
      let message;
      try { message = JSON.parse(e.data); } catch (_) { return; }
      if (message.type === "ready" && message.heartbeat) {
        state.heartbeatSeconds = message.heartbeat;
      } else if (message.type === "subscribed" && message.interval) {
        state.intervalMs = message.interval * 1000;
      } else if (message.type === "error" && message.code === "forbidden") {
        setConn("closed", text("forbidden", "sem acesso"));
      } else if (message.type === "event" && message.kind === "dashboard.changed") {
        onNotice();
      }
    });
    socket.addEventListener("close", (e) => {
      clearInterval(state.heartbeat);
      state.heartbeat = null;
      if (e.code === 4403) {
        setConn("closed", text("forbidden", "sem acesso"));
        return;
      }
      if (e.code === 4401) {
        // this log-in was ended (by the user elsewhere, an admin, a password change)
        setConn("closed", text("ended", "sessão encerrada"));
        return;
      }
      setConn("closed", text("reconnecting", "reconectando…"));
      const delay = Math.min(15000, 500 * 2 ** state.retries) + Math.random() * 500;
      state.retries += 1;
      setTimeout(connect, delay);
    });
  }

  connect();
  setInterval(() => schedule(0), 60000);
})();
