// The customer's phone of the WhatsApp simulator: send as the customer, poll the thread.
// Plain JS, no dependencies; every text shown comes from the server (pt-BR, translated).
(function () {
  "use strict";
  var config = document.getElementById("sim-config").dataset;
  var t = JSON.parse(document.getElementById("sim-strings").textContent);
  var el = function (id) { return document.getElementById(id); };
  var thread = el("sim-thread");
  var version = "";
  var pollTimer = null;

  // Remember who "I" am between reloads.
  ["sim-name", "sim-wa-id", "sim-number"].forEach(function (id) {
    var saved = localStorage.getItem(id);
    if (saved) { el(id).value = saved; }
    el(id).addEventListener("change", function () {
      localStorage.setItem(id, el(id).value);
      version = "";
      refresh();
    });
  });

  function identity() {
    return {
      name: el("sim-name").value.trim(),
      wa_id: el("sim-wa-id").value.trim(),
      phone_number_id: el("sim-number").value
    };
  }

  function showError(message) {
    var box = el("sim-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function post(data, file) {
    var body, headers = { "X-CSRFToken": config.csrf };
    if (file) {
      body = new FormData();
      Object.keys(data).forEach(function (k) { body.append(k, data[k]); });
      body.append("file", file);
    } else {
      body = JSON.stringify(data);
      headers["Content-Type"] = "application/json";
    }
    return fetch(config.sendUrl, { method: "POST", headers: headers, body: body, credentials: "same-origin" })
      .then(function (response) {
        if (response.ok) { showError(""); refresh(); return; }
        return response.json().then(function (payload) {
          showError(payload.error || t.error.replace("%s", response.status));
        }, function () { showError(t.error.replace("%s", response.status)); });
      })
      .catch(function () { showError(t.error.replace("%s", "—")); });
  }

  function send(extra, file) {
    var data = identity();
    Object.keys(extra).forEach(function (k) { data[k] = extra[k]; });
    return post(data, file);
  }

  el("sim-compose").addEventListener("submit", function (event) {
    event.preventDefault();
    var text = el("sim-text").value;
    var file = el("sim-file").files[0];
    if (file) {
      send({ kind: "media", text: text }, file);
      el("sim-file").value = "";
    } else if (text.trim()) {
      send({ kind: "text", text: text });
    }
    el("sim-text").value = "";
  });

  el("sim-clear").addEventListener("click", function () {
    var body = new URLSearchParams({ wa_id: identity().wa_id });
    fetch(config.resetUrl, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": config.csrf }
    }).then(function () { version = ""; refresh(); });
  });

  function ticks(message) {
    var span = document.createElement("span");
    span.className = "tick tick-" + message.status;
    var symbols = { pending: "🕓", accepted: "🕓", sent: "✓", delivered: "✓✓", read: "✓✓", failed: "⚠" };
    span.textContent = symbols[message.status] || "";
    span.title = t[message.status] || message.status;
    if (message.status === "failed" && message.error_code) { span.title += " (" + message.error_code + ")"; }
    return span;
  }

  function button(label, onClick) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "bubble-button";
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  }

  function render(message) {
    var li = document.createElement("li");
    li.className = "bubble bubble-" + (message.dir === "in" ? "me" : "them");
    li.dataset.wamid = message.wamid;
    if (message.reply_to) {
      var quote = document.createElement("div");
      quote.className = "bubble-quote";
      var original = thread.querySelector('[data-wamid="' + CSS.escape(message.reply_to) + '"] .bubble-text');
      quote.textContent = "↩ " + (original ? original.textContent.slice(0, 80) : t.reply);
      li.appendChild(quote);
    }
    if (message.template) {
      var tag = document.createElement("div");
      tag.className = "bubble-tag";
      tag.textContent = t.template + ": " + message.template;
      li.appendChild(tag);
    }
    if (message.header) {
      var header = document.createElement("strong");
      header.className = "bubble-header";
      header.textContent = message.header;
      li.appendChild(header);
    }
    if (message.media) {
      var media = document.createElement("div");
      media.className = "bubble-tag";
      media.textContent = "[" + (message.media.filename || message.media.kind || t.media) + "]";
      li.appendChild(media);
    }
    var text = document.createElement("div");
    text.className = "bubble-text";
    text.textContent = message.text || "";
    li.appendChild(text);
    if (message.footer) {
      var footer = document.createElement("small");
      footer.className = "bubble-footer";
      footer.textContent = message.footer;
      li.appendChild(footer);
    }
    if (message.dir === "out" && message.buttons && message.buttons.length) {
      var row = document.createElement("div");
      row.className = "bubble-buttons";
      message.buttons.forEach(function (b) {
        row.appendChild(button(b.title, function () {
          if (message.template) {
            send({ kind: "quick_reply", reply_id: b.payload || b.title, reply_title: b.title, context: message.wamid });
          } else {
            send({ kind: "button_reply", reply_id: b.id, reply_title: b.title, context: message.wamid });
          }
        }));
      });
      li.appendChild(row);
    }
    if (message.dir === "out" && message.list) {
      var details = document.createElement("details");
      details.className = "bubble-list";
      var summary = document.createElement("summary");
      summary.textContent = message.list.button || t.openList;
      details.appendChild(summary);
      (message.list.sections || []).forEach(function (section) {
        if (section.title) {
          var h = document.createElement("div");
          h.className = "bubble-list-title";
          h.textContent = section.title;
          details.appendChild(h);
        }
        (section.rows || []).forEach(function (r) {
          var b = button(r.title, function () {
            send({ kind: "list_reply", reply_id: r.id, reply_title: r.title, description: r.description || "", context: message.wamid });
          });
          if (r.description) { b.title = r.description; }
          details.appendChild(b);
        });
      });
      li.appendChild(details);
    }
    var meta = document.createElement("div");
    meta.className = "bubble-meta";
    meta.appendChild(document.createTextNode(message.time + " "));
    meta.appendChild(ticks(message));
    li.appendChild(meta);
    return li;
  }

  function refresh() {
    var me = identity();
    if (!/^\d{10,15}$/.test(me.wa_id)) { return; }
    var seen = document.visibilityState === "visible" ? "1" : "0";
    var url = config.threadUrl + "?wa_id=" + encodeURIComponent(me.wa_id) + "&seen=" + seen + "&v=" + version;
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (response.status !== 200) { return; }
      return response.json().then(function (data) {
        version = String(data.version);
        var atBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
        thread.textContent = "";
        if (!data.messages.length) {
          var empty = document.createElement("li");
          empty.className = "phone-empty";
          empty.textContent = t.emptyThread;
          thread.appendChild(empty);
        }
        data.messages.forEach(function (m) { thread.appendChild(render(m)); });
        if (atBottom) { thread.scrollTop = thread.scrollHeight; }
        var hook = data.last_webhook;
        el("sim-webhook-status").textContent = hook
          ? t.lastWebhook + " (" + (t[hook.label] || hook.label) + "): " + (hook.status || t.unreachable)
          : "";
      });
    }).catch(function () { /* the server restarts in development; try again on the next tick */ });
  }

  function schedule() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(function () { Promise.resolve(refresh()).then(schedule, schedule); }, 1200);
  }
  document.addEventListener("visibilitychange", function () { refresh(); });
  el("sim-business").textContent = " · " + el("sim-number").selectedOptions[0].textContent;
  el("sim-number").addEventListener("change", function () {
    el("sim-business").textContent = " · " + el("sim-number").selectedOptions[0].textContent;
  });
  refresh();
  schedule();
})();
