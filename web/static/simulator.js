/* Puente chat simulator: a phone-like page that talks to /simulator/api/messages.
 * Plain JS, no build step. Polls for new messages; sends with a client-generated id so that a
 * repeated submit (double click, network retry) is stored once. A photo or PDF picked with the
 * 📎 button goes at once as its own message (multipart), with any typed text as its caption. */
(function () {
  "use strict";

  var API = "/simulator/api/messages";
  var POLL_MS = 700;
  var TYPING_TIMEOUT_MS = 20000;
  var CHANNEL_NAMES = { sms: "SMS", whatsapp: "WhatsApp", telegram: "Telegram" };
  var MAX_FILE_BYTES = 20 * 1024 * 1024;  // obviously too big for a chat app; the server decides the rest
  var NOTE_MS = 10000;
  var TEXT = {
    tooLarge: "El archivo pesa más de 20 MB; elija uno más pequeño. · The file is larger than 20 MB; please choose a smaller one.",
    refused: "El servidor no aceptó el archivo (demasiado grande). · The server refused the file (too large).",
    failed: "No se pudo enviar el mensaje · The message could not be sent",
    needNumber: "Escriba un número primero · Type a number first",
    photo: "Foto · Photo",
    file: "Archivo · File"
  };

  var el = {
    number: document.getElementById("sim-number"),
    otherWrap: document.getElementById("sim-other-wrap"),
    other: document.getElementById("sim-other"),
    channel: document.getElementById("sim-channel"),
    phone: document.getElementById("phone"),
    badge: document.getElementById("sim-badge"),
    screen: document.getElementById("sim-screen"),
    list: document.getElementById("sim-messages"),
    empty: document.getElementById("sim-empty"),
    typing: document.getElementById("sim-typing"),
    composer: document.getElementById("sim-composer"),
    input: document.getElementById("sim-input"),
    send: document.getElementById("sim-send"),
    attach: document.getElementById("sim-attach"),
    file: document.getElementById("sim-file"),
    attachNote: document.getElementById("sim-attach-note"),
    status: document.getElementById("sim-status")
  };

  var state = {
    generation: 0,      // bumped when the conversation changes; stale responses are dropped
    lastId: 0,          // highest message id shown
    polling: false,     // a poll request is in flight
    timer: null,
    awaiting: false,    // waiting for the assistant's reply (typing indicator)
    awaitingSince: 0,
    lastOutbound: null, // the newest assistant bubble (its choices are the active ones)
    noteTimer: null
  };

  // -- helpers -----------------------------------------------------------------------------
  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      try { return "sim-" + window.crypto.randomUUID(); } catch (e) { /* insecure context */ }
    }
    var s = "sim-";
    for (var i = 0; i < 4; i++) s += Math.random().toString(16).slice(2, 10);
    return s + "-" + Date.now().toString(16);
  }

  function currentAddress() {
    if (el.number.value === "__other__") return el.other.value.trim();
    return el.number.value;
  }

  function currentChannel() { return el.channel.value; }

  function parseTime(iso) {
    if (!iso) return new Date();
    // Timestamps without an offset are UTC (SQLite stores naive UTC datetimes).
    var hasZone = /([zZ]|[+-]\d\d:?\d\d)$/.test(iso);
    var d = new Date(hasZone ? iso : iso + "Z");
    return isNaN(d.getTime()) ? new Date() : d;
  }

  function formatTime(d) {
    try {
      return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    } catch (e) {
      return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
    }
  }

  function setStatus(text) { el.status.textContent = text || ""; }

  // A note about the attachment that stays until read (the status line is cleared by each poll).
  function showAttachNote(text) {
    clearTimeout(state.noteTimer);
    el.attachNote.textContent = text;
    el.attachNote.hidden = false;
    state.noteTimer = setTimeout(hideAttachNote, NOTE_MS);
  }

  function hideAttachNote() {
    clearTimeout(state.noteTimer);
    el.attachNote.hidden = true;
    el.attachNote.textContent = "";
  }

  // "📎 acta.jpg" for each attachment (providers may not pass the file's name: then its kind),
  // then the text or caption.
  function fileLabel(f) {
    var type = (f && f.content_type) || "";
    var name = (f && f.filename) || (type === "application/pdf" ? "PDF" : type.indexOf("image/") === 0 ? TEXT.photo : TEXT.file);
    return "📎 " + name;
  }

  function messageText(m) {
    var lines = (m.media || []).map(fileLabel);
    if (m.text) lines.push(m.text);
    return lines.join("\n");
  }

  function nearBottom() {
    var s = el.screen;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  function scrollToBottom() { el.screen.scrollTop = el.screen.scrollHeight; }

  function updateEmpty() { el.empty.hidden = el.list.children.length > 0; }

  // -- rendering ---------------------------------------------------------------------------
  function bubble(direction, text, when) {
    var li = document.createElement("li");
    li.className = "msg " + (direction === "in" ? "msg-client" : "msg-assistant");
    var b = document.createElement("div");
    b.className = "bubble";
    var p = document.createElement("p");
    p.className = "bubble-text";
    p.textContent = text;
    b.appendChild(p);
    var meta = document.createElement("div");
    meta.className = "bubble-meta";
    var t = document.createElement("time");
    t.dateTime = when.toISOString();
    t.textContent = formatTime(when);
    meta.appendChild(t);
    b.appendChild(meta);
    li.appendChild(b);
    var who = document.createElement("span");
    who.className = "visually-hidden";
    who.textContent = direction === "in" ? "Cliente · Client: " : "Asistente · Assistant: ";
    b.insertBefore(who, p);
    return li;
  }

  function renderChoices(li, choices) {
    var group = document.createElement("div");
    group.className = "choices";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Opciones · Options");
    choices.forEach(function (c, i) {
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = "choice";
      btn.dataset.value = c.value;
      btn.dataset.label = c.label;
      btn.textContent = (i + 1) + ". " + c.label;
      btn.addEventListener("click", function () {
        if (btn.disabled) return;
        disableChoices(group);
        btn.classList.add("choice-picked");
        send({ text: c.label, choice: c.value });
      });
      group.appendChild(btn);
    });
    li.appendChild(group);
  }

  function disableChoices(group) {
    Array.prototype.forEach.call(group.querySelectorAll("button"), function (b) { b.disabled = true; });
    group.classList.add("choices-used");
  }

  function deactivateOlderChoices() {
    Array.prototype.forEach.call(el.list.querySelectorAll(".choices"), function (g) {
      if (!state.lastOutbound || !state.lastOutbound.contains(g)) disableChoices(g);
    });
  }

  // A sent bubble is confirmed by the id the page gave it (the server may store the text
  // differently: a typed date of birth is kept only as "[date of birth]").
  function findPending(providerId) {
    var items = el.list.querySelectorAll("li.msg-pending");
    for (var i = 0; i < items.length; i++) {
      if (items[i].dataset.pid === providerId) return items[i];
    }
    return null;
  }

  function addServerMessage(m) {
    var when = parseTime(m.at);
    var li;
    if (m.direction === "in") {
      li = m.provider_id ? findPending(m.provider_id) : null;
      if (li) {
        li.classList.remove("msg-pending", "msg-failed");
        li.removeAttribute("data-pid");
        var t = li.querySelector("time");
        t.dateTime = when.toISOString();
        t.textContent = formatTime(when);
        // keep server order: move it to the end of what is confirmed
        el.list.appendChild(li);
      } else {
        li = bubble("in", messageText(m), when);
        if (m.media && m.media.length) li.classList.add("msg-file");
        el.list.appendChild(li);
      }
    } else {
      li = bubble("out", m.text || "", when);
      if (m.choices && m.choices.length) renderChoices(li, m.choices);
      el.list.appendChild(li);
      state.lastOutbound = li;
      setAwaiting(false);
    }
    li.dataset.id = String(m.id);
    // pending (unconfirmed) bubbles stay last
    Array.prototype.forEach.call(el.list.querySelectorAll("li.msg-pending"), function (p) { el.list.appendChild(p); });
  }

  function setAwaiting(on) {
    state.awaiting = on;
    state.awaitingSince = on ? Date.now() : 0;
    el.typing.hidden = !on;
    el.phone.setAttribute("aria-busy", on ? "true" : "false");
    if (on) scrollToBottom();
  }

  // -- polling -----------------------------------------------------------------------------
  function schedule(delay) {
    clearTimeout(state.timer);
    // a hidden tab polls slowly; it catches up at once when shown again
    if (document.hidden && delay > 0) delay = Math.max(delay, 5000);
    state.timer = setTimeout(poll, delay);
  }
  document.addEventListener("visibilitychange", function () { if (!document.hidden) schedule(0); });

  function poll() {
    var address = currentAddress(), channel = currentChannel();
    if (!address) { schedule(POLL_MS); return; }
    if (state.polling) { schedule(POLL_MS); return; }
    var gen = state.generation;
    state.polling = true;
    var url = API + "?channel=" + encodeURIComponent(channel) + "&address=" + encodeURIComponent(address) +
      "&after=" + state.lastId;
    fetch(url, { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        if (gen !== state.generation) return;
        var msgs = (data && data.messages) || [];
        var stick = nearBottom() || state.lastId === 0;
        var added = false;
        msgs.forEach(function (m) {
          if (m.id <= state.lastId) return;
          addServerMessage(m);
          state.lastId = m.id;
          added = true;
        });
        if (added) {
          deactivateOlderChoices();
          updateEmpty();
          if (stick) scrollToBottom();
        }
        if (state.awaiting && Date.now() - state.awaitingSince > TYPING_TIMEOUT_MS) setAwaiting(false);
        setStatus("");
      })
      .catch(function () {
        if (gen === state.generation) setStatus("Sin conexión con el servidor; reintentando… · Server unreachable; retrying…");
      })
      .then(function () {
        if (gen === state.generation) state.polling = false;
        schedule(POLL_MS);
      });
  }

  function resetConversation() {
    state.generation += 1;
    state.polling = false;
    state.lastId = 0;
    state.lastOutbound = null;
    el.list.textContent = "";
    setAwaiting(false);
    setStatus("");
    hideAttachNote();
    updateEmpty();
    var channel = currentChannel();
    el.phone.dataset.channel = channel;
    el.badge.textContent = CHANNEL_NAMES[channel] || channel;
    rememberSelection();
    schedule(0);
  }

  // -- sending -----------------------------------------------------------------------------
  // `body` is an object (sent as JSON) or a FormData with the file (the browser sets its boundary).
  function post(body, attempt) {
    var isForm = typeof FormData !== "undefined" && body instanceof FormData;
    var headers = { "Accept": "application/json" };
    if (!isForm) headers["Content-Type"] = "application/json";
    return fetch(API, {
      method: "POST",
      headers: headers,
      body: isForm ? body : JSON.stringify(body)
    }).then(function (r) {
      if (r.status >= 500 && attempt < 3) throw new Error("retry");
      if (!r.ok) { var e = new Error("HTTP " + r.status); e.final = true; e.status = r.status; throw e; }
      return r.json();
    }).catch(function (err) {
      // the same id makes a retry safe: the server stores the message once
      if (!err.final && attempt < 3) {
        return new Promise(function (res) { setTimeout(res, 500 * (attempt + 1)); })
          .then(function () { return post(body, attempt + 1); });
      }
      throw err;
    });
  }

  function needAddress(address) {
    if (address) return true;
    setStatus(TEXT.needNumber);
    el.other.focus();
    return false;
  }

  function send(opts) {
    var address = currentAddress(), channel = currentChannel();
    var text = (opts.text || "").trim();
    if (!needAddress(address)) return;
    if (!text && !opts.choice) return;
    var body = { channel: channel, address: address, text: text, choice: opts.choice || null, id: newId() };
    deliver(body, body.id, text, false);
  }

  // Shows the client's bubble as pending (confirmed by its id once the server has it) and posts it.
  function deliver(body, id, shown, isFile) {
    var gen = state.generation;
    var li = bubble("in", shown, new Date());
    li.classList.add("msg-pending");
    if (isFile) li.classList.add("msg-file");
    li.dataset.pid = id;
    el.list.appendChild(li);
    updateEmpty();
    scrollToBottom();
    setAwaiting(true);

    post(body, 0).then(function () {
      if (gen !== state.generation) return;
      setStatus("");
      schedule(0);
    }).catch(function (err) {
      if (gen !== state.generation) return;
      li.classList.remove("msg-pending");
      li.classList.add("msg-failed");
      setAwaiting(false);
      if (err && err.status === 413) showAttachNote(TEXT.refused);
      else setStatus(TEXT.failed);
    });
  }

  // A picked photo or PDF goes right away, as a phone's chat app sends it; typed text is its caption.
  function sendFile(file) {
    var address = currentAddress();
    hideAttachNote();
    if (!needAddress(address)) return;
    if (file.size > MAX_FILE_BYTES) {
      showAttachNote(TEXT.tooLarge);
      return;
    }
    var caption = el.input.value.trim();
    var id = newId();
    var form = new FormData();
    form.append("channel", currentChannel());
    form.append("address", address);
    form.append("text", caption);
    form.append("id", id);
    form.append("file", file, file.name);
    if (caption) {
      el.input.value = "";
      autosize();
    }
    deliver(form, id, "📎 " + file.name + (caption ? "\n" + caption : ""), true);
  }

  function sendTyped() {
    var text = el.input.value;
    if (!text.trim()) return;
    el.input.value = "";
    autosize();
    send({ text: text });
    el.input.focus();
  }

  function autosize() {
    el.input.style.height = "auto";
    el.input.style.height = Math.min(el.input.scrollHeight, 120) + "px";
  }

  // -- selection ---------------------------------------------------------------------------
  function rememberSelection() {
    try {
      var params = new URLSearchParams(window.location.search);
      var address = currentAddress();
      if (address) params.set("address", address); else params.delete("address");
      params.set("channel", currentChannel());
      history.replaceState(null, "", window.location.pathname + "?" + params.toString());
    } catch (e) { /* old browser: nothing to remember */ }
  }

  function restoreSelection() {
    var params;
    try { params = new URLSearchParams(window.location.search); } catch (e) { return; }
    var channel = params.get("channel"), address = params.get("address");
    if (channel && Array.prototype.some.call(el.channel.options, function (o) { return o.value === channel; })) {
      el.channel.value = channel;
    }
    function known(a) {
      return Array.prototype.some.call(el.number.options, function (o) { return o.value === a; });
    }
    address = (address || "").trim();
    // an unencoded "+" in a hand-typed link arrives as a space
    if (/^\d/.test(address) && !known(address) && known("+" + address)) address = "+" + address;
    if (address) {
      if (known(address)) {
        el.number.value = address;
      } else {
        el.number.value = "__other__";
        el.other.value = address;
      }
    }
    showOther();
  }

  function showOther() {
    var other = el.number.value === "__other__";
    el.otherWrap.hidden = !other;
  }

  // -- wiring ------------------------------------------------------------------------------
  el.number.addEventListener("change", function () {
    showOther();
    if (el.number.value === "__other__") el.other.focus();
    resetConversation();
  });

  var otherTimer = null;
  el.other.addEventListener("input", function () {
    clearTimeout(otherTimer);
    otherTimer = setTimeout(resetConversation, 400);
  });
  el.other.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") { ev.preventDefault(); clearTimeout(otherTimer); resetConversation(); el.input.focus(); }
  });

  el.channel.addEventListener("change", resetConversation);

  el.composer.addEventListener("submit", function (ev) {
    ev.preventDefault();
    sendTyped();
  });

  el.input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      sendTyped();
    }
  });
  el.input.addEventListener("input", autosize);

  el.attach.addEventListener("click", function () { el.file.click(); });
  el.file.addEventListener("change", function () {
    var file = el.file.files && el.file.files[0];
    el.file.value = "";  // picking the same file again sends it again
    if (file) sendFile(file);
  });

  restoreSelection();
  resetConversation();
})();
