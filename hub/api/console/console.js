// The hub's operator console: plain JS over the JSON API, no build step, no third-party code.
// Every value from the API reaches the page through textContent or setAttribute, never parsed
// as HTML, and the Content-Security-Policy allows no inline script: data cannot become code.
// The API key lives in sessionStorage (this tab only) and travels in the Authorization header,
// never in a URL.
"use strict";

(() => {
  const KEY_STORE = "hub.console.apiKey";
  const PAGE = 50;

  const STATUS = {
    in_use: "在用", idle: "闲置", under_repair: "维修中", on_loan: "借出",
    awaiting_acceptance: "待验收", sealed: "封存", scrapped: "报废", unknown: "未知",
  };
  const STATUS_TONE = { in_use: "ok", idle: "muted", under_repair: "warn", on_loan: "info", scrapped: "bad" };
  const WO_STATUS = {
    requested: "已报修", approved: "已审批", assigned: "已派工", started: "维修中", on_hold: "挂起",
    completed: "已完工", closed: "已关闭", cancelled: "已撤销", rejected: "已驳回",
  };
  const PRIORITY = { urgent: "特急", high: "紧急", normal: "普通", low: "低" };
  const APPROVAL = { pending: "待审批", approved: "已批准", rejected: "已驳回", not_required: "无需审批" };
  const KIND = {
    calibration: "计量检定", preventive_maintenance: "预防性维护", electrical_safety: "电气安全",
    contract: "维保合同", warranty: "保修", certificate: "证照",
  };
  const SCHEME = {
    "hrp.card": "HRP 资产卡片号", serial: "厂家|序列号", udi: "UDI", "his.code": "HIS 设备编码",
    "spd.code": "SPD 编码", "oa.asset": "OA 设备编号", "fhir.device": "FHIR Device",
  };
  const LINKED_BY = { registered: "登记", reported: "上报", manual: "人工关联", inferred: "推断" };
  const PROJECTION = {
    asset_registry: "资产台账", inventory: "库存", work_orders: "工单", compliance: "计量/质控",
    audit_ledger: "审计账本", availability: "应急调配", notifications: "通知",
  };
  const NOTE_STATE = { unread: "未读", escalated: "已升级", read: "已读", expired: "已过期", held: "暂缓" };

  const $ = (id) => document.getElementById(id);

  // ---- DOM building: text only --------------------------------------------------------------
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // replaceChildren() would show a missing optional part as the text "null": drop those first.
  const present = (nodes) => nodes.filter((node) => node !== null && node !== undefined && node !== false);
  const hint = (text) => el("span", { class: "hint", text });
  const badge = (text, tone = "muted", title = null) => el("span", { class: `badge badge-${tone}`, text, title });
  const label = (map, code) => (code ? map[code] || code : null);

  const timeFormat = new Intl.DateTimeFormat("zh-CN", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
  });
  const numberFormat = new Intl.NumberFormat("zh-CN", { maximumFractionDigits: 2 });

  function when(iso) {
    if (!iso) return null;
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return String(iso);
    return el("time", { datetime: iso, title: iso, text: timeFormat.format(moment) });
  }

  function amount(value, currency) {
    if (value === null || value === undefined || value === "") return null;
    const n = Number(value);
    const text = Number.isFinite(n) ? numberFormat.format(n) : String(value);
    return currency ? `${text} ${currency}` : text;
  }

  function both(main, sub) {
    if (!sub) return main;
    return el("span", null, main, el("span", { class: "sub", text: sub }));
  }

  // ---- Notices ------------------------------------------------------------------------------
  function notify(message, tone = "bad") {
    const box = $("notice");
    box.className = `notice notice-${tone}`;
    box.replaceChildren(...present(Array.isArray(message) ? message : [message]));
    box.hidden = false;
  }

  function clearNotice() {
    $("notice").hidden = true;
    $("key-form").classList.remove("attention");
  }

  // ---- The API key ---------------------------------------------------------------------------
  const storedKey = () => sessionStorage.getItem(KEY_STORE) || "";

  function renderKeyState() {
    const key = storedKey();
    // Show only the key id (hub_<id>_...): the secret part never goes back on screen.
    const id = key.split("_")[1];
    $("key-state").textContent = key ? `已设置密钥 key ${id || "…"}` : "未设置密钥 no key";
  }

  function askForKey(detail) {
    const form = $("key-form");
    form.classList.add("attention");
    const refused = storedKey() !== "";
    notify([
      el("strong", { text: refused ? "密钥无效、已过期或已撤销。" : "需要 API 密钥。" }),
      " 请在右上角输入密钥（hub_…）并保存。 ",
      hint(refused ? "The key was refused: enter another one above." : "API key required: enter one above and press Save."),
      detail ? el("span", { class: "why", text: ` (${detail})` }) : null,
    ], "warn");
    $("key-input").focus();
  }

  // ---- Calling the API -----------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  async function errorDetail(response) {
    try {
      const body = await response.json();
      if (typeof body.detail === "string") return body.detail;
      return JSON.stringify(body.detail === undefined ? body : body.detail);
    } catch {
      return response.statusText;
    }
  }

  async function api(path, params = {}) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(params)) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, String(value));
    }
    const headers = { Accept: "application/json" };
    const key = storedKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    let response;
    try {
      response = await fetch(url, { headers, cache: "no-store", credentials: "omit" });
    } catch (err) {
      // A key with characters a header cannot carry fails here too, before any request.
      throw new ApiError(0, `无法连接平台或密钥格式无效 / request failed: ${err.message}`);
    }
    if (response.ok) return response.json();
    const detail = await errorDetail(response);
    if (response.status === 401) askForKey(detail);
    throw new ApiError(response.status, detail);
  }

  // Every page of a paged list (`items`, `total`, `limit`/`offset`): the console needs all of
  // some hierarchies (a campus's zones) and the API caps a page.
  async function apiAll(path, params = {}, pageSize = 1000) {
    const items = [];
    for (;;) {
      const page = await api(path, { ...params, limit: pageSize, offset: items.length });
      items.push(...page.items);
      if (!page.items.length || items.length >= page.total) return { items, total: page.total };
    }
  }

  function showError(err) {
    if (!(err instanceof ApiError)) {
      notify(`页面错误 / console error: ${err && err.message ? err.message : err}`);
      throw err;
    }
    if (err.status === 401) return; // askForKey has said it
    if (err.status === 403) {
      notify([
        el("strong", { text: "当前密钥的角色无权查看此内容。" }),
        " ", hint("This key's role may not do this."),
        el("span", { class: "why", text: ` (${err.detail})` }),
      ]);
    } else if (err.status === 404) {
      notify([el("strong", { text: "未找到。" }), " ", hint("Not found."), el("span", { class: "why", text: ` (${err.detail})` })]);
    } else if (err.status === 503) {
      notify([el("strong", { text: "服务暂不可用。" }), " ", hint("Unavailable."), el("span", { class: "why", text: ` (${err.detail})` })]);
    } else {
      notify(`请求失败 / request failed${err.status ? ` (${err.status})` : ""}: ${err.detail}`);
    }
  }

  const formParams = (form) => {
    const params = {};
    for (const [name, value] of new FormData(form).entries()) {
      const text = String(value).trim();
      if (text) params[name] = text;
    }
    return params;
  };

  // ---- Tables --------------------------------------------------------------------------------
  function fillTable(table, columns, rows, options = {}) {
    const head = el("thead", null, el("tr", null, columns.map((c) => el("th", { scope: "col" }, c.label, c.hint ? hint(c.hint) : null))));
    const body = el("tbody");
    if (!rows.length) {
      body.append(el("tr", null, el("td", { colspan: columns.length, class: "empty", text: options.empty || "无数据 No data" })));
    }
    for (const row of rows) {
      const cells = columns.map((c) => {
        const value = c.value(row);
        return el("td", { class: c.class }, value === null || value === undefined || value === "" ? "—" : value);
      });
      const tr = el("tr", { class: options.rowClass ? options.rowClass(row) : null }, cells);
      if (options.onRow) {
        tr.tabIndex = 0;
        tr.addEventListener("click", () => options.onRow(row, tr));
        tr.addEventListener("keydown", (event) => {
          if (event.key === "Enter") options.onRow(row, tr);
        });
      }
      body.append(tr);
    }
    table.replaceChildren(head, body);
  }

  function pager(container, page, go) {
    const { total, limit, offset } = page;
    container.replaceChildren();
    if (total <= limit && offset === 0) return;
    container.append(
      el("button", { type: "button", class: "secondary", disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) }, "‹ 上一页"),
      el("span", { text: `${total ? offset + 1 : 0}–${Math.min(offset + limit, total)} / ${total}` }),
      el("button", { type: "button", class: "secondary", disabled: offset + limit >= total, onclick: () => go(offset + limit) }, "下一页 ›"),
    );
  }

  function definitionList(pairs) {
    const dl = el("dl");
    for (const [term, value] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      dl.append(el("dt", { text: term }), el("dd", null, value));
    }
    return dl;
  }

  // ---- Channels ------------------------------------------------------------------------------
  const CHANNEL_STATE = { listening: ["监听中", "ok"], erroring: ["异常", "bad"], stopped: ["已停止", "warn"] };
  const TRANSPORT = { mllp: "HL7 MLLP", file: "文件投递 inbox", http: "HTTP 接入", topic: "原始主题 raw topic" };
  const SVG = "http://www.w3.org/2000/svg";

  // A small inline SVG: received per minute (line) and dead-lettered per minute (red bars).
  function sparkline(received, dead) {
    const width = 120, height = 28, n = received.length || 1;
    const top = Math.max(1, ...received, ...dead);
    const svg = document.createElementNS(SVG, "svg");
    for (const [name, value] of Object.entries({ viewBox: `0 0 ${width} ${height}`, width, height, class: "spark", role: "img" })) {
      svg.setAttribute(name, String(value));
    }
    const x = (i) => (i * width) / Math.max(1, n - 1);
    const y = (v) => height - 2 - (v / top) * (height - 4);
    dead.forEach((v, i) => {
      if (!v) return;
      const bar = document.createElementNS(SVG, "rect");
      for (const [name, value] of Object.entries({ x: x(i) - 1, y: y(v), width: 2, height: height - 2 - y(v), fill: "#c0392b" })) bar.setAttribute(name, String(value));
      svg.append(bar);
    });
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", received.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
    for (const [name, value] of Object.entries({ fill: "none", stroke: "#2471a3", "stroke-width": 1.5 })) line.setAttribute(name, String(value));
    svg.append(line);
    const title = document.createElementNS(SVG, "title");
    title.textContent = `最近 60 分钟接收 ${received.reduce((a, b) => a + b, 0)} 条，死信 ${dead.reduce((a, b) => a + b, 0)} 条 / last hour`;
    svg.append(title);
    return svg;
  }

  async function loadChannels() {
    const page = await api("/channels");
    const items = page.items;
    const count = (state) => items.filter((c) => c.state === state).length;
    const sum = (key) => items.reduce((a, c) => a + (c.transport === "topic" ? 0 : c.counts[key]), 0);
    const card = (title, english, value, tone) => el("div", { class: `card card-${tone}` },
      el("div", { class: "card-value", text: value }), el("div", { class: "card-label" }, title, " ", hint(english)));
    $("channels-cards").replaceChildren(
      card("监听中", "listening", count("listening"), "ok"),
      card("异常", "erroring", count("erroring"), count("erroring") ? "bad" : "ok"),
      card("已停止", "stopped", count("stopped"), count("stopped") ? "warn" : "ok"),
      card("已接收", "received", numberFormat.format(sum("received")), "muted"),
      card("死信", "dead-lettered", numberFormat.format(sum("dead_lettered")), sum("dead_lettered") ? "bad" : "ok"),
    );
    $("channels-summary").replaceChildren(`${items.length} 个通道 channels · 更新于 `, when(page.generated_at) || "—", hint(" updated"));
    fillTable($("channels-table"), [
      { label: "通道", hint: "channel", value: (c) => both(`${c.system.toUpperCase()} · ${TRANSPORT[c.transport] || c.transport}`, c.endpoint) },
      { label: "状态", hint: "state", value: (c) => {
        const [text, tone] = CHANNEL_STATE[c.state] || [c.state, "muted"];
        return badge(`${text} ${c.state}`, tone, c.state_detail);
      } },
      { label: "最近接收", hint: "last message", value: (c) => when(c.last_received_at) },
      { label: "接收", hint: "received", class: "num strong", value: (c) => (c.transport === "topic" ? (c.on_topic ?? "—") : c.counts.received) },
      { label: "已转换", hint: "translated", class: "num", value: (c) => c.counts.translated },
      { label: "仅归档", hint: "archived only", class: "num", value: (c) => c.counts.archived_only },
      { label: "死信", hint: "dead-lettered", class: "num", value: (c) => (c.counts.dead_lettered ? badge(String(c.counts.dead_lettered), "bad") : 0) },
      { label: "待处理", hint: "pending", class: "num", value: (c) => c.counts.pending },
      { label: "应答", hint: "AA/AE/AR", class: "num", value: (c) => (c.transport === "mllp" ? `${c.counts.ack_aa}/${c.counts.ack_ae}/${c.counts.ack_ar}` : null) },
      { label: "每分钟", hint: "per min", class: "num", value: (c) => numberFormat.format(c.rate_per_minute) },
      { label: "最近一小时", hint: "last hour", value: (c) => sparkline(c.received_last_hour, c.dead_lettered_last_hour) },
      { label: "最近错误", hint: "last error", class: "wrap", value: (c) => (c.last_error
        ? el("span", null, c.last_error, el("span", { class: "sub" }, when(c.last_error_at))) : null) },
    ], items, { empty: "暂无通道 No channels", rowClass: (c) => `channel-${c.system}-${c.transport}` });
  }

  // ---- 资产 Assets ----------------------------------------------------------------------------
  // The browser's calendar day as YYYY-MM-DD, to compare with the API's ISO dates.
  const today = () => new Date().toLocaleDateString("sv-SE");

  const primaryIdentifier = (asset) => {
    const ids = asset.identifiers || [];
    const card = ids.find((i) => i.scheme === "hrp.card") || ids[0];
    return card ? card.value : null;
  };

  function statusBadge(code, text) {
    return badge(label(STATUS, code) || "—", STATUS_TONE[code] || "muted", text || code);
  }

  function assetFlags(asset) {
    const flags = [];
    if (asset.on_loan) flags.push(badge(asset.loan_overdue ? "借用逾期" : "借出中", asset.loan_overdue ? "bad" : "info"));
    if (asset.calibration_valid_until) {
      const expired = asset.calibration_valid_until < today();
      flags.push(badge(`${expired ? "计量过期" : "计量至"} ${asset.calibration_valid_until}`, expired ? "bad" : "muted"));
    }
    if (asset.provisional) flags.push(badge("临时记录", "warn", "provisional: not yet linked to a registered asset"));
    if (asset.decommissioned) flags.push(badge("已报废", "bad"));
    return flags.length ? el("span", { class: "flags" }, flags) : null;
  }

  let selectedAsset = null;

  // Per list, only the latest request's answer is drawn: a slower, earlier answer (the page's first
  // load, say) must not overwrite the search the user has just made.
  const loadTickets = {};
  function ticket(list) {
    const mine = (loadTickets[list] = (loadTickets[list] || 0) + 1);
    return () => loadTickets[list] === mine;
  }

  async function loadAssets(offset = 0) {
    const params = { ...formParams($("assets-form")), limit: PAGE, offset };
    const current = ticket("assets");
    const page = await api("/assets", params);
    if (!current()) return;
    $("assets-summary").textContent = `共 ${page.total} 台设备 (${page.total} devices)`;
    fillTable($("assets-table"), [
      { label: "名称", hint: "name", value: (a) => both(a.name, a.model) },
      { label: "科室", hint: "department", value: (a) => a.department_name || a.department_code },
      { label: "位置", hint: "location", value: (a) => a.location },
      { label: "状态", hint: "status", value: (a) => statusBadge(a.status, a.status_text) },
      { label: "资产卡片号", hint: "identifier", value: primaryIdentifier, class: "mono" },
      { label: "提示", hint: "flags", value: assetFlags },
    ], page.items, {
      empty: "没有符合条件的设备 No matching assets",
      rowClass: (a) => (a.asset_id === selectedAsset ? "selected" : null),
      onRow: (a, tr) => {
        for (const other of tr.parentNode.querySelectorAll("tr.selected")) other.classList.remove("selected");
        tr.classList.add("selected");
        showAsset(a.asset_id).catch(showError);
      },
    });
    pager($("assets-pager"), page, (next) => loadAssets(next).catch(showError));
  }

  function section(title, english, ...content) {
    return el("section", { class: "detail-section" }, el("h3", null, title, " ", hint(english)), ...content);
  }

  async function showAsset(assetId) {
    selectedAsset = assetId;
    const pane = $("asset-detail");
    pane.replaceChildren(el("p", { class: "placeholder", text: "加载中… Loading" }));
    const a = await api(`/assets/${encodeURIComponent(assetId)}`);
    const loan = a.loan;
    const cal = a.calibration;
    const insp = a.inspection;
    pane.replaceChildren(...present([
      el("h2", { class: "detail-title", text: a.name }),
      el("p", { class: "sub" }, [a.model, a.manufacturer].filter(Boolean).join(" · "), " ", el("code", { text: a.asset_id })),
      section("基本信息", "Record", definitionList([
        // The source's own wording, when it says more than the harmonised status does.
        ["状态 status", el("span", null, statusBadge(a.status, a.status_text),
          a.status_text && a.status_text !== label(STATUS, a.status) ? ` ${a.status_text}` : "")],
        ["科室 department", both(a.department_name || a.department_code || "—", a.department_code)],
        ["位置 location", a.location],
        ["分类 category", [a.category_code, a.category_name].filter(Boolean).join(" ")],
        ["序列号 serial", a.serial_number],
        ["UDI", a.udi],
        ["购置日期 acquired", a.acquired_on],
        ["原值 original value", amount(a.original_value, a.currency)],
        ["净值 net value", amount(a.net_value, a.currency)],
        ["资金来源 funding", a.funding_source],
        ["使用年限 useful life", a.useful_life_years ? `${a.useful_life_years} 年` : null],
        ["验收 accepted", [a.accepted_on, a.acceptance_result].filter(Boolean).join(" ")],
        ["启用 commissioned", a.commissioned_on],
        ["报废 decommissioned", a.decommissioned_on],
        ["最近使用 last used", when(a.last_used_at)],
        ["来源 source", a.source_system ? a.source_system.toUpperCase() : null],
        ["临时记录 provisional", a.provisional ? badge("是 yes", "warn") : null],
        ["已合并 merged from", a.merged_from && a.merged_from.length ? a.merged_from.join(", ") : null],
      ])),
      section("标识", "Identifiers", (() => {
        const table = el("table", { class: "data compact", id: "asset-identifiers" });
        fillTable(table, [
          { label: "类型", hint: "scheme", value: (i) => both(label(SCHEME, i.scheme), i.scheme) },
          { label: "值", hint: "value", value: (i) => i.value, class: "mono" },
          { label: "关联", hint: "linked by", value: (i) => label(LINKED_BY, i.linked_by) },
        ], a.identifiers || []);
        return table;
      })()),
      section("借用", "Loan", loan ? definitionList([
        ["状态 state", loan.on_loan
          ? badge(loan.overdue ? "借用逾期 overdue" : "借出中 on loan", loan.overdue ? "bad" : "info")
          : badge("已归还 returned", "ok")],
        ["借用单 loan no.", loan.loan_id],
        ["借入科室 borrower", loan.borrower_department_name || loan.borrower_department_code],
        ["借出科室 lender", loan.lender_department_name || loan.lender_department_code],
        ["负责人 responsible", loan.responsible_person],
        ["借出 started", when(loan.started_at)],
        ["应还 due", when(loan.due_at)],
        ["归还 returned", when(loan.returned_at)],
      ]) : el("p", { class: "placeholder", text: "无借用记录 No loan" })),
      section("计量", "Calibration", cal ? definitionList([
        ["有效 valid", cal.valid ? badge("有效 valid", "ok") : badge("已失效 expired", "bad")],
        ["检定日期 calibrated", cal.calibrated_on],
        ["有效期至 valid until", cal.valid_until],
        ["结果 result", cal.result],
        ["证书号 certificate", cal.certificate_no],
        ["检定机构 provider", cal.provider],
      ]) : el("p", { class: "placeholder", text: "无计量记录 No calibration on record" })),
      insp ? section("质控/巡检", "Inspection", definitionList([
        ["类型 kind", label(KIND, insp.kind)],
        ["日期 inspected", insp.inspected_on],
        ["结果 result", insp.result],
        ["下次 next due", insp.next_due_on],
      ])) : null,
      a.contracts && a.contracts.length ? section("合同", "Contracts", (() => {
        const table = el("table", { class: "data compact" });
        fillTable(table, [
          { label: "合同号", hint: "no.", value: (c) => c.contract_no, class: "mono" },
          { label: "类型", hint: "kind", value: (c) => c.kind },
          { label: "供应商", hint: "vendor", value: (c) => c.vendor },
          { label: "期限", hint: "term", value: (c) => [c.starts_on, c.ends_on].filter(Boolean).join(" ~ ") },
          { label: "金额", hint: "amount", value: (c) => amount(c.amount, c.currency) },
        ], a.contracts);
        return table;
      })()) : null,
    ]));
  }

  function openAsset(assetId) {
    if (!assetId) return;
    window.location.hash = "#assets";
    showAsset(assetId).catch(showError);
  }

  // ---- 应急调配 Availability ------------------------------------------------------------------
  async function loadAvailability() {
    const params = { ...formParams($("availability-form")), limit: 500 };
    if (!params.type && !params.category) params.type = "呼吸机";
    const current = ticket("availability");
    const page = await api("/availability", params);
    if (!current()) return;
    const t = page.totals;
    const card = (title, english, value, tone) => el("div", { class: `card card-${tone}` },
      el("div", { class: "card-value", text: value }), el("div", { class: "card-label" }, title, " ", hint(english)));
    $("availability-totals").replaceChildren(
      card("可用", "ready", t.ready, "ok"),
      card("借出", "on loan", t.on_loan, "info"),
      card("维修中", "under repair", t.under_repair, "warn"),
      card("计量到期", "calibration due", t.calibration_due, "warn"),
      card("不可用", "unavailable", t.unavailable, "bad"),
      card("合计", "total", t.total, "muted"),
      card("应急池可用", "pool ready", `${t.pool_ready} / ${t.pool}`, "info"),
    );
    fillTable($("availability-table"), [
      { label: "科室", hint: "department", value: (d) => both(d.department_name || d.department_code, d.department_code) },
      { label: "可用", hint: "ready", value: (d) => d.ready, class: "num strong" },
      { label: "借出", hint: "on loan", value: (d) => d.on_loan, class: "num" },
      { label: "维修中", hint: "under repair", value: (d) => d.under_repair, class: "num" },
      { label: "计量到期", hint: "calibration due", value: (d) => d.calibration_due, class: "num" },
      { label: "不可用", hint: "unavailable", value: (d) => d.unavailable, class: "num" },
      { label: "合计", hint: "total", value: (d) => d.total, class: "num" },
      { label: "应急池", hint: "pool ready / pool", value: (d) => (d.pool ? `${d.pool_ready} / ${d.pool}` : null), class: "num" },
    ], page.items, {
      empty: `没有“${page.type || page.category || ""}”类设备 No such devices`,
      rowClass: (d) => (d.ready === 0 ? "row-bad" : null),
    });
  }

  // ---- 库存预警 Inventory ----------------------------------------------------------------------
  const itemCell = (r) => both(r.item_name, r.item_code);

  async function loadInventory(offset = 0) {
    const current = ticket("inventory");
    const [alerts, stock] = await Promise.all([
      api("/inventory/alerts", { limit: 500 }),
      api("/inventory/stock", { ...formParams($("stock-form")), limit: PAGE, offset }),
    ]);
    if (!current()) return;
    $("alerts-summary").textContent = `${alerts.total} 处低于下限 (${alerts.total} below minimum)`;
    fillTable($("alerts-table"), [
      { label: "科室", hint: "department", value: (r) => r.department_name || r.department_code },
      { label: "物资", hint: "item", value: itemCell },
      { label: "规格", hint: "spec", value: (r) => r.spec },
      { label: "在库", hint: "on hand", value: (r) => `${r.on_hand} ${r.unit || ""}`, class: "num strong" },
      { label: "下限", hint: "minimum", value: (r) => r.minimum, class: "num" },
      { label: "补货点", hint: "reorder point", value: (r) => r.reorder_point, class: "num" },
      { label: "建议补货", hint: "suggested", value: (r) => r.suggested_reorder, class: "num" },
      { label: "低于下限自", hint: "below since", value: (r) => when(r.below_since) },
      { label: "供应商", hint: "supplier", value: (r) => r.supplier },
    ], alerts.items, { empty: "没有库存预警 No alerts", rowClass: () => "row-warn" });
    $("stock-summary").textContent = `共 ${stock.total} 条库存 (${stock.total} stock rows)`;
    fillTable($("stock-table"), [
      { label: "科室", hint: "department", value: (r) => r.department_name || r.department_code },
      { label: "物资", hint: "item", value: itemCell },
      { label: "规格", hint: "spec", value: (r) => r.spec },
      { label: "批号", hint: "lot", value: (r) => r.lot, class: "mono" },
      { label: "效期", hint: "expiry", value: (r) => r.expiry },
      { label: "在库", hint: "on hand", value: (r) => `${r.on_hand} ${r.unit || ""}`, class: "num" },
      { label: "提示", hint: "flags", value: (r) => el("span", { class: "flags" },
        r.high_value ? badge("高值", "info") : null, r.below_minimum ? badge("低于下限", "bad") : null) },
      { label: "最近变动", hint: "last movement", value: (r) => when(r.last_movement_at) },
    ], stock.items, { empty: "没有库存记录 No stock" });
    pager($("stock-pager"), stock, (next) => loadInventory(next).catch(showError));
  }

  // ---- 工单 Work orders ------------------------------------------------------------------------
  async function loadWorkOrders(offset = 0) {
    const params = { ...formParams($("workorders-form")), limit: PAGE, offset };
    const current = ticket("workorders");
    const page = await api("/workorders", params);
    if (!current()) return;
    $("workorders-summary").textContent = `共 ${page.total} 张工单 (${page.total} work orders)`;
    fillTable($("workorders-table"), [
      { label: "工单", hint: "id", value: (w) => w.workorder_id, class: "mono" },
      { label: "状态", hint: "status", value: (w) => badge(label(WO_STATUS, w.status), w.on_hold ? "warn" : "muted") },
      { label: "优先级", hint: "priority", value: (w) => badge(label(PRIORITY, w.priority) || "—", w.priority === "urgent" ? "bad" : w.priority === "high" ? "warn" : "muted") },
      { label: "设备", hint: "asset", value: (w) => both(w.asset_name || w.asset_value, w.asset_name ? w.asset_value : null) },
      { label: "报修科室", hint: "department", value: (w) => w.department_name || w.department_code },
      { label: "故障描述", hint: "symptom", value: (w) => w.symptom },
      { label: "报修时间", hint: "requested", value: (w) => when(w.requested_at) },
      { label: "工程师", hint: "engineer", value: (w) => w.engineer },
      { label: "审批", hint: "approval", value: (w) => label(APPROVAL, w.approval_state) },
      { label: "时效", hint: "SLA", value: (w) => (w.sla_breached ? badge("超时 breached", "bad") : badge("正常", "ok")) },
    ], page.items, {
      empty: "没有符合条件的工单 No matching work orders",
      onRow: (w) => openAsset(w.asset_id),
    });
    pager($("workorders-pager"), page, (next) => loadWorkOrders(next).catch(showError));
  }

  // ---- 计量/质控到期 Compliance (default: what needs action) -------------------------------
  // Overdue by at most 90 days plus due in the next 30: the form's defaults. Dates the hub only
  // projected from a purchase / start-of-service date are marked, and filterable.
  const PROJECTED_HINT = "projected from the purchase / start-of-service date: no record of this kind yet; confirm it";

  function projectedBadge(d) {
    return d.projected
      ? badge("按购置日期推算 projected", "warn", PROJECTED_HINT)
      : badge("已确认 confirmed", "muted", d.basis);
  }

  function complianceGroups(page) {
    const form = $("compliance-form");
    fillTable($("compliance-groups"), [
      { label: "状态", hint: "state", value: (g) => (g.overdue ? badge("已逾期 overdue", "bad") : badge("即将到期 due soon", "warn")) },
      { label: "类型", hint: "kind", value: (g) => both(label(KIND, g.kind), g.kind) },
      { label: "依据", hint: "schedule", value: (g) => projectedBadge(g) },
      { label: "数量", hint: "count", value: (g) => g.count, class: "num strong" },
    ], page.groups || [], {
      empty: "没有需要处理的项 Nothing needs action",
      rowClass: (g) => (g.projected ? "row-projected" : null),
      onRow: (g) => {
        form.elements.kind.value = g.kind;
        form.elements.overdue.value = String(g.overdue);
        form.elements.projected.value = String(g.projected);
        loadCompliance(0).catch(showError);
      },
    });
  }

  async function loadCompliance(offset = 0) {
    const params = formParams($("compliance-form"));
    // An empty "overdue by at most" means any: the API's own default when the parameter is absent.
    const current = ticket("compliance");
    const page = await api("/compliance/due", { ...params, limit: PAGE, offset });
    if (!current()) return;
    const projected = (page.groups || []).filter((g) => g.projected).reduce((n, g) => n + g.count, 0);
    const range = params.overdue_within ? `逾期 ${params.overdue_within.replace("d", "")} 天内 + ` : "全部逾期 + ";
    $("compliance-summary").textContent = `截至 ${page.as_of}，${range}${params.within.replace("d", "")} 天内到期：共 ${page.total} 项，`
      + `其中 ${projected} 项按购置日期推算 (${page.total} need action as of ${page.as_of}; ${projected} projected)`;
    complianceGroups(page);
    fillTable($("compliance-table"), [
      { label: "设备", hint: "asset", value: (d) => d.asset_name },
      { label: "科室", hint: "department", value: (d) => d.department_name || d.department_code },
      { label: "类型", hint: "kind", value: (d) => label(KIND, d.kind) },
      { label: "到期日", hint: "due on", value: (d) => d.due_on },
      { label: "剩余", hint: "days left", value: (d) => (d.overdue
        ? badge(`逾期 ${-d.days_left} 天`, "bad")
        : badge(`${d.days_left} 天`, d.days_left <= 7 ? "warn" : "muted")) },
      { label: "依据", hint: "schedule", value: projectedBadge },
      { label: "上次", hint: "last done", value: (d) => [d.last_done_on, d.last_result].filter(Boolean).join(" ") },
      { label: "周期", hint: "interval", value: (d) => (d.interval_months ? `${d.interval_months} 个月` : null) },
      { label: "编号", hint: "ref", value: (d) => d.ref, class: "mono" },
    ], page.items, {
      empty: "期限内没有到期项 Nothing due",
      rowClass: (d) => (d.projected ? "row-projected" : null),
      onRow: (d) => openAsset(d.asset_id),
    });
    pager($("compliance-pager"), page, (next) => loadCompliance(next).catch(showError));
  }

  // ---- 消息 Messages ---------------------------------------------------------------------------
  const MESSAGE_STATUS = { translated: ["已转换", "ok"], dead_lettered: ["死信", "bad"], pending: ["待处理", "warn"] };

  function messageBadge(status) {
    const [text, tone] = MESSAGE_STATUS[status] || [status, "muted"];
    return badge(text, tone, status);
  }

  async function post(path, body) {
    const headers = { Accept: "application/json", "Content-Type": "application/json" };
    const key = storedKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    const response = await fetch(new URL(path, window.location.origin), {
      method: "POST", headers, body: JSON.stringify(body), cache: "no-store", credentials: "omit",
    });
    if (response.ok) return response.json();
    throw new ApiError(response.status, await errorDetail(response));
  }

  async function loadMessages(offset = 0) {
    const params = { ...formParams($("messages-form")), limit: PAGE, offset };
    const current = ticket("messages");
    const page = await api("/messages", params);
    if (!current()) return;
    const more = page.total_exact ? "" : "+";
    $("messages-summary").textContent = `共 ${page.total}${more} 条消息 (${page.total}${more} messages)`;
    fillTable($("messages-table"), [
      { label: "接收时间", hint: "received", value: (m) => when(m.received_at) },
      { label: "来源", hint: "system", value: (m) => (m.system || "").toUpperCase() },
      { label: "控制号", hint: "control id", value: (m) => m.control_id, class: "mono" },
      { label: "类型", hint: "type", value: (m) => m.message_type },
      { label: "状态", hint: "status", value: (m) => messageBadge(m.status) },
      { label: "事件", hint: "events", value: (m) => m.events, class: "num" },
      { label: "失败", hint: "failed units", value: (m) => m.failures, class: "num" },
    ], page.items, {
      empty: "没有符合条件的消息 No matching messages",
      onRow: (m, tr) => {
        for (const other of tr.parentNode.querySelectorAll("tr.selected")) other.classList.remove("selected");
        tr.classList.add("selected");
        showMessage(m.raw_ref).catch(showError);
      },
    });
    pager($("messages-pager"), page, (next) => loadMessages(next).catch(showError));
  }

  // One HL7 segment a row: its name, then each field numbered as the spec does (PID-3 ...).
  function segmentRow(line) {
    const fields = line.split("|");
    const name = fields[0];
    const isHl7 = /^[A-Z][A-Z0-9]{2}$/.test(name);
    if (!isHl7) return el("div", { class: "seg" }, el("span", { class: "seg-text", text: line }));
    // MSH-1 is the separator itself, so MSH's fields count from 2 after it.
    const first = name === "MSH" ? 2 : 1;
    return el("div", { class: "seg" },
      el("span", { class: "seg-name", text: name }),
      fields.slice(1).map((value, i) => el("span", {
        class: value ? "seg-field" : "seg-field seg-empty", title: `${name}-${i + first}`, text: value || "∅",
      })));
  }

  async function rawPane(rawRef) {
    try {
      const text = await api(`/messages/${encodeURIComponent(rawRef)}/text`);
      return section("原始报文", `raw, decoded as ${text.charset}`,
        el("div", { class: "raw", id: "message-raw" }, text.lines.map(segmentRow)),
        text.truncated ? el("p", { class: "hint", text: "仅显示开头部分 (truncated): GET /raw 提供完整字节" }) : null);
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 403 && err.status !== 422)) throw err;
      const why = err.status === 403
        ? ["原始报文含患者数据，仅审计员/管理员可查看。", hint("Raw payloads need the auditor or admin role.")]
        : ["原始字节无法解码。", hint("The bytes do not decode: see GET /raw.")];
      return section("原始报文", "raw", el("p", { class: "placeholder", id: "message-raw-refused" }, ...why));
    }
  }

  async function showMessage(rawRef) {
    const pane = $("message-detail");
    pane.replaceChildren(el("p", { class: "placeholder", text: "加载中… Loading" }));
    const [m, raw] = await Promise.all([api(`/messages/${encodeURIComponent(rawRef)}`), rawPane(rawRef)]);
    const events = el("table", { class: "data compact", id: "message-events" });
    fillTable(events, [
      { label: "事件", hint: "event", value: (e) => e.event_type },
      { label: "对象", hint: "subject", value: (e) => e.subject, class: "mono" },
      { label: "账本", hint: "ledger", value: (e) => (e.ledger ? `${e.ledger.topic}#${e.ledger.partition}/${e.ledger.seq}` : "—"), class: "mono" },
    ], m.became, { empty: "没有事件 No events" });
    const letters = el("table", { class: "data compact", id: "message-dead-letters" });
    fillTable(letters, [
      { label: "位置", hint: "where", value: (d) => d.position },
      { label: "原因", hint: "reason", value: (d) => d.reason, class: "wrap" },
      { label: "映射", hint: "mapping", value: (d) => d.mapping_version, class: "mono" },
      { label: "状态", hint: "status", value: (d) => badge(d.status === "open" ? "待处理" : "已解决", d.status === "open" ? "warn" : "ok") },
    ], m.dead_letters, { empty: "没有死信 No dead letters" });
    const redo = el("button", { type: "button", id: "message-reprocess", text: "重新处理 Reprocess" });
    redo.addEventListener("click", async () => {
      try {
        const out = await post("/messages/reprocess", { raw_ref: rawRef });
        notify(`已重新处理：解决 ${out.resolved}，仍待处理 ${out.still_open} (resolved ${out.resolved}, still open ${out.still_open})`, "ok");
        await showMessage(rawRef);
      } catch (err) {
        showError(err);
      }
    });
    pane.replaceChildren(
      el("h3", null, m.control_id, " ", messageBadge(m.status), " ", redo),
      el("p", { class: "mono", text: `${m.raw_ref} · ${(m.system || "").toUpperCase()} · ${m.transport} · ${m.size} B` }),
      el("div", { class: "side-by-side" },
        el("div", { class: "side", id: "message-raw-side" }, raw),
        el("div", { class: "side", id: "message-events-side" },
          section("产生的事件", "events it became", el("div", { class: "scroll" }, events)),
          section("应答", "ACK sent", el("pre", { class: "mono ack", id: "message-ack", text: m.ack ? m.ack.join("\n") : "—" })),
          section("死信", "dead letters", el("div", { class: "scroll" }, letters)))),
    );
  }

  // ---- 通知 Notifications (the inbox; 确认 publishes the read receipt) -------------------------
  async function acknowledge(id) {
    const headers = { Accept: "application/json" };
    const key = storedKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    const response = await fetch(`/notifications/${encodeURIComponent(id)}/ack`, {
      method: "POST", headers, cache: "no-store", credentials: "omit",
    });
    if (!response.ok) throw new ApiError(response.status, await errorDetail(response));
  }

  async function loadNotifications(offset = 0) {
    const current = ticket("notifications");
    const page = await api("/notifications", { ...formParams($("notifications-form")), limit: PAGE, offset });
    if (!current()) return;
    $("notifications-summary").textContent = `共 ${page.total} 条通知 (${page.total} notifications)`;
    const tone = { unread: "warn", escalated: "bad", read: "ok", expired: "muted", held: "info" };
    fillTable($("notifications-table"), [
      { label: "状态", hint: "state", value: (n) => badge(label(NOTE_STATE, n.state), tone[n.state] || "muted") },
      { label: "标题", hint: "title", value: (n) => n.title },
      { label: "内容", hint: "text", value: (n) => n.text, class: "wrap" },
      { label: "科室", hint: "department", value: (n) => n.department_name || n.department_code },
      { label: "升级", hint: "level", value: (n) => n.level, class: "num" },
      { label: "发送时间", hint: "sent", value: (n) => when(n.sent_at || n.deliver_at) },
      { label: "已读", hint: "read by", value: (n) => (n.receipts.length
        ? `${n.receipts[0].reader || n.receipts[0].key_id} ${when(n.receipts[0].read_at)}`
        : (n.state === "unread" || n.state === "escalated"
          ? el("button", { type: "button", text: "确认 Ack", onclick: (event) => {
            event.stopPropagation();
            acknowledge(n.notification_id).then(() => notify("已确认，回执已记录。 Acknowledged.")).catch(showError);
          } })
          : null)) },
    ], page.items, { empty: "没有通知 No notifications" });
    pager($("notifications-pager"), page, (next) => loadNotifications(next).catch(showError));
  }

  // ---- 死信 Dead letters: grouped by reason, retry one / selected / all matching -------------
  function where(letter) {
    const loc = letter.location || {};
    const parts = [loc.line ? `第 ${loc.line} 行` : letter.position, loc.column, loc.field].filter(Boolean);
    return parts.join(" · ");
  }

  const selectedLetters = new Set(); // raw refs ticked on the current page

  function retried(out) {
    notify(`已重试 ${out.retried} 条消息：解决 ${out.resolved} 条死信，仍待处理 ${out.still_open} 条`
      + ` (retried ${out.retried}, resolved ${out.resolved}, still open ${out.still_open})`, out.resolved ? "ok" : "warn");
  }

  async function retryThen(call) {
    try {
      const out = await call();
      await loadDeadLetters(0);
      retried(out); // after the reload: show() clears notices, the reload does not
    } catch (err) {
      showError(err);
    }
  }

  async function loadDeadLetterGroups(params) {
    const out = await api("/dlq/groups", { status: params.status, system: params.system });
    $("dlq-mappings").replaceChildren(...out.mappings.map((m) => el("div", {
      class: `card card-${m.overridden ? "info" : "muted"}`, "data-system": m.system,
    },
    el("div", { class: "card-value mono", text: m.version }),
    el("div", { class: "card-label" }, `${m.system.toUpperCase()} `,
      hint(m.overridden ? `本院映射 ${m.file} (override)` : `默认映射 ${m.file} (default)`)))));
    const inUse = Object.fromEntries(out.mappings.map((m) => [m.system, m.version]));
    fillTable($("dlq-groups"), [
      { label: "来源", hint: "system", value: (g) => g.system.toUpperCase() },
      { label: "代码", hint: "code", value: (g) => g.code, class: "mono" },
      { label: "原因示例", hint: "example reason", value: (g) => g.reason, class: "wrap" },
      { label: "死信", hint: "letters", value: (g) => g.count, class: "num strong" },
      { label: "消息", hint: "messages", value: (g) => g.raw_refs, class: "num" },
      { label: "失败时映射", hint: "failed under", value: (g) => el("span", null, g.mapping_versions.map((v) => badge(v,
        v === inUse[g.system] ? "muted" : "info", v === inUse[g.system] ? "the mapping in use" : "an older mapping"))) },
      { label: "操作", hint: "actions", value: (g) => el("span", { class: "flags" },
        el("button", { type: "button", class: "secondary", text: "查看 Show", onclick: () => {
          const form = $("dlq-form");
          form.elements.system.value = g.system;
          form.elements.code.value = g.code;
          loadDeadLetters(0).catch(showError);
        } }),
        params.status === "resolved" ? null : el("button", { type: "button", class: "group-retry", text: "重试本组 Retry group",
          onclick: () => retryThen(() => post("/dlq/retry/matching", { system: g.system, code: g.code })) })) },
    ], out.groups, { empty: "没有死信 No dead letters" });
    return out;
  }

  async function loadDeadLetters(offset = 0) {
    const params = formParams($("dlq-form"));
    params.status = params.status || "open";
    const [, page] = await Promise.all([
      loadDeadLetterGroups(params),
      api("/dlq", { ...params, limit: PAGE, offset }),
    ]);
    selectedLetters.clear();
    const selectButton = $("dlq-retry-selected");
    selectButton.disabled = true;
    $("dlq-summary").textContent = `共 ${page.total} 条死信 (${page.total} dead letters)`;
    fillTable($("dlq-table"), [
      { label: "选", hint: "select", value: (d) => (d.status === "open" ? el("input", {
        type: "checkbox", class: "dlq-select", "aria-label": `选择 ${d.message_id}`, onchange: (event) => {
          if (event.target.checked) selectedLetters.add(d.raw_ref);
          else selectedLetters.delete(d.raw_ref);
          selectButton.disabled = selectedLetters.size === 0;
        },
      }) : null) },
      { label: "文件/消息", hint: "message, system", value: (d) => both(d.message_id, (d.system || "").toUpperCase()) },
      { label: "位置", hint: "where", value: where },
      { label: "原因", hint: "reason, code", value: (d) => both(d.reason, d.code), class: "wrap" },
      { label: "映射", hint: "mapping", value: (d) => d.mapping_version, class: "mono" },
      { label: "失败时间", hint: "failed at", value: (d) => when(d.failed_at) },
      { label: "状态", hint: "status", value: (d) => badge(d.status === "open" ? "待处理" : "已解决", d.status === "open" ? "warn" : "ok") },
      { label: "次数", hint: "attempts", value: (d) => d.attempts, class: "num" },
      { label: "操作", hint: "action", value: (d) => (d.status === "open" ? el("button", {
        type: "button", class: "secondary dlq-retry-one", text: "重试 Retry",
        onclick: () => retryThen(() => post("/dlq/retry/matching", { raw_refs: [d.raw_ref] })),
      }) : null) },
    ], page.items, { empty: "没有死信 No dead letters" });
    pager($("dlq-pager"), page, (next) => loadDeadLetters(next).catch(showError));
  }

  // ---- 告警 Alerts (GET /alerts) ----------------------------------------------------------------
  const ALERT_KIND = {
    channel_silent: "接口无消息", dead_letters_growing: "死信增长", lag: "处理积压",
    ack_error_rate: "应答错误率", disk_free: "磁盘空间",
  };
  const SEVERITY = { critical: ["严重", "bad"], warning: ["警告", "warn"], info: ["提示", "ok"] };

  async function loadAlerts(offset = 0) {
    const current = ticket("alerts");
    const page = await api("/alerts", { ...formParams($("ops-alerts-form")), limit: PAGE, offset });
    if (!current()) return;
    $("ops-alerts-summary").textContent = `共 ${page.total} 条告警 (${page.total} alerts)`;
    fillTable($("ops-alerts-table"), [
      { label: "级别", hint: "severity", value: (a) => badge(...(SEVERITY[a.severity] || [a.severity, "warn"])) },
      { label: "告警", hint: "alert", value: (a) => both(a.title, a.alert_id) },
      { label: "类型", hint: "kind", value: (a) => both(label(ALERT_KIND, a.kind), a.kind) },
      { label: "对象", hint: "target", value: (a) => a.target, class: "mono" },
      { label: "说明", hint: "detail", value: (a) => (a.state === "open" ? a.text : a.cleared_text || a.text), class: "wrap" },
      { label: "触发时间", hint: "raised", value: (a) => when(a.raised_at) },
      { label: "解除时间", hint: "cleared", value: (a) => (a.cleared_at ? when(a.cleared_at) : null) },
      { label: "状态", hint: "state", value: (a) => (a.state === "open" ? badge("未解除 open", "bad") : badge("已解除 cleared", "ok")) },
    ], page.items, { empty: "没有告警 No alerts", rowClass: (a) => `alert-${a.state}` });
    pager($("ops-alerts-pager"), page, (next) => loadAlerts(next).catch(showError));
  }

  // ---- 系统状态 Health ------------------------------------------------------------------------
  function lagTotal(health) {
    return Object.values(health.projection_lag || {}).reduce((sum, n) => sum + n, 0);
  }

  function renderBadge(health) {
    const node = $("health-badge");
    if (!health) {
      node.className = "badge badge-bad";
      node.textContent = "● 平台不可达 unreachable";
      return;
    }
    const lag = lagTotal(health);
    if (health.database !== "ok") {
      node.className = "badge badge-bad";
      node.textContent = "● 数据库不可达 database down";
    } else if (lag > 0) {
      node.className = "badge badge-warn";
      node.textContent = `● 同步中 lag ${lag}`;
    } else {
      node.className = "badge badge-ok";
      node.textContent = "● 运行正常 OK";
    }
  }

  async function fetchHealth() {
    // /health answers 503 with a body when the database is down: read it either way.
    const response = await fetch("/health", { headers: { Accept: "application/json" }, cache: "no-store", credentials: "omit" });
    if (response.status !== 200 && response.status !== 503) throw new ApiError(response.status, await errorDetail(response));
    return response.json();
  }

  async function refreshBadge() {
    try {
      renderBadge(await fetchHealth());
    } catch (err) {
      renderBadge(null);
      if (!(err instanceof ApiError) && !(err instanceof TypeError)) throw err;
    }
  }

  async function loadHealth() {
    let health;
    try {
      health = await fetchHealth();
    } catch (err) {
      renderBadge(null);
      throw err instanceof ApiError ? err : new ApiError(0, String(err.message || err));
    }
    renderBadge(health);
    const card = (title, english, value, tone) => el("div", { class: `card card-${tone}` },
      el("div", { class: "card-value", text: value }), el("div", { class: "card-label" }, title, " ", hint(english)));
    $("health-cards").replaceChildren(
      card("平台", "status", health.status === "ok" ? "正常 ok" : "不可用", health.status === "ok" ? "ok" : "bad"),
      card("数据库", "database", health.database === "ok" ? "正常 ok" : "不可达", health.database === "ok" ? "ok" : "bad"),
      card("待投影记录", "lag, total", health.projection_lag ? lagTotal(health) : "—", lagTotal(health) ? "warn" : "ok"),
    );
    const rows = Object.entries(health.projection_lag || {}).map(([name, lag]) => ({ name, lag }));
    fillTable($("health-table"), [
      { label: "投影", hint: "projection", value: (r) => both(label(PROJECTION, r.name), r.name) },
      { label: "延迟记录数", hint: "records behind", value: (r) => r.lag, class: "num strong" },
      { label: "状态", hint: "state", value: (r) => (r.lag ? badge("追赶中", "warn") : badge("已同步", "ok")) },
    ], rows, { empty: "本进程未运行投影 No projections in this process" });
  }

  // ---- 实时事件 Live events: the SSE stream read with fetch (the key goes in a header) ---------
  const MAX_EVENT_ROWS = 200;
  let streamAbort = null;

  function stopEvents(text) {
    if (streamAbort) streamAbort.abort();
    streamAbort = null;
    $("events-start").disabled = false;
    $("events-stop").disabled = true;
    if (text) $("events-summary").textContent = text;
  }

  // Every department an event names, at any depth of its payload: `department`, `borrower_department`,
  // `to.department`... each a {code, name} (a DeptRef) or, in older payloads, plain text.
  function departments(value, key = "", found = []) {
    if (value === null || value === undefined) return found;
    if (key.includes("department")) {
      if (typeof value === "object") found.push([value.name, value.code].filter(Boolean));
      else found.push([String(value)]);
      return found;
    }
    if (typeof value === "object") {
      for (const [name, inner] of Object.entries(value)) departments(inner, name, found);
    }
    return found;
  }

  const inDepartment = (event, wanted) => !wanted
    || departments(event.payload).some((names) => names.includes(wanted));

  function eventRow(event) {
    const dept = departments(event.payload)[0];
    return el("tr", null,
      el("td", null, when(event.recorded_at || event.occurred_at) || "—"),
      el("td", { class: "mono", text: event.type }),
      el("td", { class: "mono", text: event.subject || "—" }),
      el("td", { text: dept && dept.length ? dept[0] : "—" }),
      el("td", { text: event.source ? `${String(event.source.system || "").toUpperCase()} ${event.source.message_id || ""}` : "—" }));
  }

  async function startEvents() {
    stopEvents();
    const params = formParams($("events-form"));
    const url = new URL("/events/stream", window.location.origin);
    if (params.types) url.searchParams.set("types", params.types);
    url.searchParams.set("from", params.from || "now");
    const headers = { Accept: "text/event-stream" };
    const key = storedKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    const abort = new AbortController();
    streamAbort = abort;
    $("events-start").disabled = true;
    $("events-stop").disabled = false;
    const body = el("tbody");
    $("events-table").replaceChildren(el("thead", null, el("tr", null,
      ["时间 time", "类型 type", "对象 subject", "科室 department", "来源 source"].map((t) => el("th", { text: t })))), body);
    let shown = 0;
    let response;
    try {
      response = await fetch(url, { headers, cache: "no-store", credentials: "omit", signal: abort.signal });
    } catch (err) {
      if (abort.signal.aborted) return;
      stopEvents("连接失败 connection failed");
      throw new ApiError(0, String(err.message || err));
    }
    if (!response.ok) {
      stopEvents("未连接 not connected");
      const detail = await errorDetail(response);
      if (response.status === 401) askForKey(detail);
      throw new ApiError(response.status, detail);
    }
    $("events-summary").textContent = "已连接，等待事件… connected, waiting for events";
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
          if (!data) continue; // a heartbeat comment
          const event = JSON.parse(data);
          if (!inDepartment(event, params.department)) continue;
          body.prepend(eventRow(event));
          shown += 1;
          while (body.children.length > MAX_EVENT_ROWS) body.lastChild.remove();
          $("events-summary").textContent = `已接收 ${shown} 条事件 (${shown} events; newest first, last ${MAX_EVENT_ROWS} kept)`;
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
      return;
    }
    if (streamAbort === abort) stopEvents(`流已结束，共 ${shown} 条 (stream ended, ${shown} events)`);
  }

  // ---- 指标 KPIs with charts (Apache ECharts, vendored: /console/echarts.min.js) ---------------
  const charts = {};

  function chart(id) {
    if (!window.echarts) return null; // the table below still shows every figure without it
    charts[id] = charts[id] || window.echarts.init($(id), null, { renderer: "canvas" });
    return charts[id];
  }

  window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));

  async function loadKpis() {
    const params = formParams($("kpis-form"));
    const page = await api("/kpis", { ...params, limit: 200 });
    const from = page.period_from.slice(0, 10);
    const to = page.period_to.slice(0, 10);
    $("kpis-summary").textContent = `${from} 至 ${to}，共 ${page.total} 组 (${page.total} groups, ${from} – ${to})`;
    const rows = page.items;
    // As many as the chart area allows: the table below lists every group.
    const top = rows.slice(0, 30);
    const names = top.map((k) => k.name || k.key || "—");
    const tooltip = { trigger: "axis", renderMode: "richText" }; // no HTML tooltips (CSP: no inline styles)
    const axisLabel = { interval: 0, rotate: names.length > 6 ? 40 : 0, width: 90, overflow: "truncate" };
    const uptime = chart("kpis-uptime");
    if (uptime) {
      uptime.setOption({
        animation: false, tooltip, grid: { left: 48, right: 16, top: 16, bottom: 90 },
        xAxis: { type: "category", data: names, axisLabel },
        yAxis: { type: "value", max: 100 },
        series: [{ name: "开机率 uptime %", type: "bar", data: top.map((k) => k.uptime_pct), itemStyle: { color: "#1e7b34" } }],
      }, true);
    }
    const repairs = chart("kpis-repairs");
    if (repairs) {
      repairs.setOption({
        animation: false, tooltip, legend: { top: 0 }, grid: { left: 48, right: 48, top: 28, bottom: 90 },
        xAxis: { type: "category", data: names, axisLabel },
        yAxis: [{ type: "value", name: "次" }, { type: "value", name: "h" }],
        series: [
          { name: "维修次数 repairs", type: "bar", data: top.map((k) => k.repairs), itemStyle: { color: "#0b6bcb" } },
          { name: "MTTR (h)", type: "line", yAxisIndex: 1, data: top.map((k) => k.mttr_hours), itemStyle: { color: "#b42318" } },
        ],
      }, true);
    }
    fillTable($("kpis-table"), [
      { label: "名称", hint: "name", value: (k) => both(k.name || k.key, k.key !== k.name ? k.key : null) },
      { label: "设备数", hint: "devices", value: (k) => k.devices, class: "num" },
      { label: "开机率", hint: "uptime %", value: (k) => `${numberFormat.format(k.uptime_pct)}%`, class: "num" },
      { label: "维修", hint: "repairs", value: (k) => k.repairs, class: "num" },
      { label: "MTTR", hint: "hours", value: (k) => (k.mttr_hours === null ? null : numberFormat.format(k.mttr_hours)), class: "num" },
      { label: "MTBF", hint: "hours", value: (k) => (k.mtbf_hours === null ? null : numberFormat.format(k.mtbf_hours)), class: "num" },
      { label: "维修费用", hint: "cost", value: (k) => amount(k.maintenance_cost, k.currency), class: "num" },
      { label: "使用率", hint: "utilisation %", value: (k) => `${numberFormat.format(k.utilisation_pct)}%`, class: "num" },
    ], rows, { empty: "期间内没有数据 No data in the period" });
  }

  // ---- 能耗 Energy: building -> floor -> zone -> meter drill-down, charts, anomalies ------------
  const QUANTITY = {
    electricity_kwh: "电 electricity", electricity_kw: "电功率 power", water_m3: "水 water", gas_m3: "燃气 gas",
    chilled_water_kwh: "冷量 chilled water", hot_water_kwh: "热量 hot water", zone_temp_c: "室温 zone temp",
    setpoint_c: "设定温度 set point", heating_valve_pct: "热水阀 heating valve", cooling_valve_pct: "冷水阀 cooling valve",
    damper_pct: "风阀 damper",
  };
  const ANOMALY = {
    base_load_leak: "夜间基荷泄漏 night base-load leak", surge: "用量突增 surge",
    simultaneous_heating_cooling: "同时供冷供热 heating and cooling at once", stuck_meter: "表计卡滞 stuck meter",
    gap: "数据缺失 gap",
  };
  const LEVEL = { campus: "园区", building: "楼栋", floor: "楼层", zone: "区域", meter: "表计", department: "科室" };
  const GRAIN = { hour: "小时 hour", day: "日 day", month: "月 month" };
  const energy = { zones: null, path: [{ level: "campus", id: null }] };
  const energyHere = () => energy.path[energy.path.length - 1];

  // Local dates as YYYY-MM-DD strings, shifted as calendar dates (no time zone involved).
  function addDays(day, n) {
    const t = new Date(`${day}T00:00:00Z`);
    t.setUTCDate(t.getUTCDate() + n);
    return t.toISOString().slice(0, 10);
  }

  function monthsBefore(day, n) {
    const t = new Date(`${day.slice(0, 7)}-01T00:00:00Z`);
    t.setUTCMonth(t.getUTCMonth() - n);
    return t.toISOString().slice(0, 10);
  }

  // The range a grain opens on, ending at `to`: 2 days of hours, 2 weeks of days, 12 months.
  function energyRange(grain, to) {
    if (grain === "hour") return addDays(to, -1);
    if (grain === "month") return monthsBefore(to, 11);
    return addDays(to, -13);
  }

  function energyName(step) {
    const zones = energy.zones || [];
    if (step.level === "campus") return "园区 Campus";
    if (step.level === "building") {
      const named = zones.find((z) => z.building === step.id && z.building_name);
      return named ? `${step.id} ${named.building_name}` : step.id;
    }
    if (step.level === "floor") return step.id.split("/")[1] || "（未分楼层）";
    if (step.level === "zone") {
      const zone = zones.find((z) => z.zone === step.id);
      return zone && zone.place ? `${step.id} ${zone.place}` : step.id;
    }
    if (step.level === "department") {
      const zone = zones.find((z) => z.dept_code === step.id);
      return zone && zone.dept_name ? zone.dept_name : step.id;
    }
    return step.id;
  }

  function energyChoices(form) {
    const zones = energy.zones;
    const quantities = [...new Set(zones.flatMap((z) => z.meters.map((m) => m.quantity)))]
      .sort((a, b) => Object.keys(QUANTITY).indexOf(a) - Object.keys(QUANTITY).indexOf(b));
    form.elements.quantity.replaceChildren(...quantities.map((q) => el("option", { value: q, text: label(QUANTITY, q) })));
    const departments = new Map();
    for (const z of zones) if (z.dept_code) departments.set(z.dept_code, z.dept_name || z.dept_code);
    form.elements.department.replaceChildren(form.elements.department.firstElementChild,
      ...[...departments].map(([code, name]) => el("option", { value: code, text: `${name} ${code}` })));
    // Open on the latest day with readings: a BMS export is often days behind the clock.
    const last = zones.reduce((top, z) => (z.last_at > top ? z.last_at : top), "");
    const to = last ? new Date(last).toLocaleDateString("sv-SE") : today();
    form.elements.to.value = to;
    form.elements.from.value = energyRange(form.elements.grain.value, to);
  }

  function energyCrumbs() {
    const path = energy.path;
    $("energy-crumbs").replaceChildren(...path.flatMap((step, i) => [
      i ? el("span", { class: "sep", text: "›" }) : null,
      i === path.length - 1
        ? el("strong", { class: "crumb", "aria-current": "location", text: energyName(step) })
        : el("button", { type: "button", class: "crumb secondary", onclick: () => energyGo(path.slice(0, i + 1)) }, energyName(step)),
    ]).filter(Boolean));
  }

  function energyGo(path) {
    energy.path = path;
    clearNotice();
    loadEnergy().catch(showError);
  }

  const figure = (value, unit) => (value === null || value === undefined ? null : `${numberFormat.format(value)} ${unit || ""}`.trim());
  const pct = (value) => (value === null || value === undefined ? null : `${value > 0 ? "+" : ""}${numberFormat.format(value)}%`);

  // Where a per-bed-day figure's bed-days come from: the HIS census (occupied) or open beds x days.
  const BED_BASIS = { census: "住院日报 census", beds: "开放床位 open beds" };
  function bedBasis(rows) {
    const bases = new Set(rows.filter((r) => r.bed_days).map((r) => r.bed_days_basis));
    return bases.size === 1 ? BED_BASIS[[...bases][0]] || [...bases][0] : "混合 mixed";
  }

  function energyCards(rows) {
    const byQuantity = new Map();
    for (const r of rows) {
      if (!byQuantity.has(r.quantity)) byQuantity.set(r.quantity, []);
      byQuantity.get(r.quantity).push(r);
    }
    $("energy-cards").replaceChildren(...[...byQuantity].map(([quantity, list]) => {
      const summed = list[0].aggregate === "sum";
      const total = list.reduce((a, r) => a + r.value, 0);
      const value = summed ? total : total / list.length;
      const area = list[0].area_m2;
      const beds = list.reduce((a, r) => a + (r.bed_days || 0), 0);
      const extra = summed ? [
        area ? `${numberFormat.format(value / area)} ${list[0].unit}/m²` : null,
        beds ? `${numberFormat.format(value / beds)} ${list[0].unit}/床日 bed-day (${bedBasis(list)})` : null,
      ].filter(Boolean).join(" · ") : "平均 mean";
      return el("div", { class: "card card-info", id: `energy-card-${quantity}` },
        el("div", { class: "card-value", text: figure(value, list[0].unit) }),
        el("div", { class: "card-label" }, label(QUANTITY, quantity), extra ? el("span", { class: "sub", text: extra }) : null));
    }));
  }

  function energyChart(rows, quantity) {
    const shown = rows.filter((r) => r.quantity === quantity);
    const unit = shown.length ? shown[0].unit : "";
    $("energy-chart-title").replaceChildren(`${label(QUANTITY, quantity) || "用量"} `, hint(unit ? `(${unit})` : ""));
    const draw = chart("energy-chart");
    if (!draw) return;
    const periods = shown.map((r) => r.period);
    const series = [{ name: "本期 this period", type: "bar", data: shown.map((r) => r.value), itemStyle: { color: "#0b6bcb" } }];
    if (shown.some((r) => r.previous_period !== null)) {
      series.push({ name: "上期 previous (环比)", type: "line", data: shown.map((r) => r.previous_period), itemStyle: { color: "#8a5a00" } });
    }
    if (shown.some((r) => r.same_period_last_year !== null)) {
      series.push({ name: "去年同期 last year (同比)", type: "line", data: shown.map((r) => r.same_period_last_year), itemStyle: { color: "#616e7c" } });
    }
    draw.setOption({
      animation: false, tooltip: { trigger: "axis", renderMode: "richText" }, legend: { top: 0 },
      grid: { left: 56, right: 12, top: 32, bottom: 56 },
      xAxis: { type: "category", data: periods, axisLabel: { rotate: periods.length > 8 ? 40 : 0 } },
      yAxis: { type: "value", name: unit },
      series,
    }, true);
  }

  function energyChildren(children, level) {
    const quantities = [...new Set(children.map((c) => c.quantity))]
      .sort((a, b) => Object.keys(QUANTITY).indexOf(a) - Object.keys(QUANTITY).indexOf(b));
    const rows = new Map();
    for (const c of children) {
      const key = c.id === null ? "" : c.id;
      if (!rows.has(key)) rows.set(key, { id: c.id, name: c.name, level: c.level, values: {} });
      rows.get(key).values[c.quantity] = c;
    }
    const childLevel = children.length ? children[0].level : null;
    const title = childLevel ? `${LEVEL[childLevel]} ${childLevel}` : "下级";
    fillTable($("energy-children"), [
      { label: title, value: (r) => both(r.id === null ? "（未分区）" : (r.level === "floor" ? r.id.split("/")[1] || "（未分楼层）" : r.id), r.name) },
      ...quantities.map((q) => ({
        label: label(QUANTITY, q), class: "num",
        value: (r) => (r.values[q] ? figure(r.values[q].value, r.values[q].unit) : null),
      })),
    ], [...rows.values()], {
      empty: level === "meter" ? "表计为最末一级 A meter is the last level" : "期间内没有数据 No data in the period",
      rowClass: (r) => (r.id === null ? "leaf" : `energy-child`),
      onRow: (r) => {
        if (r.id === null) return;
        energyGo([...energy.path, { level: r.level, id: r.id }]);
      },
    });
  }

  function inLevel(a, step) {
    const { level, id } = step;
    if (level === "campus") return true;
    if (level === "building") return a.building === id;
    if (level === "floor") {
      const [building, floor] = id.split("/");
      return (energy.zones || []).some((z) => z.zone === a.zone && z.building === building && (z.floor || "") === floor);
    }
    if (level === "zone") return a.zone === id;
    if (level === "meter") return a.meter_id === id;
    return a.dept_code === id || a.dept_name === id;
  }

  function evidence(value, a, name) {
    if (value === null || value === undefined) return null;
    // Consumption evidence is per hour; positions and temperatures are in their own unit.
    const perHour = a.unit && !["%", "degC"].includes(a.unit);
    return el("span", { class: `evidence-${name}`, text: `${numberFormat.format(value)} ${a.unit || ""}${perHour ? "/h" : ""}` });
  }

  function anomalyCard(a) {
    return el("article", { class: `anomaly ${a.cleared_at ? "anomaly-cleared" : "anomaly-open"}`, "data-id": a.anomaly_id, "data-kind": a.kind },
      el("div", { class: "anomaly-head" }, badge(label(ANOMALY, a.kind), a.cleared_at ? "muted" : "bad"), " ",
        a.cleared_at ? badge("已消除 cleared", "ok") : badge("未消除 open", "warn")),
      definitionList([
        ["表计 meter", a.meter_id], ["区域 zone", a.zone], ["科室 department", a.dept_name || a.dept_code],
        ["时段 window", el("span", { class: "evidence-window" }, when(a.window_start), " – ", when(a.window_end))],
        ["基线 baseline", evidence(a.baseline, a, "baseline")],
        ["实测 observed", evidence(a.observed, a, "observed")],
        ["说明 reason", a.reason],
      ]));
  }

  function energyPeriods(rows, quantity) {
    const shown = rows.filter((r) => r.quantity === quantity);
    fillTable($("energy-periods"), [
      { label: "时段", hint: "period", value: (r) => r.period, class: "mono" },
      { label: "用量", hint: "value", value: (r) => figure(r.value, r.unit), class: "num strong" },
      { label: "上期", hint: "previous", value: (r) => figure(r.previous_period, r.unit), class: "num" },
      { label: "环比", hint: "vs previous", value: (r) => pct(r.change_vs_previous_pct), class: "num" },
      { label: "去年同期", hint: "last year", value: (r) => figure(r.same_period_last_year, r.unit), class: "num" },
      { label: "同比", hint: "vs last year", value: (r) => pct(r.change_vs_last_year_pct), class: "num" },
      { label: "每平方米", hint: "per m²", value: (r) => (r.per_m2 === null ? null : numberFormat.format(r.per_m2)), class: "num" },
      { label: "每床日", hint: "per bed-day", value: (r) => (r.per_bed_day === null || r.per_bed_day === undefined ? null : numberFormat.format(r.per_bed_day)), class: "num" },
      { label: "床日依据", hint: "bed-days from", value: (r) => (r.bed_days ? BED_BASIS[r.bed_days_basis] || r.bed_days_basis : null) },
    ], shown, { empty: "期间内没有数据 No data in the period" });
  }

  async function loadEnergy() {
    const form = $("energy-form");
    if (!energy.zones) {
      energy.zones = (await apiAll("/energy/zones")).items;
      energyChoices(form);
    }
    energyCrumbs();
    if (!energy.zones.length) {
      $("energy-summary").textContent = "暂无能耗数据 No meter readings yet";
      return;
    }
    const { grain, from, to, quantity } = formParams(form);
    const step = energyHere();
    const range = { from, to };
    const [consumption, children, found] = await Promise.all([
      api("/energy/consumption", { level: step.level, id: step.id, grain, ...range }),
      step.level === "meter" ? Promise.resolve({ items: [] }) : api("/energy/breakdown", { level: step.level, id: step.id, ...range }),
      api("/energy/anomalies", { ...range, zone: step.level === "zone" ? step.id : null, limit: 500 }),
    ]);
    const rows = consumption.items;
    const where = step.level === "campus" ? energyName(step) : `${LEVEL[step.level]} ${energyName(step)}`;
    $("energy-summary").textContent = `${where} · ${from} 至 ${to} · ${GRAIN[grain]}`;
    energyCards(rows);
    energyChart(rows, quantity);
    energyChildren(children.items, step.level);
    const mine = found.items.filter((a) => inLevel(a, step));
    $("energy-anomalies-summary").textContent = `${mine.length} 项异常 anomalies`
      + (found.total > found.items.length ? ` (前 ${found.items.length} / ${found.total} 项 first of all)` : "");
    $("energy-anomalies").replaceChildren(...(mine.length ? mine.map(anomalyCard)
      : [el("p", { class: "placeholder", text: "期间内没有异常 No anomalies in the period" })]));
    energyPeriods(rows, quantity);
  }

  // Another key may see other departments' zones: the hierarchy is asked for again.
  function forgetEnergy() {
    energy.zones = null;
    energy.path = [{ level: "campus", id: null }];
    $("energy-form").elements.to.value = "";
  }

  function bindEnergy() {
    const form = $("energy-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearNotice();
      loadEnergy().catch(showError);
    });
    form.elements.grain.addEventListener("change", () => {
      if (form.elements.to.value) form.elements.from.value = energyRange(form.elements.grain.value, form.elements.to.value);
      loadEnergy().catch(showError);
    });
    form.elements.quantity.addEventListener("change", () => loadEnergy().catch(showError));
    form.elements.department.addEventListener("change", () => {
      const code = form.elements.department.value;
      energyGo(code ? [{ level: "campus", id: null }, { level: "department", id: code }] : [{ level: "campus", id: null }]);
    });
  }

  // ---- 设备健康 Device health: early warnings by department, telemetry charts per device ---------
  const CATEGORY_ZH = { battery: "电池衰减", errors: "故障码反复出现", usage: "预防性维护超期", alarms: "报警频次异常" };

  async function loadDeviceHealth() {
    const form = $("devicehealth-form");
    const params = { limit: 500 };
    if (form.elements.department.value.trim()) params.department = form.elements.department.value.trim();
    if (form.elements.warned.checked) params.warned = "true";
    const current = ticket("devicehealth");
    const page = await api("/devices/health", params);
    if (!current()) return;
    const warned = page.items.filter((d) => d.warnings.length).length;
    $("devicehealth-summary").textContent = `共 ${page.total} 台设备，${warned} 台有预警 (${page.total} devices, ${warned} warned)`;
    fillTable($("devicehealth-table"), [
      { label: "科室", hint: "department", value: (d) => d.dept_name || d.dept_code },
      { label: "设备", hint: "device", value: (d) => both(d.value, d.asset_id || "未登记 provisional"), class: "mono" },
      { label: "类型", hint: "type", value: (d) => d.device_type },
      { label: "运行时间", hint: "hours", value: (d) => (d.usage_hours === null ? null : numberFormat.format(d.usage_hours)), class: "num" },
      { label: "电池容量", hint: "battery %", value: (d) => (d.battery_pct === null ? null : `${numberFormat.format(d.battery_pct)}%`), class: "num" },
      { label: "预警", hint: "early warnings", value: (d) => (d.warnings.length
        ? el("ul", { class: "warnings" }, d.warnings.map((w) => el("li", null,
          el("strong", { text: `${CATEGORY_ZH[w.category] || w.category}：` }), w.reason)))
        : null) },
    ], page.items, {
      empty: "没有设备预警 No device warnings",
      rowClass: (d) => (d.warnings.length ? "row-bad" : null),
      onRow: (d) => showDeviceTelemetry(d).catch(showError),
    });
  }

  // The device whose telemetry is shown, for the range selector.
  let shownDevice = null;

  async function showDeviceTelemetry(device) {
    shownDevice = device;
    const id = device.asset_id || device.subject;
    const page = await api(`/assets/${encodeURIComponent(id)}/telemetry`, { limit: 50 });
    $("devicehealth-detail").hidden = false;
    $("devicehealth-title").textContent = `${device.value} · ${device.dept_name || ""}`;
    fillTable($("devicehealth-records"), [
      { label: "时间", hint: "time", value: (r) => r.at.slice(0, 16).replace("T", " ") },
      { label: "运行时间", hint: "hours", value: (r) => r.usage_hours, class: "num" },
      { label: "开机次数", hint: "power-on", value: (r) => r.power_on_cycles, class: "num" },
      { label: "电池", hint: "battery %", value: (r) => r.battery_pct, class: "num" },
      { label: "报警", hint: "alarms", value: (r) => r.alarm_count, class: "num" },
      { label: "错误代码", hint: "error codes", value: (r) => r.errors.map((e) => e.code).join(" "), class: "mono" },
    ], page.items, { empty: "无遥测 No telemetry" });
    await showDeviceSeries();
  }

  // Charts read hour or day buckets (GET .../telemetry/series): the hub keeps raw records for a
  // window and rolls older ones up, so a year reads 365 buckets, not every record.
  async function showDeviceSeries() {
    const device = shownDevice;
    if (!device) return;
    const id = device.asset_id || device.subject;
    const days = Number($("devicehealth-range").elements.days.value);
    // Ending on the device's latest day (the hub's default), hours for a week, days beyond.
    const url = new URL(`/assets/${encodeURIComponent(id)}/telemetry/series`, window.location.origin);
    url.searchParams.append("metric", "battery_pct");
    url.searchParams.append("metric", "alarm_count");
    const body = await api(`${url.pathname}${url.search}`, { days, grain: days <= 7 ? "hour" : "day" });
    if (shownDevice !== device) return;
    const series = Object.fromEntries(body.series.map((s) => [s.metric, s.buckets]));
    const battery = series.battery_pct || [];
    const alarmBuckets = series.alarm_count || [];
    const label = (b) => b.label;
    const records = alarmBuckets.reduce((n, b) => n + b.count, 0);
    $("devicehealth-series-summary").textContent = `${body.from} 至 ${body.to} · ${body.grain === "hour" ? "按小时 by hour" : "按天 by day"} · ${records} 条记录 records`;
    const tooltip = { trigger: "axis", renderMode: "richText" };
    const batteryChart = chart("devicehealth-battery");
    if (batteryChart) {
      batteryChart.setOption({
        animation: false, tooltip, grid: { left: 48, right: 16, top: 16, bottom: 40 },
        xAxis: { type: "category", data: battery.map(label) }, yAxis: { type: "value", scale: true },
        series: [
          { name: "最低 min", type: "line", showSymbol: false, data: battery.map((b) => b.min), lineStyle: { opacity: 0.3 }, itemStyle: { color: "#0b6bcb" } },
          { name: "电池容量 % mean", type: "line", showSymbol: false, data: battery.map((b) => b.mean), itemStyle: { color: "#0b6bcb" } },
          { name: "最高 max", type: "line", showSymbol: false, data: battery.map((b) => b.max), lineStyle: { opacity: 0.3 }, itemStyle: { color: "#0b6bcb" } },
        ],
      }, true);
    }
    const alarmChart = chart("devicehealth-alarms");
    if (alarmChart) {
      alarmChart.setOption({
        animation: false, tooltip, grid: { left: 48, right: 16, top: 16, bottom: 40 },
        xAxis: { type: "category", data: alarmBuckets.map(label) }, yAxis: { type: "value" },
        series: [{ name: "报警 alarms", type: "bar", data: alarmBuckets.map((b) => b.sum), itemStyle: { color: "#b42318" } }],
      }, true);
    }
  }

  // ---- 审计 Audit: ledger verification, last checkpoint, as-of view of one asset ----------------
  async function loadAudit() {
    const date = $("asof-form").elements.date;
    if (!date.value) date.value = today();
    const cards = $("audit-cards");
    cards.replaceChildren(el("p", { class: "placeholder", text: "校验中… Verifying" }));
    const s = await api("/audit/ledger");
    const card = (title, english, value, tone, id) => el("div", { class: `card card-${tone}`, id },
      el("div", { class: "card-value", text: value }), el("div", { class: "card-label" }, title, " ", hint(english)));
    const last = s.last_checkpoint;
    cards.replaceChildren(
      card("账本校验", "verification", s.intact ? "完整 intact" : `发现 ${s.findings_total} 处异常 tampered`, s.intact ? "ok" : "bad", "audit-intact"),
      card("账链", "chains", s.chains, "info"),
      card("条目", "entries", numberFormat.format(s.entries), "info"),
      card("签名校验", "seals checked", s.seals_checked, s.seals_checked ? "ok" : "warn"),
      card("最近检查点", last ? `last checkpoint: ${last.topic}#${last.partition}, ${last.count} entries` : "last checkpoint",
        last ? timeFormat.format(new Date(last.created_at)) : "无 none", last ? "info" : "warn", "audit-checkpoint"),
      card("校验于", `verified in ${s.elapsed_ms} ms`, timeFormat.format(new Date(s.verified_at)), "muted"),
    );
    fillTable($("audit-findings"), [
      { label: "类型", hint: "kind", value: (f) => f.kind, class: "mono" },
      { label: "位置", hint: "where", value: (f) => f.where, class: "mono" },
      { label: "说明", hint: "detail", value: (f) => f.detail, class: "wrap" },
    ], s.findings, { empty: "未发现篡改 No evidence of tampering" });
  }

  const AS_OF_FIELDS = [
    ["名称 name", (a) => a.name], ["状态 status", (a) => label(STATUS, a.status)],
    ["科室 department", (a) => a.department_name || a.department_code], ["位置 location", (a) => a.location],
    ["净值 net value", (a) => amount(a.net_value, a.currency)],
    ["计量至 calibrated until", (a) => (a.calibration ? a.calibration.valid_until : null)],
    ["借出 on loan", (a) => (a.on_loan ? "是 yes" : "否 no")],
  ];

  async function showAsOf() {
    const { asset, date } = formParams($("asof-form"));
    const now = await api(`/assets/${encodeURIComponent(asset)}`);
    let then = null;
    try {
      then = await api(`/assets/${encodeURIComponent(now.asset_id)}`, { as_of: `${date}T23:59:59` });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err; // 404: not known yet on that day
    }
    const side = (title, english, a, id) => el("div", { class: "side", id }, section(title, english,
      a ? definitionList(AS_OF_FIELDS.map(([term, get]) => [term, get(a) || "—"]))
        : el("p", { class: "placeholder", text: "当日尚无此设备的记录 No record of this device yet on that day" })));
    $("asof-result").replaceChildren(
      side(`${date} 当日`, "as of that day (business time)", then, "asof-then"),
      side("现在", "now", now, "asof-now"),
    );
  }

  // ---- Views and navigation ------------------------------------------------------------------
  const VIEWS = {
    channels: loadChannels,
    assets: () => loadAssets(0),
    availability: loadAvailability,
    devicehealth: loadDeviceHealth,
    inventory: () => loadInventory(0),
    workorders: () => loadWorkOrders(0),
    compliance: () => loadCompliance(0),
    messages: () => loadMessages(0),
    notifications: () => loadNotifications(0),
    dlq: () => loadDeadLetters(0),
    events: async () => { $("events-summary").textContent = "未连接，按“开始”接收 (press Start)"; },
    kpis: loadKpis,
    energy: loadEnergy,
    audit: loadAudit,
    alerts: () => loadAlerts(0),
    health: loadHealth,
  };

  const currentView = () => {
    const name = window.location.hash.replace(/^#/, "");
    return Object.hasOwn(VIEWS, name) ? name : "channels";
  };

  function show(name) {
    clearNotice();
    if (name !== "events") stopEvents(); // leaving the page closes its stream
    for (const section of document.querySelectorAll("section.view")) section.hidden = section.id !== `view-${name}`;
    for (const link of document.querySelectorAll("nav.tabs a")) {
      if (link.dataset.view === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    return VIEWS[name]().catch(showError);
  }

  function bindForm(id, load) {
    const form = $(id);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      clearNotice();
      load().catch(showError);
    });
    // The reset event fires before the fields are cleared: search again once they are.
    form.addEventListener("reset", () => setTimeout(() => load().catch(showError), 0));
  }

  function start() {
    renderKeyState();
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("key-input");
      const key = input.value.trim();
      input.value = "";
      if (key) sessionStorage.setItem(KEY_STORE, key);
      renderKeyState();
      forgetEnergy();
      show(currentView());
    });
    $("key-clear").addEventListener("click", () => {
      sessionStorage.removeItem(KEY_STORE);
      $("key-input").value = "";
      renderKeyState();
      forgetEnergy();
      show(currentView());
    });
    bindForm("assets-form", () => loadAssets(0));
    bindForm("availability-form", loadAvailability);
    bindForm("devicehealth-form", loadDeviceHealth);
    $("devicehealth-range").elements.days.addEventListener("change", () => showDeviceSeries().catch(showError));
    bindForm("stock-form", () => loadInventory(0));
    bindForm("workorders-form", () => loadWorkOrders(0));
    bindForm("compliance-form", () => loadCompliance(0));
    bindForm("messages-form", () => loadMessages(0));
    bindForm("notifications-form", () => loadNotifications(0));
    bindForm("dlq-form", () => loadDeadLetters(0));
    $("dlq-retry-selected").addEventListener("click", () => retryThen(
      () => post("/dlq/retry/matching", { raw_refs: [...selectedLetters] })));
    $("dlq-retry-matching").addEventListener("click", () => {
      const { system, code } = formParams($("dlq-form"));
      retryThen(() => post("/dlq/retry/matching", { system, code }));
    });
    $("events-form").addEventListener("submit", (event) => {
      event.preventDefault();
      clearNotice();
      startEvents().catch(showError);
    });
    $("events-stop").addEventListener("click", () => stopEvents("已停止 stopped"));
    bindForm("kpis-form", loadKpis);
    bindEnergy();
    $("audit-verify").addEventListener("click", () => loadAudit().catch(showError));
    $("asof-form").addEventListener("submit", (event) => {
      event.preventDefault();
      clearNotice();
      showAsOf().catch(showError);
    });
    bindForm("ops-alerts-form", () => loadAlerts(0));
    $("health-refresh").addEventListener("click", () => loadHealth().catch(showError));
    $("channels-refresh").addEventListener("click", () => loadChannels().catch(showError));
    window.addEventListener("hashchange", () => show(currentView()));
    show(currentView());
    refreshBadge();
    setInterval(refreshBadge, 30000);
    // The Channels page is what an integrator on call leaves open: it refreshes itself.
    setInterval(() => {
      if (currentView() === "channels" && !document.hidden) loadChannels().catch(() => {});
    }, 30000);
  }

  start();
})();
