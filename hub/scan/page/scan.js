// Scan-to-report page: reads /r/<asset>/state with the label's key, files a report in two taps
// (a symptom, then 提交报修), then keeps showing the work order's progress. No external assets.
"use strict";
(function () {
  const key = new URLSearchParams(location.search).get("k") || "";
  const base = location.pathname.replace(/\/+$/, "");
  const nonce = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
  const mineKey = "hub-scan-mine";
  let chosen = null;
  let sending = false;
  let filed = false; // once reported, the form stays hidden: the page shows the progress
  const $ = (id) => document.getElementById(id);

  function mine() {
    try { return JSON.parse(localStorage.getItem(mineKey) || "[]"); } catch (e) { return []; }
  }
  function remember(id) {
    try { localStorage.setItem(mineKey, JSON.stringify([id, ...mine().filter((x) => x !== id)].slice(0, 20))); } catch (e) { /* private mode */ }
  }
  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }
  function day(iso) { return iso ? iso.slice(0, 10) : ""; }
  function time(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return `${d.getMonth() + 1}月${d.getDate()}日 ${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }
  function fail(text) { const e = $("error"); e.textContent = text; e.hidden = false; }

  function render(s) {
    $("name").textContent = s.name || "设备报修";
    $("ident").textContent = [s.card && `卡片号 ${s.card}`, s.department, s.location].filter(Boolean).join(" · ");
    const status = $("status");
    status.textContent = s.status_text;
    status.className = s.status === "under_repair" ? "bad" : "";
    const cal = s.calibration;
    const c = $("calibration");
    if (cal.valid_until) {
      c.textContent = cal.expired ? `已过期（有效期至 ${cal.valid_until}）` : `有效，至 ${cal.valid_until}`;
      c.className = cal.expired ? "bad" : "ok";
    } else {
      c.textContent = "无记录";
      c.className = "";
    }
    const due = $("due");
    due.replaceChildren(...s.due.map((d) => el("li", `${d.kind_text}${d.overdue ? "已逾期" : "到期"}：${d.due_on}`, d.overdue ? "bad" : "")));
    $("device").hidden = false;

    const ids = mine();
    const list = $("orders");
    list.replaceChildren(...s.orders.map((o) => {
      const li = el("li");
      li.dataset.workorder = o.workorder_id;
      if (o.pending) li.dataset.pending = "true"; // filed, not yet in the work-order read model
      li.append(el("span", o.status_text, "order-status"), " ", el("span", o.workorder_id, "muted"));
      if (ids.includes(o.workorder_id)) li.append(" ", el("span", "我报的", "mine"));
      const facts = [o.symptom, o.requested_at && `报修于 ${time(o.requested_at)}`, o.reporters > 1 && `${o.reporters} 人报告`, o.engineer && `工程师 ${o.engineer}`, o.resolution && `处理：${o.resolution}`];
      li.append(el("div", facts.filter(Boolean).join(" · "), "muted"));
      return li;
    }));
    $("no-orders").hidden = s.orders.length > 0;
    $("orders-card").hidden = false;

    const box = $("symptoms");
    if (!box.childElementCount) {
      for (const text of [...s.symptoms, "其他"]) {
        const b = el("button", text);
        b.type = "button";
        b.setAttribute("role", "radio");
        b.setAttribute("aria-checked", "false");
        b.addEventListener("click", () => {
          chosen = text;
          for (const other of box.children) other.setAttribute("aria-checked", String(other === b));
          $("submit").disabled = sending;
        });
        box.append(b);
      }
    }
    $("report").hidden = filed;
  }

  async function load() {
    const r = await fetch(`${base}/state?k=${encodeURIComponent(key)}`, { cache: "no-store" });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      fail(body.detail || `加载失败（${r.status}）`);
      return null;
    }
    const s = await r.json();
    render(s);
    return s;
  }

  async function submit() {
    if (!chosen || sending) return;
    sending = true;
    $("submit").disabled = true;
    $("submit").textContent = "提交中…";
    try {
      const r = await fetch(`${base}/reports?k=${encodeURIComponent(key)}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ symptom: chosen, note: $("note").value.trim() || null, nonce }),
      });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) {
        fail(typeof body.detail === "string" ? body.detail : `提交失败（${r.status}）`);
        sending = false;
        $("submit").disabled = false;
        $("submit").textContent = "提交报修";
        return;
      }
      remember(body.workorder_id);
      filed = true;
      const done = $("done");
      done.textContent = body.message;
      done.dataset.workorder = body.workorder_id;
      done.hidden = false;
      $("report").hidden = true;
      poll(body.workorder_id, 0);
    } catch (e) {
      fail("网络异常，请稍后重试");
      sending = false;
      $("submit").disabled = false;
      $("submit").textContent = "提交报修";
    }
  }

  // Until the work order shows in the list (the hub applies it within seconds), then every 30 s.
  async function poll(id, n) {
    const s = await load().catch(() => null);
    const seen = s && s.orders.some((o) => o.workorder_id === id && !o.pending);
    setTimeout(() => poll(id, n + 1), seen || n > 60 ? 30000 : 1000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("submit").addEventListener("click", submit);
    load().catch(() => fail("网络异常，请稍后重试"));
  });
})();
