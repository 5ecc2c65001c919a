/*
 * The office pages (/finance, /oversight, /admin): plain DOM and fetch, served by the binary.
 * Each page takes its token from `?token=` once, keeps it in this tab's sessionStorage and drops
 * it from the address bar, then calls the GraphQL API. Charts are SVG drawn by the server
 * (/charts/*.svg). The finance page follows `moneyArrived` over graphql-transport-ws (our own
 * client, /assets/graphql-transport-ws.js) and falls back to polling when WebSockets are blocked.
 */
"use strict";

(function () {
  const TOKEN_KEY = "feeledger.office.token";

  function takeToken() {
    const url = new URL(location.href);
    const fromUrl = url.searchParams.get("token");
    let token = fromUrl;
    try {
      if (fromUrl) sessionStorage.setItem(TOKEN_KEY, fromUrl);
      token = sessionStorage.getItem(TOKEN_KEY) || fromUrl;
    } catch (_) {
      // Storage disabled: keep the token for this page only.
    }
    if (fromUrl !== null) {
      url.searchParams.delete("token");
      history.replaceState(history.state, "", url.pathname + url.search + url.hash);
    }
    return token ? token.trim() : null;
  }

  const TOKEN = takeToken();

  class ApiError extends Error {
    constructor(code, message) {
      super(message || code);
      this.code = code;
    }
  }

  async function gql(query, variables) {
    let response;
    try {
      response = await fetch("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ query, variables: variables || {} }),
        cache: "no-store",
        credentials: "omit",
      });
    } catch (_) {
      throw new ApiError("NETWORK", "Không kết nối được máy chủ.");
    }
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      throw new ApiError("HTTP", `Máy chủ trả lời ${response.status}.`);
    }
    if (body.errors && body.errors.length) {
      const e = body.errors[0];
      throw new ApiError((e.extensions && e.extensions.code) || "ERROR", e.message);
    }
    return body.data;
  }

  // --- small DOM helpers ------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function fill(id, ...children) {
    const el = $(id);
    el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
    return el;
  }

  const money = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("vi-VN") + " đ");
  const pct = (v) => (v === null || v === undefined ? "–" : String(v).replace(".", ",") + "%");
  const points = (v) => (v === null || v === undefined ? "–" : (v.startsWith("-") ? "" : "+") + v.replace(".", ","));
  const dmy = (iso) => (iso ? iso.slice(0, 10).split("-").reverse().join("/") : "–");

  function todayIso() {
    // The Vietnamese calendar day (UTC+7), whatever the browser's zone.
    return new Date(Date.now() + 7 * 3600 * 1000).toISOString().slice(0, 10);
  }

  function monthIso(offset) {
    const d = new Date(Date.now() + 7 * 3600 * 1000);
    d.setUTCDate(1);
    d.setUTCMonth(d.getUTCMonth() + (offset || 0));
    return d.toISOString().slice(0, 7);
  }

  function withToken(path, params) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) if (v) url.searchParams.set(k, v);
    url.searchParams.set("token", TOKEN || "");
    return url.pathname + url.search;
  }

  function banner(message, kind) {
    const el = $("banner");
    if (!el) return;
    el.textContent = message || "";
    el.dataset.kind = kind || "error";
    el.hidden = !message;
  }

  function showError(error) {
    const known = {
      UNAUTHENTICATED: "Mã truy cập (token) không hợp lệ hoặc đã hết hạn. Hãy mở lại trang với ?token=…",
      FORBIDDEN: "Mã truy cập của bạn không được phép xem hoặc làm việc này.",
    };
    banner(known[error.code] || error.message || String(error));
  }

  function setLive(state, text) {
    const el = $("live-indicator");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
  }

  const LEVELS = {
    PROVINCE: "Cấp tỉnh",
    DEPARTMENT: "Sở, ban, ngành",
    DISTRICT: "UBND cấp huyện",
    COMMUNE: "UBND cấp xã",
  };
  const VERDICT = (met) => (met === true ? "Đạt" : met === false ? "Không đạt" : "Không xếp loại");

  async function me() {
    const data = await gql("query { me { subject role agencyCode } }");
    const who = $("who");
    if (who) who.textContent = `${data.me.subject} (${data.me.role})`;
    return data.me;
  }

  // --- finance --------------------------------------------------------------------------------

  // One table of labels with the downloads: /assets/labels.js, generated by the server.
  const LABELS = window.FEELEDGER_LABELS || { exceptionKind: {}, channel: {}, feeKind: {} };
  const EXCEPTION_LABELS = LABELS.exceptionKind;
  const CHANNEL_LABELS = LABELS.channel;

  async function financePage() {
    const viewer = await me();
    const agencySelect = $("agency");
    if (viewer.agencyCode) {
      agencySelect.replaceChildren(h("option", { value: viewer.agencyCode }, viewer.agencyCode));
      agencySelect.disabled = true;
    } else {
      const data = await gql("query { agencies { code name } }");
      agencySelect.replaceChildren(...data.agencies.map((a) => h("option", { value: a.code }, `${a.name} (${a.code})`)));
    }
    const dateInput = $("date");
    dateInput.value = new URL(location.href).searchParams.get("date") || todayIso();
    const agency = () => agencySelect.value;

    const EXPLAINED_BY = { REFUND: "Hoàn trả", REMITTANCE: "Nộp KBNN" };

    // A reason typed beside an item and a button that resolves it by hand (resolveReconciliationItem).
    function resolveControls(item, label) {
      const reason = h("input", { placeholder: "Lý do", "aria-label": `Lý do giải trình ${label}`, size: 18 });
      const button = h("button", { class: "btn ghost", type: "button" }, "Giải trình");
      button.addEventListener("click", () => {
        const text = reason.value.trim();
        if (!text) {
          banner("Nhập lý do trước khi giải trình.", "error");
          return;
        }
        act(() => gql(`mutation($i: ResolveItemInput!) { resolveReconciliationItem(input: $i) { reason } }`,
          { i: { agencyCode: agency(), reason: text, ...item } }), `Đã giải trình ${label}.`);
      });
      return [reason, button];
    }

    let shownItems = null;
    async function loadReconciliation() {
      const data = await gql(
        `query($a: String!, $d: Date!) { dailyReconciliation(agencyCode: $a, date: $d) {
          ledgerTotal bankTotal matchedCount matchedTotal balanced allExplained oldestExceptionAgeDays
          perChannel { channel count total }
          exceptions { kind side amount reference caseCode paymentId statementLineId on ageDays }
          debits { statementLineId amount description explainedBy reference } debitsTotal
          unsettled { kind day amount }
          resolutions { statementLineId paymentId reason } } }`,
        { a: agency(), d: dateInput.value },
      );
      const r = data.dailyReconciliation;
      const resolution = (line, payment) =>
        r.resolutions.find((x) => (line && x.statementLineId === line) || (payment && x.paymentId === payment));
      const open =
        r.exceptions.filter((e) => !resolution(e.statementLineId, e.paymentId)).length +
        r.debits.filter((d) => !d.explainedBy && !resolution(d.statementLineId, null)).length +
        r.unsettled.length;
      fill(
        "recon-summary",
        h("div", { class: "stat" }, h("span", {}, "Theo sổ"), h("strong", {}, money(r.ledgerTotal))),
        h("div", { class: "stat" }, h("span", {}, "Theo sao kê"), h("strong", {}, money(r.bankTotal))),
        h("div", { class: "stat" }, h("span", {}, "Đã khớp"), h("strong", {}, `${r.matchedCount} · ${money(r.matchedTotal)}`)),
        h("div", { class: "stat" }, h("span", {}, "Tiền ra (sao kê)"), h("strong", {}, money(r.debitsTotal))),
        h("div", { class: r.allExplained ? "stat ok" : "stat bad", "data-testid": "recon-balanced", "data-explained": String(r.allExplained) },
          h("span", {}, "Kết quả"), h("strong", {}, r.allExplained ? "Đã giải trình hết" : `${open} mục chưa giải trình`)),
      );
      fill(
        "per-channel",
        r.perChannel.map((c) => h("li", {}, `${CHANNEL_LABELS[c.channel] || c.channel}: ${c.count} khoản · ${money(c.total)}`)),
      );
      // Unchanged items: keep the rows, and a reason the user is typing in them.
      const itemsKey = agency() + "|" + dateInput.value + "|" + JSON.stringify([r.exceptions, r.debits, r.resolutions]);
      if (itemsKey === shownItems) return;
      shownItems = itemsKey;
      fill(
        "exceptions",
        r.exceptions.length === 0
          ? h("tr", {}, h("td", { colspan: 7, class: "empty" }, "Không có chênh lệch."))
          : r.exceptions.map((e) => {
              const done = resolution(e.statementLineId, e.paymentId);
              const item = e.statementLineId ? { statementLineId: e.statementLineId } : { paymentId: e.paymentId };
              return h("tr", { "data-exception": e.statementLineId || e.paymentId || "" },
                h("td", {}, EXCEPTION_LABELS[e.kind] || e.kind),
                h("td", { class: "n" }, money(e.amount)),
                h("td", { class: "mono" }, e.caseCode || "–"),
                h("td", { class: "mono" }, e.statementLineId || e.reference || "–"),
                h("td", {}, dmy(e.on)),
                h("td", { class: "n" }, `${e.ageDays} ngày`),
                h("td", { class: "actions" },
                  ...(done ? [h("span", { class: "ok" }, `Đã giải trình: ${done.reason}`)]
                    : (item.statementLineId || item.paymentId) ? resolveControls(item, e.statementLineId || e.caseCode || "") : ["–"])));
            }),
      );
      fill(
        "debits",
        r.debits.length === 0
          ? h("tr", {}, h("td", { colspan: 4, class: "empty" }, "Không có khoản tiền ra trong ngày."))
          : r.debits.map((d) => {
              const done = resolution(d.statementLineId, null);
              const state = d.explainedBy
                ? [h("span", { class: "ok" }, `${EXPLAINED_BY[d.explainedBy] || d.explainedBy} ${d.reference || ""}`)]
                : done
                  ? [h("span", { class: "ok" }, `Đã giải trình: ${done.reason}`)]
                  : resolveControls({ statementLineId: d.statementLineId }, d.statementLineId);
              return h("tr", { "data-debit": d.statementLineId },
                h("td", { class: "mono" }, d.statementLineId),
                h("td", { class: "n" }, money(d.amount)),
                h("td", {}, d.description),
                h("td", { class: "actions" }, ...state));
            }),
      );
    }

    let shownCredits = null;
    async function loadCredits() {
      const data = await gql(
        `query($a: String!) { unmatchedCredits(agencyCode: $a) { id amount content creditedAt reason bankReference } }`,
        { a: agency() },
      );
      // Unchanged list: keep the rows, and what the user is typing in them.
      const key = agency() + "|" + data.unmatchedCredits.map((c) => c.id).join(",");
      if (key === shownCredits) return;
      shownCredits = key;
      fill(
        "credits",
        data.unmatchedCredits.length === 0
          ? h("tr", {}, h("td", { colspan: 5, class: "empty" }, "Không có khoản tiền chờ xử lý."))
          : data.unmatchedCredits.map((c) => {
              const caseInput = h("input", { class: "mono", placeholder: "Mã hồ sơ", "aria-label": "Mã hồ sơ", size: 24 });
              const reasonInput = h("input", { placeholder: "Lý do hoàn trả", "aria-label": "Lý do hoàn trả", size: 18 });
              const assign = h("button", { class: "btn", type: "button" }, "Gán cho hồ sơ");
              const refund = h("button", { class: "btn ghost", type: "button" }, "Đánh dấu hoàn trả");
              assign.addEventListener("click", () =>
                act(() => gql(`mutation($c: ID!, $k: String!) { assignCredit(creditId: $c, caseCode: $k) { code } }`,
                  { c: c.id, k: caseInput.value.trim() }), `Đã gán ${c.id} cho hồ sơ ${caseInput.value.trim()}.`));
              refund.addEventListener("click", () =>
                act(() => gql(`mutation($c: ID!, $r: String!) { markCreditForRefund(creditId: $c, reason: $r) { id } }`,
                  { c: c.id, r: reasonInput.value.trim() || "Chuyển nhầm" }), `Đã đánh dấu hoàn trả ${c.id}.`));
              return h("tr", { "data-credit": c.id },
                h("td", { class: "mono" }, c.id),
                h("td", { class: "n" }, money(c.amount)),
                h("td", {}, c.content, h("br"), h("small", {}, c.reason || "")),
                h("td", {}, dmy(c.creditedAt)),
                h("td", { class: "actions" }, caseInput, assign, reasonInput, refund));
            }),
      );
    }

    let shownRefunds = null;
    async function loadRefunds() {
      const data = await gql(
        `query($a: String!) { creditsAwaitingRefund(agencyCode: $a) { id amount content creditedAt reason payerName payerAccount } }`,
        { a: agency() },
      );
      const key = agency() + "|" + data.creditsAwaitingRefund.map((c) => c.id).join(",");
      if (key === shownRefunds) return;
      shownRefunds = key;
      fill(
        "refunds",
        data.creditsAwaitingRefund.length === 0
          ? h("tr", {}, h("td", { colspan: 5, class: "empty" }, "Không có khoản chờ hoàn trả."))
          : data.creditsAwaitingRefund.map((c) => {
              const reference = h("input", { class: "mono", placeholder: "Số lệnh chuyển tiền", "aria-label": "Số lệnh chuyển tiền hoàn trả", size: 16 });
              const paidOn = h("input", { type: "date", "aria-label": "Ngày hoàn trả", value: todayIso() });
              const record = h("button", { class: "btn", type: "button" }, "Ghi nhận đã hoàn trả");
              record.addEventListener("click", () => {
                const ref = reference.value.trim();
                if (!ref) {
                  banner("Nhập số lệnh chuyển tiền hoàn trả.", "error");
                  return;
                }
                act(() => gql(`mutation($i: RefundInput!) { recordRefund(input: $i) { status } }`, {
                  i: { agencyCode: agency(), creditId: c.id, amount: c.amount, method: "BANK_TRANSFER", reference: ref, paidOn: paidOn.value },
                }), `Đã ghi nhận hoàn trả ${c.id}.`);
              });
              return h("tr", { "data-refund": c.id },
                h("td", { class: "mono" }, c.id),
                h("td", { class: "n" }, money(c.amount)),
                h("td", {}, c.payerName || "–", h("br"), h("small", { class: "mono" }, c.payerAccount || "")),
                h("td", {}, c.content, h("br"), h("small", {}, c.reason || "")),
                h("td", { class: "actions" }, reference, paidOn, record));
            }),
      );
    }

    async function loadTreasury() {
      // The day as it was when this load began: the officer may change it while the report
      // loads, and the charts below must ask for the same period as the report.
      const to = dateInput.value;
      const from = to.slice(0, 8) + "01";
      const data = await gql(
        `query($a: String!, $f: Date!, $t: Date!) { treasuryReport(agencyCode: $a, from: $f, to: $t) {
          collected payableToBudget remitted outstanding overdue
          nextDeadline { dueOn amount overdue overdueDays }
          rows { feeCode name outstanding overdue dueOn } } }`,
        { a: agency(), f: from, t: to },
      );
      const t = data.treasuryReport;
      const next = t.nextDeadline;
      fill(
        "treasury-summary",
        h("div", { class: "stat" }, h("span", {}, "Đã thu trong tháng"), h("strong", {}, money(t.collected))),
        h("div", { class: "stat" }, h("span", {}, "Phải nộp NSNN"), h("strong", {}, money(t.payableToBudget))),
        h("div", { class: "stat" }, h("span", {}, "Đã nộp"), h("strong", {}, money(t.remitted))),
        h("div", { class: Number(t.overdue) > 0 ? "stat bad" : "stat" }, h("span", {}, "Quá hạn"), h("strong", {}, money(t.overdue))),
        h("div", { class: "stat" }, h("span", {}, "Hạn gần nhất"),
          h("strong", {}, next ? `${dmy(next.dueOn)} · ${money(next.amount)}${next.overdue ? ` (quá ${next.overdueDays} ngày)` : ""}` : "–")),
      );
      fill(
        "treasury-rows",
        t.rows.map((r) =>
          h("tr", {}, h("td", { class: "mono" }, r.feeCode), h("td", {}, r.name), h("td", { class: "n" }, money(r.outstanding)),
            h("td", { class: Number(r.overdue) > 0 ? "n bad" : "n" }, money(r.overdue)), h("td", {}, dmy(r.dueOn)))),
      );
      $("remit-up-to").value = $("remit-up-to").value || to;
      $("remit-amount").placeholder = t.outstanding;
      const stamp = Date.now();
      $("chart-collected").src = withToken("/charts/collected.svg", { agency: agency(), to, v: stamp });
      $("chart-overdue").src = withToken("/charts/overdue.svg", { agency: agency(), from, to, v: stamp });
      const month = dateInput.value.slice(0, 7);
      fill(
        "downloads",
        [
          ["Đối soát ngày (CSV)", "/reports/reconciliation.csv", { date: dateInput.value }],
          ["Đối soát ngày (XLSX)", "/reports/reconciliation.xlsx", { date: dateInput.value }],
          ["Báo cáo kho bạc (CSV)", "/reports/treasury.csv", { from, to: dateInput.value }],
          ["Báo cáo kho bạc (XLSX)", "/reports/treasury.xlsx", { from, to: dateInput.value }],
          ["Tờ khai phí, lệ phí tháng (XLSX)", "/reports/declaration.xlsx", { month }],
        ].map(([label, path, params]) => h("li", {}, h("a", { href: withToken(path, { agency: agency(), ...params }) }, label))),
      );
    }

    async function act(task, done) {
      try {
        await task();
        banner(done, "ok");
        await refresh();
      } catch (error) {
        showError(error);
      }
    }

    // One refresh at a time; a request during one runs another after it, so what is shown is
    // never older than the last request.
    let refreshing = null;
    let again = false;
    async function refresh() {
      if (refreshing) {
        again = true;
        return refreshing;
      }
      refreshing = (async () => {
        do {
          again = false;
          await Promise.all([loadReconciliation(), loadCredits(), loadRefunds(), loadTreasury()]);
        } while (again);
        $("updated").textContent = "Cập nhật lúc " + new Date().toLocaleTimeString("vi-VN");
        document.body.dataset.loaded = "true";
      })()
        .catch(showError)
        .finally(() => {
          refreshing = null;
        });
      return refreshing;
    }

    $("reconcile").addEventListener("click", () =>
      act(() => gql(`mutation($a: String!, $d: Date!) { reconcileDay(agencyCode: $a, date: $d) { balanced } }`,
        { a: agency(), d: dateInput.value }), "Đã đối soát và ghi nhận các khoản khớp."));
    $("remit-form").addEventListener("submit", (event) => {
      event.preventDefault();
      act(() => gql(`mutation($i: RemitInput!) { remitToTreasury(input: $i) { voucherNumber amount voucherUrl } }`, {
        i: { agencyCode: agency(), upTo: $("remit-up-to").value, voucherNumber: $("remit-voucher").value.trim(), amount: $("remit-amount").value.trim() },
      }), "Đã ghi nhận nộp ngân sách.");
    });
    agencySelect.addEventListener("change", () => { refresh(); follow(); });
    dateInput.addEventListener("change", refresh);
    let client = null;
    let dispose = null;
    let poller = null;
    await refresh();
    follow();

    function follow() {
      if (dispose) dispose();
      const lib = window.graphqlWs;
      if (!lib) return poll();
      if (!client) {
        client = lib.createClient({
          url: (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql/ws",
          connectionParams: { authorization: `Bearer ${TOKEN}` },
          lazy: false,
          retryAttempts: 3,
          // "Live" once the server follows the log for us (its first notice), not on connect:
          // a payment between the two would otherwise be missed.
          onNonLazyError: () => poll(),
        });
      }
      dispose = client.subscribe(
        { query: "subscription($a: String!) { moneyArrived(agencyCode: $a) { eventType position } }", variables: { a: agency() } },
        {
          next: (message) => {
            const arrival = message.data && message.data.moneyArrived;
            if (arrival && arrival.eventType === "Subscribed") {
              setLive("live", "Trực tiếp");
              if (poller) { clearInterval(poller); poller = null; }
              refresh();
              return;
            }
            if (arrival) $("last-arrival").textContent = `Vừa có tiền về (${arrival.eventType}) lúc ${new Date().toLocaleTimeString("vi-VN")}`;
            refresh();
          },
          error: () => poll(),
          complete: () => {},
        },
      );
    }
    function poll() {
      setLive("polling", "Cập nhật 10 giây/lần");
      if (!poller) poller = setInterval(refresh, 10000);
    }
  }

  // --- oversight ------------------------------------------------------------------------------

  async function oversightPage() {
    const viewer = await me();
    const rootInput = $("root");
    const monthInput = $("month");
    const levelSelect = $("level");
    rootInput.value = new URL(location.href).searchParams.get("root") || viewer.agencyCode || "";
    monthInput.value = new URL(location.href).searchParams.get("month") || monthIso(-1);

    async function load() {
      banner("");
      const root = rootInput.value.trim();
      const month = monthInput.value;
      const level = levelSelect.value || null;
      if (!root) {
        banner("Nhập mã đơn vị gốc (tỉnh, huyện…) để xem bảng xếp hạng.", "info");
        return;
      }
      const data = await gql(
        `query($r: String!, $m: String!, $l: AgencyLevel) { leagueTable(rootAgencyCode: $r, month: $m, level: $l) {
          period
          rows { agencyCode name level parentCode cases cashless online cashlessRate onlineRate target onlineTarget met rank
                 cashlessChangeVsPrevious cashlessChangeVsLastYear }
          totals { level agencies cases cashless online cashlessRate onlineRate target onlineTarget met notMet } } }`,
        { r: root, m: month, l: level },
      );
      const t = data.leagueTable;
      fill(
        "totals",
        t.totals.map((x) =>
          h("div", { class: "stat" }, h("span", {}, LEVELS[x.level]),
            h("strong", {}, `KDTM ${pct(x.cashlessRate)} · Trực tuyến ${pct(x.onlineRate)}`),
            h("small", {}, `${x.agencies} đơn vị · ${x.cases} hồ sơ · đạt ${x.met}, không đạt ${x.notMet}`))),
      );
      fill(
        "league",
        t.rows.map((r) =>
          h("tr", { class: r.met === true ? "met" : r.met === false ? "not-met" : "" },
            h("td", {}, LEVELS[r.level]),
            h("td", { class: "n" }, r.rank),
            h("td", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); rootInput.value = r.agencyCode; load().catch(showError); } }, r.name), h("br"), h("small", { class: "mono" }, r.agencyCode)),
            h("td", { class: "n" }, r.cases),
            h("td", { class: "n" }, pct(r.cashlessRate)),
            h("td", { class: "n" }, pct(r.onlineRate)),
            h("td", { class: "n" }, r.target ? `${pct(r.target)} / ${pct(r.onlineTarget)}` : "–"),
            h("td", {}, h("span", { class: "verdict" }, VERDICT(r.met))),
            h("td", { class: "n" }, points(r.cashlessChangeVsPrevious)),
            h("td", { class: "n" }, points(r.cashlessChangeVsLastYear)))),
      );
      const stamp = Date.now();
      const chartLevels = level ? [level] : t.totals.map((x) => x.level).filter((l) => l !== "PROVINCE");
      fill("charts", chartLevels.map((l) => h("img", { src: withToken("/charts/rates.svg", { root, month, level: l, v: stamp }), alt: `Tỷ lệ theo tháng: ${LEVELS[l]}`, width: 720, height: 260 })));
      const quarter = `${month.slice(0, 4)}-Q${Math.floor((Number(month.slice(5, 7)) - 1) / 3) + 1}`;
      fill(
        "downloads",
        [
          ["Bảng xếp hạng (CSV)", "/reports/league.csv", { month, level }],
          ["Bảng xếp hạng (XLSX)", "/reports/league.xlsx", { month, level }],
          ["Thông báo tháng (in A4)", "/reports/league/announcement", { month }],
          [`Tổng hợp ${quarter} (in A4)`, "/reports/league/announcement", { quarter }],
          [`Tổng hợp ${quarter} (XLSX)`, "/reports/league.xlsx", { quarter }],
        ].map(([label, path, params]) => h("li", {}, h("a", { href: withToken(path, { root, ...params }), target: "_blank", rel: "noopener" }, label))),
      );
      document.body.dataset.loaded = "true";
    }

    $("filters").addEventListener("submit", (e) => { e.preventDefault(); load().catch(showError); });
    await load();
  }

  // --- admin ----------------------------------------------------------------------------------

  async function adminPage() {
    await me();

    async function loadAgencies() {
      const data = await gql("query { agencies { code name level parentCode placedFrom counters accountNumber } }");
      fill(
        "agencies",
        data.agencies.map((a) =>
          h("tr", {},
            h("td", { class: "mono" }, a.code),
            h("td", {}, a.name),
            h("td", {}, a.level ? LEVELS[a.level] : "–"),
            h("td", { class: "mono" }, a.parentCode || "–"),
            h("td", {}, a.counters.join(", ")),
            h("td", {}, h("button", { class: "btn ghost", type: "button", onclick: () => loadSchedules(a.code) }, "Biểu phí")))),
      );
      const select = $("schedule-agency");
      const current = select.value;
      select.replaceChildren(...data.agencies.map((a) => h("option", { value: a.code }, `${a.code} — ${a.name}`)));
      if (current) select.value = current;
      return data.agencies;
    }

    async function loadSchedules(code) {
      const select = $("schedule-agency");
      if (code) select.value = code;
      const agency = select.value;
      if (!agency) return;
      const data = await gql(
        `query($a: String!) { feeSchedules(agencyCode: $a) { version effectiveFrom publishedAt fees { feeCode name kind unitAmount retentionPercent } } }`,
        { a: agency },
      );
      fill(
        "schedules",
        data.feeSchedules.length === 0
          ? h("p", { class: "empty" }, "Chưa có biểu phí.")
          : data.feeSchedules.slice().reverse().map((v) =>
              h("details", { open: v === data.feeSchedules[data.feeSchedules.length - 1] },
                h("summary", {}, `Phiên bản ${v.version} · áp dụng từ ${dmy(v.effectiveFrom)} · công bố ${dmy(v.publishedAt)}`),
                h("table", {}, h("tbody", {}, v.fees.map((f) =>
                  h("tr", {}, h("td", { class: "mono" }, f.feeCode), h("td", {}, f.name), h("td", {}, LABELS.feeKind[f.kind] || f.kind),
                    h("td", { class: "n" }, money(f.unitAmount)), h("td", { class: "n" }, `${f.retentionPercent}%`))))),
                h("button", { class: "btn ghost", type: "button", onclick: () => {
                  $("schedule-json").value = JSON.stringify(v.fees.map((f) => ({ feeCode: f.feeCode, name: f.name, kind: f.kind, unitAmount: f.unitAmount, retentionPercent: f.retentionPercent })), null, 1);
                  $("schedule-from").value = v.effectiveFrom;
                } }, "Sửa (đính chính) phiên bản này"))),
      );
      if (!$("schedule-json").value && data.feeSchedules.length) {
        const last = data.feeSchedules[data.feeSchedules.length - 1];
        $("schedule-json").value = JSON.stringify(last.fees.map((f) => ({ feeCode: f.feeCode, name: f.name, kind: f.kind, unitAmount: f.unitAmount, retentionPercent: f.retentionPercent })), null, 1);
      }
    }

    async function loadTargets() {
      const data = await gql("query { targets { level effectiveFrom cashlessPercent onlinePercent setAt } }");
      fill(
        "targets",
        data.targets.length === 0
          ? h("tr", {}, h("td", { colspan: 5, class: "empty" }, "Chưa giao chỉ tiêu."))
          : data.targets.map((t) =>
              h("tr", {}, h("td", {}, LEVELS[t.level]), h("td", {}, t.effectiveFrom), h("td", { class: "n" }, pct(t.cashlessPercent)),
                h("td", { class: "n" }, pct(t.onlinePercent)), h("td", {}, dmy(t.setAt)))),
      );
    }

    const progress = new Map();
    async function loadProjections() {
      const data = await gql("query { projections { name version generation lag rebuilding progress { done total finished } } }");
      fill(
        "projections",
        data.projections.map((p) => {
          const bar = h("progress", { max: 100, value: 0, id: `progress-${p.name}` });
          const label = h("span", { id: `progress-label-${p.name}` }, p.rebuilding ? "đang dựng lại…" : `thế hệ ${p.generation}, trễ ${p.lag}`);
          const button = h("button", { class: "btn", type: "button", "data-projection": p.name }, "Dựng lại");
          button.addEventListener("click", () => rebuild(p.name));
          return h("tr", {}, h("td", { class: "mono" }, p.name), h("td", {}, `v${p.version}`), h("td", {}, bar, " ", label), h("td", {}, button));
        }),
      );
    }

    let client = null;
    async function rebuild(name) {
      try {
        const lib = window.graphqlWs;
        // The mutation waits for the subscription's first message (the current status): the
        // server listens from then on, so a rebuild quicker than the WebSocket handshake still
        // shows its "xong". Five seconds without it and the rebuild is asked for anyway.
        let subscribed = Promise.resolve();
        if (lib && !progress.has(name)) {
          let ready;
          subscribed = new Promise((resolve) => {
            ready = resolve;
            setTimeout(resolve, 5000);
          });
          client = client || lib.createClient({
            url: (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql/ws",
            connectionParams: { authorization: `Bearer ${TOKEN}` },
            lazy: false,
          });
          progress.set(name, client.subscribe(
            { query: "subscription($n: String!) { projectionProgress(name: $n) { name generation rebuilding progress { done total finished } } }", variables: { n: name } },
            {
              next: (m) => {
                ready();
                const s = m.data && m.data.projectionProgress;
                if (!s) return;
                const p = s.progress;
                const done = p ? Number(p.done) : 0;
                const total = p ? Math.max(Number(p.total), 1) : 1;
                $(`progress-${name}`).value = p && p.finished ? 100 : Math.floor((100 * done) / total);
                $(`progress-label-${name}`).textContent = p && p.finished
                  ? `xong: thế hệ ${s.generation} (${done} sự kiện)`
                  : s.rebuilding ? `đang dựng lại ${done}/${total}` : `thế hệ ${s.generation}`;
              },
              error: () => ready(),
              complete: () => ready(),
            },
          ));
        }
        await subscribed;
        await gql("mutation($n: String!) { rebuildProjection(name: $n) { name generation rebuilding } }", { n: name });
        banner(`Đã yêu cầu dựng lại ${name}.`, "ok");
      } catch (error) {
        showError(error);
      }
    }

    $("target-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await gql("mutation($i: TargetInput!) { setTarget(input: $i) { level } }", {
          i: { level: $("target-level").value, effectiveFrom: $("target-from").value, cashlessPercent: $("target-cashless").value.trim(), onlinePercent: $("target-online").value.trim() },
        });
        banner("Đã giao chỉ tiêu.", "ok");
        await loadTargets();
      } catch (error) {
        showError(error);
      }
    });
    $("schedule-agency").addEventListener("change", () => { $("schedule-json").value = ""; loadSchedules().catch(showError); });
    $("schedule-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const fees = JSON.parse($("schedule-json").value);
        const published = await gql("mutation($i: FeeScheduleInput!) { publishFeeSchedule(input: $i) { version } }", {
          i: { agencyCode: $("schedule-agency").value, effectiveFrom: $("schedule-from").value, fees },
        });
        banner(`Đã công bố phiên bản ${published.publishFeeSchedule.version}. Sau khi đổi quy tắc, hãy dựng lại các projection.`, "ok");
        await loadSchedules();
      } catch (error) {
        showError(error instanceof SyntaxError ? new ApiError("VALIDATION", "Danh sách khoản phí không phải JSON hợp lệ.") : error);
      }
    });
    $("target-from").value = monthIso(1);
    await loadAgencies();
    await Promise.all([loadSchedules(), loadTargets(), loadProjections()]);
    document.body.dataset.loaded = "true";
  }

  const pages = { finance: financePage, oversight: oversightPage, admin: adminPage };
  document.addEventListener("DOMContentLoaded", () => {
    if (!TOKEN) {
      banner("Trang này cần mã truy cập: mở lại với ?token=…");
      return;
    }
    const page = pages[document.body.dataset.page];
    if (page) page().catch(showError);
  });
})();
