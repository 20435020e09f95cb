// The chat page: plain HTML and JavaScript, no external resources.
#include "edgeq/server/chat-page.h"

namespace edgeq::server {

namespace {

constexpr char k_page[] = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgeq chat</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; flex-direction: column;
         height: 100vh; background: #fafafa; color: #222; }
  header { padding: 8px 16px; background: #223; color: #eee; display: flex; gap: 16px;
           align-items: baseline; }
  header b { font-size: 1.1em; }
  #speed, #status { font-size: 0.9em; color: #bbc; }
  #log { flex: 1; overflow-y: auto; padding: 16px; }
  .msg { max-width: 48em; margin: 8px 0; padding: 8px 12px; border-radius: 8px;
         white-space: pre-wrap; }
  .user { background: #dde7ff; margin-left: auto; }
  .assistant { background: #fff; border: 1px solid #ddd; }
  .error { background: #fee; border: 1px solid #c66; }
  form { display: flex; gap: 8px; padding: 12px 16px; border-top: 1px solid #ddd; }
  #input { flex: 1; font: inherit; padding: 8px; }
  #key { width: 10em; font: inherit; padding: 8px; }
</style>
</head>
<body>
<header><b>edgeq</b><span id="model">loading...</span><span id="speed"></span>
<span id="status">idle</span></header>
<div id="log"></div>
<form id="form">
  <input id="input" autocomplete="off" placeholder="Message">
  <input id="key" type="password" placeholder="API key (if any)">
  <button id="send">Send</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const history = [];
let modelId = "";
$("key").value = localStorage.getItem("edgeq-key") || "";

function headers() {
  const h = {"Content-Type": "application/json"};
  const key = $("key").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("log").appendChild(div);
  $("log").scrollTop = $("log").scrollHeight;
  return div;
}

const testMode = new URLSearchParams(location.search).get("test") === "1";

// In test mode (?test=1) requests are synchronous, so that the reply is on the page before
// the load event, where a headless browser's --dump-dom reads it; the reply goes through the
// same event parser as a streamed one.
function syncRequest(method, path, body) {
  const x = new XMLHttpRequest();
  x.open(method, path, false);
  for (const [k, v] of Object.entries(headers())) x.setRequestHeader(k, v);
  x.send(body);
  return {ok: x.status >= 200 && x.status < 300, status: x.status, text: x.responseText};
}

function showModel(ok, j) {
  if (!ok) throw new Error(j.error ? j.error.message : "HTTP error");
  modelId = j.data[0].id;
  $("model").textContent = modelId;
}

async function loadModel() {
  try {
    if (testMode) {
      const r = syncRequest("GET", "/v1/models", null);
      showModel(r.ok, JSON.parse(r.text));
    } else {
      const r = await fetch("/v1/models", {headers: headers()});
      showModel(r.ok, await r.json());
    }
  } catch (e) {
    $("model").textContent = "(model unknown: " + e.message + ")";
  }
}

// Server-sent events: complete "data: ..." events of `buffer` go to onData; returns the rest.
function parseEvents(buffer, onData) {
  let end;
  while ((end = buffer.indexOf("\n\n")) >= 0) {
    const event = buffer.slice(0, end);
    buffer = buffer.slice(end + 2);
    for (const line of event.split("\n")) {
      if (line.startsWith("data: ") && line.slice(6) !== "[DONE]") onData(JSON.parse(line.slice(6)));
    }
  }
  return buffer;
}

async function send(text) {
  localStorage.setItem("edgeq-key", $("key").value.trim());
  if (!modelId) await loadModel();
  history.push({role: "user", content: text});
  bubble("user", text);
  const out = bubble("assistant", "");
  $("status").textContent = "generating";
  $("send").disabled = true;
  const t0 = performance.now();
  let tFirst = 0, nTokens = 0, reply = "";
  const onData = (j) => {
    if (j.error) throw new Error(j.error.message);
    if (j.usage) nTokens = j.usage.completion_tokens;
    const c = j.choices && j.choices[0];
    if (c && c.delta && c.delta.content) {
      if (!tFirst) tFirst = performance.now();
      reply += c.delta.content;
      out.textContent = reply;
      $("log").scrollTop = $("log").scrollHeight;
    }
  };
  try {
    const body = JSON.stringify({model: modelId || undefined, messages: history, stream: true,
                                 stream_options: {include_usage: true}});
    if (testMode) {
      const r = syncRequest("POST", "/v1/chat/completions", body);
      if (!r.ok) throw new Error(JSON.parse(r.text).error.message);
      parseEvents(r.text, onData);
    } else {
      const r = await fetch("/v1/chat/completions", {method: "POST", headers: headers(), body});
      if (!r.ok) {
        const j = await r.json().catch(() => ({}));
        throw new Error(j.error ? j.error.message : r.statusText);
      }
      const reader = r.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer = parseEvents(buffer + decoder.decode(value, {stream: true}), onData);
      }
    }
    history.push({role: "assistant", content: reply});
    const seconds = (performance.now() - (testMode ? t0 : tFirst || t0)) / 1000;
    $("speed").textContent = nTokens + " tokens, " +
        (seconds > 0 ? (nTokens / seconds).toFixed(1) : "-") + " tokens/s";
    $("status").textContent = "done";
  } catch (e) {
    history.pop();
    out.className = "msg error";
    out.textContent = "error: " + e.message;
    $("status").textContent = "error";
  } finally {
    $("send").disabled = false;
  }
}

$("form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("input").value.trim();
  if (!text) return;
  $("input").value = "";
  send(text);
});

if (testMode) {
  send("Say hello.");  // synchronous requests: done before this script returns
} else {
  loadModel();
}
</script>
</body>
</html>
)HTML";

}  // namespace

std::string_view chat_page_html() {
    return {k_page, sizeof(k_page) - 1};
}

}  // namespace edgeq::server
