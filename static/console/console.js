/* ispsupport console: live updates over one WebSocket, partial re-rendering, shortcuts.
 *
 * No framework, no inline scripts (CSP without 'unsafe-inline'). Every update fetches the same
 * partial template the page was first rendered with; events carry ids only. After a reconnect
 * the socket asks for what it missed ("resume" from the last sequence seen).
 */
(function () {
  "use strict";

  const body = document.body;
  if (!body.classList.contains("console")) return;

  // Words this script writes, rendered by the template in the page's language (#console-text).
  const words = (document.getElementById("console-text") || { dataset: {} }).dataset;
  function text(key, fallback) { return words[key] || fallback; }

  const state = {
    userId: body.dataset.user,
    lastSeq: parseInt(body.dataset.seq || "0", 10) || 0,
    seen: new Set(),
    queue: body.dataset.queue || "waiting",
    search: body.dataset.search || "",
    conversationId: body.dataset.conversation ? parseInt(body.dataset.conversation, 10) : null,
    supervisor: body.dataset.supervisor === "1",
    socket: null,
    retries: 0,
    heartbeatTimer: null,
    heartbeatSeconds: 20,
    manualPresence: sessionStorage.getItem("console-presence") || "online",
    lastActivity: Date.now(),
    counts: {},
    typingSentAt: 0,
  };

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  // --- helpers -----------------------------------------------------------------------------

  function csrfToken() {
    const input = $("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function getHTML(url) {
    const response = await fetch(url, {
      headers: { "X-Requested-With": "fetch" },
      credentials: "same-origin",
    });
    return response;
  }

  function fragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content;
  }

  function toast(text, isError) {
    const box = $("#toast");
    if (!box) return;
    box.textContent = text;
    box.classList.toggle("error", !!isError);
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, isError ? 6000 : 2500);
  }

  function debounce(fn, ms) {
    let timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  // --- connection --------------------------------------------------------------------------

  function setConn(kind, label) {
    const conn = $("#conn");
    if (!conn) return;
    conn.dataset.state = kind;
    const text = $(".conn-label", conn);
    if (text) text.textContent = label;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/console/`);
    state.socket = socket;
    setConn("connecting", text("connecting", "conectando…"));
    socket.addEventListener("open", () => {
      state.retries = 0;
      setConn("open", text("live", "ao vivo"));
      send({ type: "resume", since: state.lastSeq });
      sendHeartbeat();
    });
    socket.addEventListener("message", (e) => {
      let message;
      try { message = JSON.parse(e.data); } catch (_) { return; }
      onMessage(message);
    });
    socket.addEventListener("close", (e) => {
      clearInterval(state.heartbeatTimer);
      state.heartbeatTimer = null;
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

  function send(payload) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify(payload));
    }
  }

  function presenceState() {
    if (state.manualPresence === "away") return "away";
    const idle = Date.now() - state.lastActivity > 5 * 60 * 1000;
    return idle ? "away" : "online";
  }

  function sendHeartbeat() {
    send({ type: "heartbeat", state: presenceState() });
    if (!state.heartbeatTimer) {
      state.heartbeatTimer = setInterval(sendHeartbeat, state.heartbeatSeconds * 1000);
    }
  }

  function onMessage(message) {
    if (message.type === "ready") {
      if (message.heartbeat) state.heartbeatSeconds = message.heartbeat;
      return;
    }
    if (message.type === "catchup") {
      if (message.resync) { resyncAll(); return; }
      message.events.forEach(handleEvent);
      return;
    }
    if (message.type === "event") handleEvent(message);
  }

  // --- events ------------------------------------------------------------------------------

  function handleEvent(event) {
    if (event.seq) {
      if (state.seen.has(event.seq)) return;
      state.seen.add(event.seq);
      if (state.seen.size > 2000) {
        const oldest = Array.from(state.seen).sort((a, b) => a - b).slice(0, 1000);
        oldest.forEach((s) => state.seen.delete(s));
      }
      if (event.seq > state.lastSeq) state.lastSeq = event.seq;
    }
    const kind = event.kind;
    const data = event.data || {};
    if (kind === "typing") {
      if (event.conversation_id === state.conversationId) showTyping(data.name);
      return;
    }
    if (kind === "presence") {
      if (state.supervisor) refreshPresence();
      return;
    }
    if (kind.startsWith("conversation.") || kind === "message.new") {
      refreshList();
    }
    notifyIfNewWork(event);
    if (event.conversation_id !== state.conversationId) return;
    if (kind === "message.status") {
      refreshMessage(data.message_id);
    } else if (kind === "message.new" || kind === "note.new" || kind === "conversation.event") {
      refreshTimeline();
    } else if (kind.startsWith("conversation.") && kind !== "conversation.read") {
      refreshPanel();
      refreshTimeline();
    }
  }

  function notifyIfNewWork(event) {
    const data = event.data || {};
    const mine = data.assigned_agent_id === state.userId;
    let fresh = false;
    if (event.kind === "conversation.waiting" || (event.kind === "conversation.transferred" && data.state === "waiting")) fresh = true;
    if (event.kind === "message.new" && data.direction === "in" && mine) fresh = true;
    if (event.kind === "conversation.assigned" && mine && data.reason !== "claim") fresh = true;
    if (!fresh) return;
    if (document.hidden || event.conversation_id !== state.conversationId) playSound();
  }

  let audio = null;
  function playSound() {
    try {
      if (!audio) audio = new Audio(body.dataset.sound);
      audio.currentTime = 0;
      const played = audio.play();
      if (played && played.catch) played.catch(() => {});
    } catch (_) { /* autoplay blocked: the badge still shows */ }
  }

  function updateTitle() {
    const waiting = state.counts.waiting || 0;
    const unread = state.counts.mine_unread || 0;
    const total = waiting + unread;
    const base = document.title.replace(/^\(\d+\+?\)\s*/, "");
    document.title = total > 0 ? `(${total >= 100 ? "99+" : total}) ${base}` : base;
  }

  function applyCounts(header) {
    if (!header) return;
    header.split(",").forEach((pair) => {
      const [key, value] = pair.split("=");
      state.counts[key] = parseInt(value, 10) || 0;
      const badge = $(`.count[data-count="${key}"]`);
      if (badge) badge.textContent = state.counts[key] >= 100 ? "99+" : String(state.counts[key]);
    });
    updateTitle();
  }

  // --- partial refreshes -------------------------------------------------------------------

  const refreshList = debounce(async () => {
    const rows = $("#rows");
    if (!rows) return;
    const loaded = $$(".row", rows).length;
    const params = new URLSearchParams({ queue: state.queue, limit: String(Math.min(200, Math.max(50, loaded))) });
    if (state.search) params.set("s", state.search);
    const response = await getHTML(`${body.dataset.listUrl}?${params}`);
    if (!response.ok) return;
    const html = await response.text();
    const selected = $(".row.selected", rows);
    const selectedId = selected ? selected.dataset.id : null;
    const scroll = rows.scrollTop;
    rows.replaceChildren(fragment(html));
    rows.scrollTop = scroll;
    if (selectedId) {
      const again = $(`#row-${selectedId}`);
      if (again) again.classList.add("selected");
    }
    applyCounts(response.headers.get("X-Queue-Counts"));
    tickClocks();
  }, 150);

  const refreshPresence = debounce(async () => {
    const board = $("#presence-board");
    if (!board) return;
    const response = await getHTML(body.dataset.presenceUrl);
    if (response.ok) board.replaceChildren(fragment(await response.text()));
  }, 300);

  function conversationEl() { return $("#conversation"); }

  function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 60; }

  function scrollToBottom() {
    const timeline = $("#timeline");
    if (timeline) timeline.scrollTop = timeline.scrollHeight;
  }

  function newestItemTime() {
    const items = $$("#timeline [data-at]");
    let newest = "";
    items.forEach((el) => { if (el.dataset.at > newest) newest = el.dataset.at; });
    return newest;
  }

  const refreshTimeline = debounce(async () => {
    const conv = conversationEl();
    const timeline = $("#timeline");
    if (!conv || !timeline) return;
    const since = newestItemTime();
    const url = since ? `${conv.dataset.timelineUrl}?since=${encodeURIComponent(since)}` : conv.dataset.timelineUrl;
    const response = await getHTML(url);
    if (!response.ok) return;
    const stick = atBottom(timeline);
    const incoming = fragment(await response.text());
    let added = false;
    Array.from(incoming.children).forEach((el) => {
      if (!el.id || el.id === "earlier") return;
      const existing = document.getElementById(el.id);
      if (existing) existing.replaceWith(el);
      else { timeline.appendChild(el); added = true; }
    });
    if (stick) scrollToBottom();
    else if (added) { const jump = $("#jump-new"); if (jump) jump.hidden = false; }
  }, 100);

  async function refreshMessage(id) {
    if (!id) return;
    const existing = document.getElementById(`msg-${id}`);
    if (!existing) { refreshTimeline(); return; }
    const response = await getHTML(`/console/partials/message/${id}/`);
    if (response.status !== 200) return;
    const el = fragment(await response.text()).firstElementChild;
    if (el) existing.replaceWith(el);
  }

  const refreshPanel = debounce(async () => {
    const conv = conversationEl();
    if (!conv) return;
    const response = await getHTML(conv.dataset.panelUrl);
    if (!response.ok) return;
    const incoming = fragment(await response.text());
    const header = $("#conv-header", incoming);
    if (header) $("#conv-header").replaceWith(header);
    const reply = $("#conv-reply", incoming);
    const current = $("#conv-reply");
    if (reply && current && reply.dataset.mode !== current.dataset.mode) {
      current.replaceWith(reply);
      bindReply();
    }
    tickClocks();
  }, 100);

  function resyncAll() {
    refreshList();
    if (state.supervisor) refreshPresence();
    if (conversationEl()) {
      refreshPanel();
      refreshTimeline();
    }
  }

  let typingTimer = null;
  function showTyping(name) {
    const box = $("#typing");
    if (!box) return;
    box.textContent = text("typing", "{name} está digitando nesta conversa…").replace("{name}", name);
    box.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  // --- clocks: waiting time and 24-hour window ---------------------------------------------

  function formatElapsed(ms) {
    const minutes = Math.floor(ms / 60000);
    if (minutes < 1) return text("now", "agora");
    if (minutes < 60) return `${minutes} min`;
    const hours = Math.floor(minutes / 60);
    if (hours < 24) { const rest = minutes % 60; return rest ? `${hours} h ${String(rest).padStart(2, "0")}` : `${hours} h`; }
    return `${Math.floor(hours / 24)} d`;
  }

  function tickClocks() {
    const now = Date.now();
    $$("[data-since]").forEach((el) => {
      if (!el.dataset.since) return;
      el.textContent = formatElapsed(now - Date.parse(el.dataset.since));
    });
    $$("[data-expires]").forEach((el) => {
      if (!el.dataset.expires) return;
      const left = Date.parse(el.dataset.expires) - now;
      el.classList.remove("window-open", "window-ending", "window-closed");
      if (left <= 0) { el.textContent = text("windowClosed", "janela encerrada"); el.classList.add("window-closed"); return; }
      const h = Math.floor(left / 3600000);
      const m = Math.floor((left % 3600000) / 60000);
      el.textContent = `${h}h ${String(m).padStart(2, "0")}m`;
      el.classList.add(left < 3 * 3600000 ? "window-ending" : "window-open");
    });
  }

  // --- actions (forms posted with fetch; without JS they post normally) ----------------------

  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-async")) return;
    e.preventDefault();
    const button = form.querySelector("[type=submit]");
    if (button) button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-Requested-With": "fetch", "X-CSRFToken": csrfToken() },
        credentials: "same-origin",
      });
      let payload = {};
      try { payload = await response.json(); } catch (_) { /* not JSON */ }
      if (!response.ok) {
        toast(payload.message || text("failed", "Não foi possível concluir a ação."), true);
        return;
      }
      afterAction(form);
    } catch (_) {
      toast(text("offline", "Sem conexão com o servidor. Tente de novo."), true);
    } finally {
      if (button) button.disabled = false;
    }
  });

  function afterAction(form) {
    if (form.id === "reply-form") {
      form.reset();
      clearReplyTo();
      const name = $("#file-name"); if (name) name.textContent = "";
      scrollToBottom();
    } else if (form.id === "note-form") {
      form.reset();
    } else {
      const details = form.closest("details");
      if (details) details.open = false;
    }
    refreshPanel();
    refreshTimeline();
    refreshList();
  }

  document.addEventListener("change", (e) => {
    const target = e.target;
    if (target.closest && target.closest("form[data-autosubmit]")) {
      target.closest("form").requestSubmit();
    }
    if (target.id === "reply-file") {
      const name = $("#file-name");
      if (name) name.textContent = target.files.length ? target.files[0].name : "";
    }
    if (target.id === "my-presence") {
      state.manualPresence = target.value;
      sessionStorage.setItem("console-presence", target.value);
      sendHeartbeat();
    }
  });

  // --- reply box: reply-to, canned responses, emoji, typing --------------------------------

  function clearReplyTo() {
    const input = $("#reply-to");
    const quote = $("#reply-quote");
    if (input) input.value = "";
    if (quote) quote.hidden = true;
  }

  document.addEventListener("click", async (e) => {
    const target = e.target.closest("button, [data-goto]");
    if (!target) return;
    if (target.dataset.replyTo) {
      const input = $("#reply-to");
      const quote = $("#reply-quote");
      if (!input || !quote) return;
      input.value = target.dataset.replyTo;
      const msg = document.getElementById(`msg-${target.dataset.replyTo}`);
      const text = msg ? ($(".text", msg) || msg).textContent.trim() : "";
      $(".quote-text", quote).textContent = text.slice(0, 140) || "mensagem";
      quote.hidden = false;
      const textarea = $("#reply-text"); if (textarea) textarea.focus();
    } else if (target.hasAttribute("data-cancel-reply")) {
      clearReplyTo();
    } else if (target.dataset.emoji) {
      insertAtCursor($("#reply-text"), target.dataset.emoji);
    } else if (target.id === "emoji-toggle") {
      const panel = $("#emoji-panel");
      panel.hidden = !panel.hidden;
      target.setAttribute("aria-expanded", String(!panel.hidden));
    } else if (target.dataset.replyTab) {
      $$("[data-reply-tab]").forEach((tab) => {
        const active = tab === target;
        tab.classList.toggle("active", active);
        tab.setAttribute("aria-selected", String(active));
      });
      $$("[data-reply-pane]").forEach((pane) => { pane.hidden = pane.dataset.replyPane !== target.dataset.replyTab; });
      const field = target.dataset.replyTab === "note" ? $("#note-text") : $("#reply-text");
      if (field) field.focus();
    } else if (target.dataset.more) {
      loadMore(target);
    } else if (target.dataset.earlier) {
      loadEarlier(target);
    } else if (target.id === "jump-new") {
      scrollToBottom();
      target.hidden = true;
    } else if (target.dataset.goto) {
      const el = document.getElementById(target.dataset.goto);
      if (el) el.scrollIntoView({ block: "center", behavior: "smooth" });
    } else if (target.dataset.openDialog) {
      const dialog = document.getElementById(`dialog-${target.dataset.openDialog}`);
      if (dialog && dialog.showModal) dialog.showModal();
    }
  });

  function insertAtCursor(textarea, text) {
    if (!textarea) return;
    const start = textarea.selectionStart || 0;
    const end = textarea.selectionEnd || 0;
    textarea.value = textarea.value.slice(0, start) + text + textarea.value.slice(end);
    textarea.selectionStart = textarea.selectionEnd = start + text.length;
    textarea.focus();
  }

  async function loadMore(button) {
    const params = new URLSearchParams({ queue: state.queue, cursor: button.dataset.more });
    if (state.search) params.set("s", state.search);
    const response = await getHTML(`${body.dataset.listUrl}?${params}`);
    if (!response.ok) return;
    const li = button.closest("li");
    li.replaceWith(fragment(await response.text()));
    tickClocks();
  }

  async function loadEarlier(button) {
    const conv = conversationEl();
    const timeline = $("#timeline");
    const response = await getHTML(`${conv.dataset.timelineUrl}?before=${encodeURIComponent(button.dataset.earlier)}`);
    if (!response.ok) return;
    const before = timeline.scrollHeight;
    const holder = $("#earlier");
    const incoming = fragment(await response.text());
    Array.from(incoming.children).forEach((el) => {
      if (el.id && document.getElementById(el.id) && el.id !== "earlier") return;
      timeline.insertBefore(el, holder);
    });
    holder.remove();
    timeline.scrollTop += timeline.scrollHeight - before;
  }

  let canned = [];
  let cannedIndex = 0;

  function bindReply() {
    const data = $("#canned-data");
    canned = data ? JSON.parse(data.textContent) : [];
    const textarea = $("#reply-text");
    if (!textarea || textarea.dataset.bound) return;
    textarea.dataset.bound = "1";
    textarea.addEventListener("input", () => {
      updateCanned(textarea);
      const now = Date.now();
      if (state.conversationId && now - state.typingSentAt > 2500) {
        state.typingSentAt = now;
        send({ type: "typing", conversation: state.conversationId });
      }
    });
    textarea.addEventListener("keydown", (e) => {
      const menu = $("#canned-menu");
      const open = menu && !menu.hidden;
      if (open && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
        e.preventDefault();
        const items = $$("li", menu);
        cannedIndex = (cannedIndex + (e.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
        items.forEach((li, i) => li.setAttribute("aria-selected", String(i === cannedIndex)));
        return;
      }
      if (open && (e.key === "Enter" || e.key === "Tab")) {
        e.preventDefault();
        const item = $$("li", menu)[cannedIndex];
        if (item) applyCanned(textarea, item.dataset.index);
        return;
      }
      if (e.key === "Escape") {
        if (open) menu.hidden = true; else { clearReplyTo(); textarea.blur(); }
        return;
      }
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        textarea.form.requestSubmit();
      }
    });
  }

  function updateCanned(textarea) {
    const menu = $("#canned-menu");
    if (!menu) return;
    const value = textarea.value;
    if (!value.startsWith("/") || value.includes("\n") || !canned.length) { menu.hidden = true; return; }
    const term = value.slice(1).toLowerCase();
    const matches = canned
      .map((item, index) => ({ item, index }))
      .filter(({ item }) => item.shortcut.toLowerCase().includes(term) || item.title.toLowerCase().includes(term))
      .slice(0, 8);
    if (!matches.length) { menu.hidden = true; return; }
    cannedIndex = 0;
    menu.replaceChildren();
    matches.forEach(({ item, index }, i) => {
      const li = document.createElement("li");
      li.setAttribute("role", "option");
      li.dataset.index = String(index);
      li.setAttribute("aria-selected", String(i === 0));
      const sc = document.createElement("span"); sc.className = "sc"; sc.textContent = `/${item.shortcut}`;
      const title = document.createElement("span"); title.textContent = item.title;
      const text = document.createElement("span"); text.className = "body"; text.textContent = item.text;
      li.append(sc, title, text);
      li.addEventListener("mousedown", (e) => { e.preventDefault(); applyCanned(textarea, li.dataset.index); });
      menu.appendChild(li);
    });
    menu.hidden = false;
  }

  function applyCanned(textarea, index) {
    const item = canned[parseInt(index, 10)];
    if (!item) return;
    textarea.value = item.text;
    $("#canned-menu").hidden = true;
    textarea.focus();
    textarea.selectionStart = textarea.selectionEnd = textarea.value.length;
  }

  // --- keyboard shortcuts --------------------------------------------------------------------

  function typingInField(e) {
    const el = e.target;
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }

  function moveSelection(step) {
    const rows = $$("#rows .row");
    if (!rows.length) return;
    let index = rows.findIndex((r) => r.classList.contains("selected"));
    if (index < 0) index = rows.findIndex((r) => r.classList.contains("current"));
    rows.forEach((r) => r.classList.remove("selected"));
    index = Math.max(0, Math.min(rows.length - 1, index + step));
    rows[index].classList.add("selected");
    rows[index].scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", (e) => {
    state.lastActivity = Date.now();
    if (e.ctrlKey || e.metaKey || e.altKey || typingInField(e)) return;
    const queues = { 1: "waiting", 2: "mine", 3: "teams", 4: "all" };
    const open = (sel) => { const d = $(sel); if (d) { d.open = true; const f = $("select, textarea", d); if (f) f.focus(); } };
    switch (e.key) {
      case "j": moveSelection(1); break;
      case "k": moveSelection(-1); break;
      case "Enter":
      case "o": {
        const row = $("#rows .row.selected a");
        if (row) row.click();
        break;
      }
      case "1": case "2": case "3": case "4": {
        const tab = $(`.tab[data-queue="${queues[e.key]}"]`);
        if (tab) tab.click();
        break;
      }
      case "c": { const b = $("#claim-btn"); if (b) b.click(); break; }
      case "r": { const t = $("#reply-text"); if (t) { e.preventDefault(); t.focus(); } break; }
      case "n": {
        const tab = $('[data-reply-tab="note"]');
        if (tab) tab.click(); else { const t = $("#note-text"); if (t) { e.preventDefault(); t.focus(); } }
        break;
      }
      case "t": e.preventDefault(); open("#transfer-pop"); break;
      case "e": e.preventDefault(); open("#close-pop"); break;
      case "s": { const s = $("#search"); if (s) { e.preventDefault(); s.focus(); } break; }
      case "?": { const d = $("#dialog-shortcuts"); if (d && d.showModal) d.showModal(); break; }
      case "Escape": $$("details.pop[open]").forEach((d) => { d.open = false; }); break;
      default: break;
    }
  });

  ["mousemove", "click", "focus"].forEach((name) => {
    window.addEventListener(name, () => { state.lastActivity = Date.now(); }, { passive: true });
  });

  // --- boot ----------------------------------------------------------------------------------

  const picker = $("#my-presence");
  if (picker) picker.value = state.manualPresence;
  bindReply();
  tickClocks();
  setInterval(tickClocks, 30000);
  const timeline = $("#timeline");
  if (timeline) {
    scrollToBottom();
    timeline.addEventListener("scroll", () => {
      if (atBottom(timeline)) { const jump = $("#jump-new"); if (jump) jump.hidden = true; }
    }, { passive: true });
  }
  const current = $("#rows .row.current");
  if (current) current.scrollIntoView({ block: "nearest" });
  // Counts for the title badge: rendered with the page, then updated by every list refresh.
  const rowsList = $("#rows");
  if (rowsList && rowsList.dataset.counts) applyCounts(rowsList.dataset.counts);
  connect();
  window.ispConsole = { state, refreshList, refreshTimeline, refreshPanel };
})();
