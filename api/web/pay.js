/*
 * feeledger — the public payment page (/pay, /pay/{caseCode}): no login, no token.
 *
 * The citizen types a case code (or arrives from the QR on the case slip at /pay/{code}); the page
 * reads `publicCase`, asks `requestPaymentQr` for a VietQR of exactly what is left, then follows
 * `publicCaseStatus` over WebSocket (the compact client at /assets/graphql-transport-ws.js), or
 * polls `publicCase` every 5 s when the socket is unavailable. `document.body.dataset.live` says
 * which ("ws" or "polling"); `document.body.dataset.state` is "lookup", "waiting", "paid",
 * "cancelled" or "unknown". When limited (HTTP 429), it waits as the server says.
 *
 * The DOM is built with textContent only; nothing a case holds can become markup.
 */
"use strict";

(function () {
  const POLL_MS = 5000;
  const $ = (id) => document.getElementById(id);
  const numberFormat = new Intl.NumberFormat("vi-VN");
  const CASE_FIELDS = `code agencyCode agencyName procedureName procedureCode status total paid outstanding paidInFull
    message version payer { name maskedId } lines { name kind amount outstanding }
    qr { payload amount transferContent svgUrl pngUrl expiresAt bankBin accountNumber accountName bankAppCode }
    receipts { printedNumber serial amount issuedAt cancelled url }`;

  let code = null;
  let shownVersion = -1;
  let client = null;
  let dispose = null;
  let pollTimer = null;
  let waitUntil = 0;
  let qrRequested = null;

  function vnd(amount) {
    let value = 0n;
    try {
      value = BigInt(amount || 0);
    } catch (_) {
      value = 0n;
    }
    return numberFormat.format(value) + " đ";
  }

  function el(tag, text, props) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [key, value] of Object.entries(props || {})) node.setAttribute(key, value);
    return node;
  }

  function setText(id, text) {
    const node = $(id);
    if (node && node.textContent !== text) node.textContent = text;
  }

  function notice(text) {
    const node = $("notice");
    node.hidden = !text;
    node.textContent = text || "";
  }

  class Limited extends Error {
    constructor(seconds) {
      super(`limited for ${seconds} s`);
      this.seconds = seconds;
    }
  }

  async function gql(query, variables) {
    if (Date.now() < waitUntil) throw new Limited(Math.ceil((waitUntil - Date.now()) / 1000));
    const response = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query, variables }),
    });
    if (response.status === 429) {
      const seconds = Math.max(1, parseInt(response.headers.get("retry-after") || "5", 10) || 5);
      waitUntil = Date.now() + seconds * 1000;
      throw new Limited(seconds);
    }
    const body = await response.json();
    if (body.errors && body.errors.length) {
      const error = new Error(body.errors[0].message);
      error.code = body.errors[0].extensions && body.errors[0].extensions.code;
      throw error;
    }
    return body.data;
  }

  function explain(error) {
    if (error instanceof Limited) {
      notice(`Bạn đã tra cứu quá nhiều lần. Vui lòng thử lại sau ${error.seconds} giây.`);
    } else if (error && error.code === "VALIDATION") {
      notice("Mã hồ sơ không đúng định dạng (ví dụ: H34.22.6-240426-0002).");
    } else {
      notice("Không kết nối được máy chủ. Vui lòng thử lại.");
    }
  }

  function setState(state) {
    document.body.dataset.state = state;
  }

  function render(c) {
    if (!c) {
      $("case").hidden = true;
      $("pay-box").hidden = true;
      $("paid-box").hidden = true;
      setState("unknown");
      notice("Không tìm thấy hồ sơ có mã này, hoặc hồ sơ chưa nhận thanh toán trực tuyến. Vui lòng kiểm tra lại mã.");
      return;
    }
    if (c.version < shownVersion) return;
    shownVersion = c.version;
    notice("");
    $("case").hidden = false;
    setText("agency-name", c.agencyName);
    setText("case-code-shown", c.code);
    setText("procedure", c.procedureName || "");
    setText("procedure-code", c.procedureCode ? `Mã thủ tục: ${c.procedureCode}` : "");
    setText("payer-name", c.payer.name);
    setText("payer-id", c.payer.maskedId || "—");
    $("lines").replaceChildren(
      ...c.lines.map((line) => {
        const row = el("tr");
        row.append(el("td", line.name), el("td", vnd(line.amount), { class: "num" }), el("td", vnd(line.outstanding), { class: "num" }));
        return row;
      }),
    );
    setText("total", vnd(c.total));
    setText("paid", vnd(c.paid));
    setText("outstanding", vnd(c.outstanding));

    const paid = c.paidInFull;
    const cancelled = c.status === "CANCELLED";
    $("paid-box").hidden = !paid;
    $("pay-box").hidden = paid || cancelled;
    if (cancelled) {
      setState("cancelled");
      notice(c.message);
    }
    if (paid) {
      setState("paid");
      const receipts = c.receipts.filter((r) => !r.cancelled);
      $("receipts").replaceChildren(
        ...receipts.map((r) => {
          const item = el("li");
          const link = el("a", `Biên lai số ${r.printedNumber} (ký hiệu ${r.serial}) — ${vnd(r.amount)}`, {
            href: r.url,
            "data-testid": "receipt-link",
          });
          item.append(link);
          return item;
        }),
      );
      $("receipt-wait").hidden = receipts.length > 0;
      return;
    }
    if (cancelled) return;
    setState("waiting");
    setText("message", c.message);
    const qr = c.qr;
    const image = $("qr-image");
    $("new-qr").hidden = Boolean(qr);
    if (!qr) {
      image.hidden = true;
      setText("qr-amount", vnd(c.outstanding));
      setText("qr-expiry", "Đang tạo mã QR…");
      requestQr();
      return;
    }
    image.hidden = false;
    if (image.dataset.payload !== qr.payload) {
      image.dataset.payload = qr.payload;
      image.src = qr.svgUrl;
      image.alt = `Mã VietQR thanh toán ${vnd(qr.amount)} cho hồ sơ ${c.code}`;
    }
    setText("qr-amount", vnd(qr.amount));
    const expires = new Date(qr.expiresAt);
    const time = expires.toLocaleTimeString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit" });
    setText("qr-expiry", `Mã có hiệu lực đến ${time}`);
    setText("transfer-content", qr.transferContent);
    setText("account", `${qr.accountNumber} — ${qr.accountName}`);
    const box = $("bank-app-box");
    box.hidden = !qr.bankAppCode;
    if (qr.bankAppCode) {
      const link = $("bank-app-link");
      const update = () => {
        const params = new URLSearchParams({ app: $("bank-app").value, am: qr.amount, tn: qr.transferContent });
        // dl.vietqr.io wants the "@" of `ba` as it is.
        link.href = `https://dl.vietqr.io/pay?${params.toString()}&ba=${encodeURIComponent(qr.accountNumber)}@${qr.bankAppCode}`;
      };
      $("bank-app").onchange = update;
      update();
    }
    clearTimeout(qrRequested);
    qrRequested = setTimeout(() => {
      if (Date.now() >= expires.getTime()) $("new-qr").hidden = false;
    }, Math.max(0, expires.getTime() - Date.now()) + 1000);
  }

  let asking = false;
  async function requestQr() {
    if (asking || !code) return;
    asking = true;
    try {
      const data = await gql(`mutation($code: String!) { requestPaymentQr(code: $code) { ${CASE_FIELDS} } }`, { code });
      render(data.requestPaymentQr);
    } catch (error) {
      if (error && error.code === "CONFLICT") refresh();
      else explain(error);
    } finally {
      asking = false;
    }
  }

  async function refresh() {
    if (!code) return;
    try {
      const data = await gql(`query($code: String!) { publicCase(code: $code) { ${CASE_FIELDS} } }`, { code });
      render(data.publicCase);
    } catch (error) {
      explain(error);
    }
  }

  function setLive(mode) {
    document.body.dataset.live = mode;
    setText("live-indicator", mode === "ws" ? "Tự động cập nhật" : "Cập nhật mỗi 5 giây");
    clearInterval(pollTimer);
    if (mode === "polling") {
      pollTimer = setInterval(() => {
        if (document.body.dataset.state !== "paid" || $("receipts").children.length === 0) refresh();
      }, POLL_MS);
    }
  }

  function follow() {
    if (dispose) dispose();
    dispose = null;
    const lib = window.graphqlWs;
    if (!lib || typeof lib.createClient !== "function") {
      setLive("polling");
      return;
    }
    if (!client) {
      client = lib.createClient({
        url: `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/graphql/ws`,
        connectionParams: () => ({}),
        lazy: false,
        retryAttempts: 5,
        keepAlive: 10000,
        onNonLazyError: () => {
          client = null;
          setLive("polling");
        },
        on: {
          connected: () => setLive("ws"),
          closed: () => setLive("polling"),
        },
      });
    }
    dispose = client.subscribe(
      { query: `subscription($code: String!) { publicCaseStatus(code: $code) { ${CASE_FIELDS} } }`, variables: { code } },
      {
        next: (result) => {
          if (result.errors && result.errors.length) {
            setLive("polling");
            return;
          }
          if (result.data) render(result.data.publicCaseStatus);
        },
        error: () => setLive("polling"),
        complete: () => {},
      },
    );
  }

  async function open(newCode, push) {
    code = newCode.trim();
    if (!code) return;
    shownVersion = -1;
    $("case-code").value = code;
    if (push) history.pushState(null, "", `/pay/${encodeURIComponent(code)}`);
    await refresh();
    if (document.body.dataset.state !== "unknown") follow();
  }

  $("lookup").addEventListener("submit", (event) => {
    event.preventDefault();
    open($("case-code").value, true);
  });
  $("new-qr").addEventListener("click", () => requestQr());
  window.addEventListener("popstate", () => {
    const fromPath = decodeURIComponent(location.pathname.split("/")[2] || "");
    if (fromPath) open(fromPath, false);
  });

  const initial = decodeURIComponent(location.pathname.split("/")[2] || "");
  setText("live-indicator", "");
  if (initial) open(initial, false);
})();
