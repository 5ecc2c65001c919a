/*
 * feeledger — the two screens of a one-stop counter:
 *   /counter/{counterId}  the officer's screen (assess fees, create the payment QR, record payments)
 *   /display/{counterId}  the screen facing the citizen (the QR to scan, then "Thanh toán thành công")
 *
 * Both read their token from `?token=` once, keep it in this tab's sessionStorage and drop it from
 * the address bar. Data: a first load over plain HTTP (POST /graphql), then live updates over a
 * WebSocket: the officer's screen through GraphQL subscriptions (graphql-transport-ws, with the
 * compact client the binary serves at /assets/graphql-transport-ws.js), the citizen's through the
 * plain display feed (/live/counter-display, `DisplayFeed`). Without the client, or while the
 * socket is down (a proxy that blocks WebSockets), the screen polls over HTTP every 2 s.
 * `document.body.dataset.live` says which: "ws" or "polling".
 *
 * No inline scripts or styles (the pages' CSP forbids them); the DOM is built with textContent
 * only, never innerHTML, so nothing a case contains can become markup.
 */
"use strict";

(function () {
  const POLL_MS = 2000;
  const QUIET_REFRESH_MS = 5 * 60 * 1000;
  const TZ = "Asia/Ho_Chi_Minh";
  const TOKEN_KEY = "feeledger.token";
  /** After this long on "paid" or "cancelled", the citizen's screen goes back to the greeting. */
  const DISPLAY_CLEAR_AFTER_MS = 120 * 1000;

  if (!window.__loadedAt) window.__loadedAt = Date.now();

  const PAGE = location.pathname.startsWith("/display/") ? "display" : "counter";
  const COUNTER_ID = decodeURIComponent(location.pathname.split("/")[2] || "");

  // --- small helpers -------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  /** Creates an element; children are nodes or text (never parsed as HTML). */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
      else if (key === "value" || key === "selected" || key === "disabled") el[key] = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  function setText(id, text) {
    const el = $(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  const numberFormat = new Intl.NumberFormat("vi-VN");

  function toBig(amount) {
    try {
      return BigInt(amount === null || amount === undefined || amount === "" ? 0 : amount);
    } catch (_) {
      return 0n;
    }
  }

  /** "3000" → "3.000 VND", as Vietnamese write amounts. */
  function vnd(amount) {
    return numberFormat.format(toBig(amount)) + " VND";
  }

  /** A random UUID, also outside secure contexts (plain HTTP on a LAN address). */
  function uuid() {
    if (window.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // The server's clock, from the Date header of its answers, when ours is clearly off (kiosks).
  let clockSkewMs = 0;
  function noteServerDate(header) {
    const serverNow = Date.parse(header || "");
    if (Number.isNaN(serverNow)) return;
    const skew = serverNow - Date.now();
    clockSkewMs = Math.abs(skew) > 3000 ? skew : 0;
  }
  const now = () => Date.now() + clockSkewMs;

  function vietnamParts(date) {
    const parts = new Intl.DateTimeFormat("en-GB", {
      timeZone: TZ,
      year: "2-digit",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hourCycle: "h23",
    }).formatToParts(date);
    return Object.fromEntries(parts.map((p) => [p.type, p.value]));
  }

  /** Today in Vietnam as YYMMDD, the middle part of a case code. */
  function todayCode() {
    const p = vietnamParts(new Date(now()));
    return p.year + p.month + p.day;
  }

  function clockText(date) {
    const p = vietnamParts(date);
    return `${p.hour}:${p.minute}`;
  }

  function dateTimeText(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const p = vietnamParts(date);
    return `${p.hour}:${p.minute}:${p.second} ${p.day}/${p.month}/20${p.year}`;
  }

  function timeText(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return "";
    const p = vietnamParts(date);
    return `${p.hour}:${p.minute}:${p.second}`;
  }

  function counterLabel(id) {
    const m = /^qu[aầ]y[-_ ]?(\d+)$/i.exec(id || "");
    return m ? `Quầy số ${m[1]}` : `Quầy ${id}`;
  }

  const BANKS = {
    970415: "VietinBank",
    970436: "Vietcombank",
    970418: "BIDV",
    970405: "Agribank",
    970422: "MB",
    970407: "Techcombank",
    970432: "VPBank",
    970416: "ACB",
    970403: "Sacombank",
    970423: "TPBank",
  };

  // One table of labels with the downloads: /assets/labels.js, generated by the server.
  const LABELS = window.FEELEDGER_LABELS || { feeKind: {}, caseStatus: {}, channel: {} };
  const KIND_TEXT = LABELS.feeKind;
  const STATUS_TEXT = LABELS.caseStatus;
  const CHANNEL_TEXT = LABELS.channel;
  const DISPLAY_STATE_TEXT = {
    ASSESSED: "đã tính phí, chưa có mã QR",
    WAITING: "đang hiển thị mã QR",
    PARTIALLY_PAID: "đã nhận một phần",
    PAID: "đã báo thanh toán thành công",
    EXPIRED: "mã QR đã hết hạn",
    CANCELLED: "hồ sơ đã hủy thu phí",
  };

  // --- errors --------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(code, message) {
      super(message || code);
      this.code = code || "INTERNAL";
    }
  }

  const ERROR_TEXT = {
    VALIDATION: "Dữ liệu chưa hợp lệ",
    NOT_FOUND: "Không tìm thấy",
    CONFLICT: "Không thực hiện được với trạng thái hiện tại của hồ sơ",
    FORBIDDEN: "Mã truy cập không có quyền thực hiện thao tác này",
    UNAUTHENTICATED: "Mã truy cập không hợp lệ hoặc đã hết hạn",
    UNAVAILABLE: "Hệ thống tạm thời không truy cập được cơ sở dữ liệu, vui lòng thử lại",
    INTERNAL: "Lỗi hệ thống",
    NETWORK: "Không kết nối được máy chủ",
  };

  function fromGraphqlError(error) {
    const e = error || {};
    return new ApiError((e.extensions && e.extensions.code) || "INTERNAL", e.message);
  }

  /** The server's (English) messages people meet most, in Vietnamese. */
  const MESSAGE_TEXT = [
    [/already assessed/i, "Hồ sơ này đã được tính phí. Muốn sửa, hãy hủy tính phí rồi tính lại"],
    [/already cancelled/i, "Hồ sơ đã hủy thu phí"],
    [/money was already received/i, "Hồ sơ đã nhận tiền; cần hoàn tiền trước khi hủy hoặc tính lại"],
    [/does not belong to agency/i, "Mã hồ sơ không thuộc cơ quan này"],
    [/at least one fee line/i, "Cần ít nhất một khoản thu"],
    [/quantity of .* must be/i, "Số lượng không hợp lệ"],
    [/appears twice/i, "Một khoản thu bị nhập hai lần; hãy gộp số lượng vào một dòng"],
    [/not in the agency's fee schedule/i, "Khoản thu không có trong biểu phí đang áp dụng"],
    [/procedure name/i, "Tên thủ tục phải từ 1 đến 300 ký tự"],
    [/nothing is outstanding/i, "Hồ sơ không còn số tiền phải nộp"],
    [/NAPAS 247 limit/i, "Số tiền vượt hạn mức một lần chuyển khoản NAPAS 247; hãy chia thành nhiều lần"],
    [/idempotency/i, "Yêu cầu trùng mã với một yêu cầu khác"],
    [/case code .* is invalid/i, "Mã hồ sơ không đúng dạng <mã cơ quan>-<YYMMDD>-<4 chữ số>"],
    [/payer name must be/i, "Tên người nộp phải từ 1 đến 200 ký tự"],
    [/identity number must be/i, "Số CCCD / mã số thuế phải gồm 6 đến 20 chữ số"],
    [/not a whole|greater than zero/i, "Số tiền phải là số nguyên dương (VND)"],
    [/exceeds the maximum/i, "Số tiền vượt mức tối đa"],
    [/reference must be/i, "Số hóa đơn / phiếu thu phải từ 1 đến 100 ký tự"],
    [/token is for counter/i, "Mã truy cập này dùng cho quầy khác"],
    [/is not a counter of agency/i, "Quầy này không thuộc cơ quan"],
  ];

  /** A Vietnamese headline with the error code, e.g. "Không tìm thấy (NOT_FOUND)". */
  function describe(error) {
    const code = (error && error.code) || "INTERNAL";
    const message = (error && error.message) || "";
    const known = MESSAGE_TEXT.find(([pattern]) => pattern.test(message));
    return `${known ? known[1] : ERROR_TEXT[code] || "Lỗi"} (${code})`;
  }

  /** The server's own words, for support, when they add something. */
  function detail(error) {
    const message = (error && error.message) || "";
    return message && message !== error.code ? message : "";
  }

  function errorContent(error) {
    if (typeof error === "string") return [error];
    const more = detail(error);
    return [h("strong", {}, describe(error)), more ? h("span", { class: "error-detail" }, more) : null];
  }

  function showError(id, error) {
    const el = $(id);
    if (!el) return;
    if (!error) {
      el.hidden = true;
      el.replaceChildren();
      return;
    }
    el.replaceChildren(...errorContent(error).filter(Boolean));
    el.hidden = false;
  }

  // --- token and HTTP ------------------------------------------------------------------------

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

  async function gql(query, variables) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 15000);
    let response;
    try {
      response = await fetch("/graphql", {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ query, variables: variables || {} }),
        cache: "no-store",
        credentials: "omit",
        signal: abort.signal,
      });
    } catch (_) {
      throw new ApiError("NETWORK", "");
    } finally {
      clearTimeout(timer);
    }
    noteServerDate(response.headers.get("date"));
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!body) throw new ApiError(response.status >= 500 ? "UNAVAILABLE" : "INTERNAL", `HTTP ${response.status}`);
    if (body.errors && body.errors.length) throw fromGraphqlError(body.errors[0]);
    return body.data;
  }

  // --- the live connection -------------------------------------------------------------------

  /** The WebSocket client (/assets/graphql-transport-ws.js), or null when it did not load. */
  function loadGraphqlWs() {
    const lib = window.graphqlWs;
    return Promise.resolve(lib && typeof lib.createClient === "function" ? lib : null);
  }

  const LIVE_TEXT = {
    connecting: "Đang kết nối…",
    ws: "Trực tuyến",
    reconnecting: "Đang kết nối lại…",
    polling: "Cập nhật mỗi 2 giây",
    offline: "Mất kết nối máy chủ",
  };

  /**
   * Keeps a screen current: subscriptions over one WebSocket client while its socket is up, and
   * `refresh` (plain HTTP) on every (re)connection and every 2 s while it is not.
   */
  class Live {
    constructor(refresh) {
      this.refresh = refresh;
      this.watches = new Map();
      this.client = null;
      this.lib = null;
      this.mode = "connecting";
      this.httpDown = false;
      this.pollTimer = null;
      this.retryTimer = null;
      this.pushSeq = 0;
      this.refreshing = false;
      this.refreshAgain = false;
      // A safety net for a long-running kiosk: re-read over HTTP after 5 quiet minutes.
      this.lastActivity = Date.now();
      setInterval(() => {
        if (this.mode === "ws" && Date.now() - this.lastActivity > QUIET_REFRESH_MS) this.refreshNow();
      }, 60000);
    }

    async start() {
      this.setMode("connecting");
      this.lib = await loadGraphqlWs();
      if (!this.lib) {
        this.setMode("polling");
        return;
      }
      this.connect();
    }

    connect() {
      clearTimeout(this.retryTimer);
      let pongTimer = null;
      const client = this.lib.createClient({
        url: `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/graphql/ws`,
        connectionParams: () => ({ authorization: `Bearer ${TOKEN}` }),
        lazy: false,
        retryAttempts: Infinity,
        shouldRetry: () => true,
        retryWait: (retries) => sleep(Math.min(1000 * 2 ** retries, 15000) + Math.floor(Math.random() * 1000)),
        keepAlive: 10000,
        onNonLazyError: (error) => this.socketFailed(client, error),
        on: {
          connected: () => {
            if (this.client !== client) return;
            this.setMode("ws");
            // The server re-sends the current state on subscribe; this also covers the gap.
            this.refreshNow();
          },
          closed: () => {
            clearTimeout(pongTimer);
            if (this.client === client && (this.mode === "ws" || this.mode === "connecting")) {
              this.setMode("reconnecting");
            }
          },
          // A socket that stops answering pings is dead even if the OS has not noticed yet.
          ping: (received) => {
            if (received) return;
            clearTimeout(pongTimer);
            pongTimer = setTimeout(() => client.terminate(), 5000);
          },
          pong: (received) => {
            if (received) clearTimeout(pongTimer);
          },
        },
      });
      this.client = client;
      for (const watch of this.watches.values()) this.subscribe(watch);
    }

    /** The socket gave up (or a subscription was refused): poll, and try the socket again later. */
    socketFailed(client, error) {
      if (this.client !== client) return;
      if (error) console.warn("feeledger: live updates unavailable, polling instead", error);
      this.client = null;
      for (const watch of this.watches.values()) watch.dispose = null;
      try {
        client.dispose();
      } catch (_) {
        // already closed
      }
      this.setMode("polling");
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.connect(), 60000);
    }

    subscribe(watch) {
      const client = this.client;
      if (!client) return;
      watch.dispose = client.subscribe(
        { query: watch.query, variables: watch.variables },
        {
          next: (result) => {
            if (this.watches.get(watch.key) !== watch) return;
            this.deliver(result, watch.onData, watch.onError);
          },
          error: (error) => {
            watch.dispose = null;
            if (this.watches.get(watch.key) !== watch) return;
            if (Array.isArray(error)) watch.onError(fromGraphqlError(error[0]));
            this.socketFailed(client, error);
          },
          complete: () => {
            watch.dispose = null;
            // Our own unwatch, or the server ended the stream (it should not): subscribe again.
            setTimeout(() => {
              if (this.watches.get(watch.key) === watch && !watch.dispose && this.client === client) {
                this.subscribe(watch);
              }
            }, 1000);
          },
        },
      );
    }

    /** A pushed GraphQL result: its first error to `onError`, else its data to `onData`. */
    deliver(result, onData, onError) {
      if (result.errors && result.errors.length) {
        onError(fromGraphqlError(result.errors[0]));
        return;
      }
      this.pushSeq += 1;
      this.lastActivity = Date.now();
      onData(result.data);
    }

    /** Subscribes `key` to `query` (replacing what `key` watched before). */
    watch(key, query, variables, onData, onError) {
      const old = this.watches.get(key);
      if (old && old.query === query && JSON.stringify(old.variables) === JSON.stringify(variables)) return;
      this.unwatch(key);
      const watch = { key, query, variables, onData, onError, dispose: null };
      this.watches.set(key, watch);
      this.subscribe(watch);
    }

    unwatch(key) {
      const watch = this.watches.get(key);
      if (!watch) return;
      this.watches.delete(key);
      if (watch.dispose) watch.dispose();
      watch.dispose = null;
    }

    setMode(mode) {
      this.mode = mode;
      if (mode === "ws") document.body.dataset.live = "ws";
      else if (mode === "connecting") delete document.body.dataset.live;
      else document.body.dataset.live = "polling";
      this.paintIndicator();
      if (mode === "reconnecting" || mode === "polling") this.schedulePoll();
    }

    paintIndicator() {
      const el = $("live-indicator");
      if (!el) return;
      const state = this.httpDown && this.mode !== "ws" ? "offline" : this.mode;
      el.dataset.state = state;
      el.textContent = LIVE_TEXT[state];
      el.title = state === "ws" ? "Cập nhật tức thời qua WebSocket" : "Đang cập nhật qua HTTP";
    }

    schedulePoll() {
      if (this.pollTimer) return;
      this.pollTimer = setTimeout(async () => {
        this.pollTimer = null;
        if (this.mode === "ws" || this.mode === "connecting") return;
        await this.refreshNow();
        if (this.mode !== "ws" && this.mode !== "connecting") this.schedulePoll();
      }, POLL_MS);
    }

    /** Runs `refresh`, never two at once; tells it whether a push arrived meanwhile. */
    async refreshNow() {
      if (this.refreshing) {
        this.refreshAgain = true;
        return;
      }
      this.refreshing = true;
      try {
        do {
          this.refreshAgain = false;
          this.lastActivity = Date.now();
          const seq = this.pushSeq;
          try {
            await this.refresh(() => seq !== this.pushSeq);
            this.httpDown = false;
          } catch (error) {
            this.httpDown = error instanceof ApiError && error.code === "NETWORK";
            if (this.onRefreshError) this.onRefreshError(error);
          }
          this.paintIndicator();
        } while (this.refreshAgain);
      } finally {
        this.refreshing = false;
      }
    }
  }

  /** Connections in a row that end before the server said anything: then the screen polls. */
  const FEED_FAILURES_BEFORE_POLLING = 3;
  /** Close codes of a refused subscribe (bad message, no valid token, not this counter). */
  const FEED_REFUSED = new Set([4400, 4401, 4403]);

  /**
   * The citizen's screen: the counter's display over the plain feed (/live/counter-display),
   * which keeps nothing of GraphQL per screen on the server (see api/src/display_feed.rs). Its
   * messages have the shapes of graphql-transport-ws's `next` and `error`. As `Live`, it re-reads
   * over HTTP on every (re)connection, and polls every 2 s while the socket is down; a socket that
   * keeps ending before the server says anything (a proxy that breaks WebSockets) or a refused
   * subscribe makes it poll, and try the socket again a minute later.
   */
  class DisplayFeed extends Live {
    constructor(refresh, counterId, onData, onError) {
      super(refresh);
      this.counterId = counterId;
      this.onData = onData;
      this.onError = onError;
      this.failures = 0;
    }

    async start() {
      this.setMode("connecting");
      if (typeof WebSocket !== "function") {
        this.setMode("polling");
        return;
      }
      this.connect();
    }

    connect() {
      clearTimeout(this.retryTimer);
      const socket = new WebSocket(`${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/live/counter-display`);
      this.client = socket;
      let heard = false;
      let pingTimer = null;
      let pongTimer = null;
      const ping = () => {
        if (socket.readyState !== WebSocket.OPEN) return;
        socket.send('{"type":"ping"}');
        clearTimeout(pongTimer);
        // A socket that stops answering is dead even if the OS has not noticed yet.
        pongTimer = setTimeout(() => socket.close(), 5000);
      };
      socket.onopen = () => {
        const payload = { authorization: `Bearer ${TOKEN}`, counterId: this.counterId };
        socket.send(JSON.stringify({ type: "subscribe", payload }));
        ping();
        pingTimer = setInterval(ping, 10000);
      };
      socket.onmessage = (event) => {
        if (this.client !== socket) return;
        let message = null;
        try {
          message = JSON.parse(event.data);
        } catch (_) {
          return;
        }
        if (!heard) {
          heard = true;
          this.failures = 0;
          this.setMode("ws");
          // The server sends the current display on subscribe; this also covers the gap.
          this.refreshNow();
        }
        if (message.type === "pong") {
          clearTimeout(pongTimer);
        } else if (message.type === "next") {
          this.deliver(message.payload || {}, this.onData, this.onError);
        } else if (message.type === "error" && Array.isArray(message.payload) && message.payload.length) {
          this.onError(fromGraphqlError(message.payload[0]));
        }
      };
      socket.onclose = (event) => {
        clearInterval(pingTimer);
        clearTimeout(pongTimer);
        if (this.client !== socket) return;
        this.client = null;
        this.failures = heard ? 0 : this.failures + 1;
        if (FEED_REFUSED.has(event.code) || this.failures >= FEED_FAILURES_BEFORE_POLLING) {
          console.warn("feeledger: live updates unavailable, polling instead", event.code, event.reason);
          this.failures = 0;
          this.setMode("polling");
          this.retryTimer = setTimeout(() => this.connect(), 60000);
          return;
        }
        this.setMode("reconnecting");
        const wait = Math.min(1000 * 2 ** this.failures, 15000) + Math.floor(Math.random() * 1000);
        this.retryTimer = setTimeout(() => this.connect(), wait);
      };
    }
  }

  /**
   * Whether `incoming` may replace `shown`: never an older version of the same case, and an HTTP
   * answer that raced a push only when it is strictly newer.
   */
  function newer(incoming, shown, codeKey, racedPush) {
    const same = incoming && shown && incoming[codeKey] === shown[codeKey];
    if (racedPush) return Boolean(same && incoming.version > shown.version);
    return !(same && incoming.version < shown.version);
  }

  /** Retries `task` every 5 s until it succeeds, showing `onError` meanwhile. */
  async function untilItWorks(task, onError) {
    for (;;) {
      try {
        return await task();
      } catch (error) {
        onError(error);
        await sleep(5000);
      }
    }
  }

  // --- GraphQL documents ---------------------------------------------------------------------

  const QR_FIELDS = "id payload amount reference svgUrl pngUrl expiresAt payable expired";
  // The display feed answers with this selection (`DISPLAY_SELECTION` in api/src/graphql/counter.rs).
  const DISPLAY_FIELDS = `caseCode agencyName counterId procedureName status state message total paid outstanding
    overpaid payer { name maskedId } lines { feeCode name kind quantity unitAmount amount }
    qr { ${QR_FIELDS} } updatedAt version`;
  const CASE_FIELDS = `code agencyCode procedureName status total paid outstanding overpaid version updatedAt
    cancellationReason payer { name maskedId } lines { feeCode name kind quantity unitAmount amount }
    qr { ${QR_FIELDS} } payments { id amount channel reference provider receivedAt }`;

  // ==========================================================================================
  // The citizen's screen
  // ==========================================================================================

  function startDisplay() {
    const stage = $("app");
    let agency = null;
    let shown = null; // the counterDisplay, or null when nothing was ever shown here
    let loaded = false;
    let problem = null;
    let renderedKey = null;
    let qrImage = null; // kept across renders so the image does not reload
    let live = null;

    setText("counter-name", counterLabel(COUNTER_ID));
    document.title = `${counterLabel(COUNTER_ID)} — màn hình thanh toán`;

    function fail(error) {
      problem = error;
      render();
    }

    function accept(display, racedPush) {
      if (!newer(display, shown, "caseCode", racedPush)) return;
      shown = display;
      loaded = true;
      problem = null;
      render();
    }

    /** What to show: the idle greeting when nothing is current or a finished case has aged. */
    function view() {
      const refused = problem && (problem.code === "UNAUTHENTICATED" || problem.code === "FORBIDDEN");
      if (problem && (!loaded || refused)) return { kind: "problem" };
      if (!shown) return { kind: "idle" };
      const finished = shown.state === "PAID" || shown.state === "CANCELLED";
      const age = now() - Date.parse(shown.updatedAt || "");
      if (finished && age > DISPLAY_CLEAR_AFTER_MS) return { kind: "idle" };
      return { kind: shown.state };
    }

    function render() {
      const v = view();
      const key = JSON.stringify([v.kind, shown, agency && agency.name, problem && problem.code]);
      setText("agency-name", (agency && agency.name) || (shown && shown.agencyName) || "");
      document.body.dataset.state = v.kind;
      if (key === renderedKey) return;
      renderedKey = key;
      let content;
      switch (v.kind) {
        case "problem":
          content = problemView(problem);
          break;
        case "idle":
          content = idleView();
          break;
        case "WAITING":
          content = payView();
          break;
        case "PARTIALLY_PAID":
          content = shown.qr && shown.qr.payable ? payView() : partialView();
          break;
        case "PAID":
          content = paidView();
          break;
        default:
          content = messageView();
      }
      stage.replaceChildren(content);
      tick();
    }

    function problemView(error) {
      const needsToken = !TOKEN || error.code === "UNAUTHENTICATED" || error.code === "FORBIDDEN";
      return h(
        "section",
        { class: "d-card d-problem", "data-testid": "display-problem" },
        h("h1", {}, "Màn hình tạm thời chưa sẵn sàng"),
        h("p", {}, "Quý khách vui lòng liên hệ cán bộ tại quầy."),
        h("p", { class: "d-small" }, needsToken ? "Cần mở lại màn hình bằng đường dẫn có mã truy cập. " : "", describe(error)),
        detail(error) ? h("p", { class: "d-small" }, detail(error)) : null,
      );
    }

    function idleView() {
      const name = (agency && agency.name) || "";
      return h(
        "section",
        { class: "d-idle", "data-testid": "display-idle" },
        h("div", { class: "d-idle-agency" }, name),
        h("h1", { class: "d-idle-greeting" }, "Xin kính chào quý khách"),
        h("p", { class: "d-idle-sub" }, `${counterLabel(COUNTER_ID)} · Thanh toán phí, lệ phí bằng mã QR`),
      );
    }

    function payerText() {
      const payer = shown.payer || {};
      if (!payer.maskedId) return payer.name || "";
      return h("span", {}, `${payer.name} · `, h("span", { class: "nowrap" }, payer.maskedId));
    }

    function facts(rows) {
      return h(
        "dl",
        { class: "d-facts" },
        rows.filter((r) => r && r[1]).map(([label, value, cls]) => [h("dt", {}, label), h("dd", { class: cls || null }, value)]),
      );
    }

    function beneficiary() {
      if (!agency) return shown.agencyName;
      const bank = BANKS[agency.bankBin] || `Ngân hàng ${agency.bankBin}`;
      return h(
        "span",
        {},
        agency.name,
        h("span", { class: "d-sub" }, `${agency.accountName} · ${bank} · ${agency.accountNumber}`),
      );
    }

    function qrImageFor(qr) {
      if (!qrImage || qrImage.dataset.qrId !== qr.id) {
        qrImage = h("img", {
          id: "qr-image",
          class: "d-qr-img",
          src: qr.svgUrl,
          alt: `Mã VietQR thanh toán ${vnd(qr.amount)} cho hồ sơ ${shown.caseCode}`,
          width: 360,
          height: 360,
          dataset: { payload: qr.payload, qrId: qr.id },
        });
      }
      return qrImage;
    }

    function payView() {
      const qr = shown.qr;
      const partial = toBig(shown.paid) > 0n;
      const amountBlock = partial
        ? [
            h("div", { class: "d-amount-label" }, `Đã nhận ${vnd(shown.paid)} trên tổng ${vnd(shown.total)}`),
            h("div", { class: "d-amount d-remaining", id: "display-amount" }, `Còn lại ${vnd(qr.amount)}`),
          ]
        : [
            h("div", { class: "d-amount-label" }, "Số tiền cần thanh toán"),
            h("div", { class: "d-amount", id: "display-amount" }, vnd(qr.amount)),
          ];
      return h(
        "section",
        { class: "d-pay", "data-testid": "display-waiting" },
        h(
          "div",
          { class: "d-qr" },
          h("div", { class: "d-qr-frame", dataset: { expired: "false" } }, qrImageFor(qr), h("div", { class: "d-qr-expired" }, "Mã QR đã hết hạn")),
          h("div", { class: "d-qr-caption" }, "Quét mã VietQR để thanh toán"),
          h("div", { class: "d-countdown", id: "qr-countdown", dataset: { expiresAt: qr.expiresAt } }),
        ),
        h(
          "div",
          { class: "d-info" },
          amountBlock,
          facts([
            ["Mã hồ sơ", shown.caseCode, "mono"],
            ["Thủ tục", shown.procedureName],
            ["Người nộp", payerText()],
            ["Nội dung chuyển khoản", qr.reference, "mono"],
            ["Đơn vị thụ hưởng", beneficiary()],
          ]),
          h(
            "ol",
            { class: "d-steps" },
            h("li", {}, "Mở ứng dụng ngân hàng hoặc ví điện tử bất kỳ."),
            h("li", {}, "Chọn quét mã QR và quét mã trên màn hình."),
            h("li", {}, "Kiểm tra số tiền và nội dung chuyển khoản."),
            h("li", {}, "Xác nhận thanh toán. Màn hình sẽ báo ngay khi nhận được tiền."),
          ),
        ),
      );
    }

    function partialView() {
      return h(
        "section",
        { class: "d-card d-partial", "data-testid": "display-partial" },
        h("div", { class: "d-amount-label" }, `Đã nhận ${vnd(shown.paid)} trên tổng ${vnd(shown.total)}`),
        h("div", { class: "d-amount d-remaining", id: "display-amount" }, `Còn lại ${vnd(shown.outstanding)}`),
        h("p", { class: "d-message" }, "Vui lòng chờ cán bộ tạo mã QR cho số tiền còn lại"),
        facts([
          ["Mã hồ sơ", shown.caseCode, "mono"],
          ["Thủ tục", shown.procedureName],
          ["Người nộp", payerText()],
        ]),
      );
    }

    function paidView() {
      const overpaid = toBig(shown.overpaid) > 0n;
      return h(
        "section",
        { class: "d-card d-paid", "data-testid": "display-paid" },
        h("div", { class: "d-check", "aria-hidden": "true" }),
        h("h1", { class: "d-paid-title" }, "Thanh toán thành công"),
        h("div", { class: "d-paid-amount" }, `Đã nhận ${vnd(shown.paid)}`),
        facts([
          ["Mã hồ sơ", shown.caseCode, "mono"],
          ["Thủ tục", shown.procedureName],
          ["Người nộp", payerText()],
        ]),
        overpaid
          ? h("p", { class: "d-note" }, `Số tiền nộp thừa ${vnd(shown.overpaid)} sẽ được hoàn trả cho quý khách.`)
          : null,
        h("p", { class: "d-thanks" }, "Cảm ơn quý khách."),
      );
    }

    function messageView() {
      const showAmount = shown.state === "ASSESSED" || shown.state === "EXPIRED";
      return h(
        "section",
        { class: "d-card d-notice", "data-testid": "display-message", dataset: { state: shown.state } },
        h("p", { class: "d-message" }, shown.message),
        showAmount ? h("div", { class: "d-amount-label" }, "Số tiền phải nộp") : null,
        showAmount ? h("div", { class: "d-amount", id: "display-amount" }, vnd(shown.outstanding)) : null,
        facts([
          ["Mã hồ sơ", shown.caseCode, "mono"],
          ["Thủ tục", shown.procedureName],
          ["Người nộp", payerText()],
        ]),
      );
    }

    /** Every second: the clock, the QR countdown, and ageing a finished case off the screen. */
    function tick() {
      setText("clock", clockText(new Date(now())));
      const countdown = $("qr-countdown");
      if (countdown) {
        const left = Math.max(0, Math.floor((Date.parse(countdown.dataset.expiresAt) - now()) / 1000));
        const frame = countdown.parentElement.querySelector(".d-qr-frame");
        if (left > 0) {
          const mm = String(Math.floor(left / 60)).padStart(2, "0");
          const ss = String(left % 60).padStart(2, "0");
          setText("qr-countdown", `Mã hết hạn sau ${mm}:${ss}`);
          countdown.dataset.urgent = left <= 60 ? "true" : "false";
        } else {
          setText("qr-countdown", "Mã QR đã hết hạn. Vui lòng đề nghị cán bộ tạo mã mới.");
          countdown.dataset.urgent = "true";
        }
        if (frame) frame.dataset.expired = left > 0 ? "false" : "true";
      }
      if (shown) render();
    }

    async function refresh(racedPush) {
      const data = await gql(`query($c: String!) { counterDisplay(counterId: $c) { ${DISPLAY_FIELDS} } }`, {
        c: COUNTER_ID,
      });
      accept(data.counterDisplay, racedPush());
    }

    async function boot() {
      if (!TOKEN) {
        fail(new ApiError("UNAUTHENTICATED", "thiếu ?token= trong đường dẫn"));
        return;
      }
      const me = await untilItWorks(async () => (await gql("{ me { subject role agencyCode counterId } }")).me, fail);
      if (me.agencyCode) {
        agency = await untilItWorks(
          async () =>
            (
              await gql("query($a: String!) { agency(code: $a) { name accountName accountNumber bankBin } }", {
                a: me.agencyCode,
              })
            ).agency,
          fail,
        );
      }
      live = new DisplayFeed(refresh, COUNTER_ID, (data) => accept(data.counterDisplay, false), fail);
      live.onRefreshError = (error) => {
        if (!loaded || error.code !== "NETWORK") fail(error);
      };
      await live.refreshNow();
      render();
      await live.start();
    }

    setInterval(tick, 1000);
    tick();
    boot();
  }

  // ==========================================================================================
  // The officer's screen
  // ==========================================================================================

  function startCounter() {
    let me = null;
    let agency = null;
    let fees = [];
    let counterShown = null; // counterDisplay: which case the counter's screens show
    let lastCounterCase = null;
    let panelCode = null; // the case in the panel
    let panel = null; // its data (Case)
    let live = null;
    let paymentAmountEdited = false;

    setText("counter-name", counterLabel(COUNTER_ID));
    document.title = `${counterLabel(COUNTER_ID)} — thu phí`;

    let standingWarning = null; // shown whenever there is no error to show

    function banner(error) {
      const el = $("banner");
      const shown = error || standingWarning;
      if (!shown) {
        el.hidden = true;
        return;
      }
      el.replaceChildren(...errorContent(shown).filter(Boolean));
      el.hidden = false;
    }

    // ---- the case panel ----

    function acceptCase(data, racedPush) {
      if (!data || data.code !== panelCode) return;
      if (!newer(data, panel, "code", racedPush)) return;
      panel = data;
      renderCase();
    }

    function showCase(code, data) {
      if (code !== panelCode) {
        panelCode = code;
        panel = null;
        paymentAmountEdited = false;
        showError("qr-error", null);
        showError("payment-error", null);
      }
      if (data) acceptCase(data, false);
      if (live) {
        live.watch(
          "case",
          `subscription($code: String!) { caseStatus(code: $code) { ${CASE_FIELDS} } }`,
          { code },
          (d) => acceptCase(d.caseStatus, false),
          banner,
        );
      }
      if (!data) refreshCase();
    }

    async function refreshCase() {
      const code = panelCode;
      if (!code) return;
      try {
        const data = await gql(`query($code: String!) { case(code: $code) { ${CASE_FIELDS} } }`, { code });
        if (code === panelCode) acceptCase(data.case, false);
      } catch (error) {
        banner(error);
      }
    }

    function renderCase() {
      const c = panel;
      const body = $("case-body");
      $("case-panel").dataset.empty = c ? "false" : "true";
      $("case-empty").hidden = Boolean(c);
      body.hidden = !c;
      if (!c) return;
      $("case-panel").dataset.caseCode = c.code;
      setText("case-code", c.code);
      setText("case-procedure", c.procedureName || "");
      const status = $("case-status");
      status.dataset.status = c.status;
      setText("case-status", STATUS_TEXT[c.status] || c.status);
      setText("case-payer-name", (c.payer && c.payer.name) || "");
      setText("case-payer-id", c.payer && c.payer.maskedId ? `· ${c.payer.maskedId}` : "");

      $("case-lines").replaceChildren(
        ...c.lines.map((line) =>
          h(
            "tr",
            { dataset: { feeCode: line.feeCode } },
            h("td", {}, h("div", {}, line.name), h("div", { class: "mono muted small" }, line.feeCode)),
            h("td", {}, h("span", { class: "kind", dataset: { kind: line.kind } }, KIND_TEXT[line.kind] || line.kind)),
            h("td", { class: "num" }, String(line.quantity)),
            h("td", { class: "num" }, vnd(line.unitAmount)),
            h("td", { class: "num" }, vnd(line.amount)),
          ),
        ),
      );
      setText("case-total", vnd(c.total));
      setText("case-paid", vnd(c.paid));
      setText("case-outstanding", vnd(c.outstanding));
      $("case-outstanding").parentElement.dataset.zero = toBig(c.outstanding) === 0n ? "true" : "false";
      $("case-overpaid-box").hidden = toBig(c.overpaid) === 0n;
      setText("case-overpaid", vnd(c.overpaid));

      const open = c.status !== "CANCELLED" && toBig(c.outstanding) > 0n;
      // The printable slip whose QR leads the citizen to the public payment page.
      $("print-slip").href = `/cases/${encodeURIComponent(c.code)}/slip?token=${encodeURIComponent(TOKEN)}`;
      const createQr = $("create-qr");
      createQr.disabled = !open;
      const payable = Boolean(c.qr && c.qr.payable);
      const partlyPaid = open && toBig(c.paid) > 0n;
      setText(
        "create-qr",
        payable
          ? "Tạo lại mã QR thanh toán"
          : partlyPaid
            ? `Tạo mã QR thanh toán · còn lại ${vnd(c.outstanding)}`
            : "Tạo mã QR thanh toán",
      );
      renderQrPreview(c);

      for (const el of $("payment-form").elements) el.disabled = !open;
      const amount = $("payment-amount");
      if (!paymentAmountEdited || !open) amount.value = open ? String(toBig(c.outstanding)) : "";

      const payments = c.payments || [];
      $("payments-body").replaceChildren(
        ...(payments.length
          ? payments.map((p) =>
              h(
                "tr",
                { dataset: { paymentId: p.id } },
                h("td", { title: dateTimeText(p.receivedAt) }, timeText(p.receivedAt)),
                h("td", {}, CHANNEL_TEXT[p.channel] || p.channel),
                h("td", { class: "num" }, vnd(p.amount)),
                h("td", { class: "mono" }, p.reference),
              ),
            )
          : [h("tr", {}, h("td", { colspan: 4, class: "muted" }, "Chưa có khoản thanh toán nào."))]),
      );
      renderCounterNote();
    }

    function renderQrPreview(c) {
      const preview = $("qr-preview");
      const qr = c.qr;
      if (!qr) {
        preview.hidden = true;
        return;
      }
      preview.hidden = false;
      const img = $("officer-qr-image");
      if (img.dataset.qrId !== qr.id) {
        img.src = qr.svgUrl;
        img.dataset.qrId = qr.id;
        img.dataset.payload = qr.payload;
      }
      preview.dataset.state = qr.payable ? "payable" : qr.expired ? "expired" : "superseded";
      setText("qr-preview-amount", vnd(qr.amount));
      setText(
        "qr-preview-state",
        qr.payable
          ? "Đang hiển thị cho người nộp"
          : qr.expired
            ? "Mã QR đã hết hạn"
            : toBig(c.outstanding) === 0n
              ? "Đã thanh toán"
              : "Không còn hiệu lực (số tiền còn lại đã thay đổi)",
      );
      setText("qr-preview-expiry", qr.payable ? `Hết hạn lúc ${timeText(qr.expiresAt)}` : "");
    }

    function renderCounterNote() {
      const note = $("case-counter-note");
      const d = counterShown;
      if (!d || !panel || d.caseCode !== panel.code) {
        note.hidden = true;
        return;
      }
      note.hidden = false;
      note.dataset.state = d.state;
      setText("case-counter-note", `Màn hình người nộp: ${DISPLAY_STATE_TEXT[d.state] || d.state}`);
    }

    function acceptCounter(display) {
      if (display && counterShown && !newer(display, counterShown, "caseCode", false)) return;
      counterShown = display;
      const code = display && display.caseCode;
      if (code && code !== lastCounterCase) {
        lastCounterCase = code;
        if (code !== panelCode) showCase(code, null);
      }
      renderCounterNote();
    }

    async function refresh(racedPush) {
      const code = panelCode;
      const data = await gql(
        `query($counter: String!, $code: String!, $withCase: Boolean!) {
          counterDisplay(counterId: $counter) { caseCode state version }
          case(code: $code) @include(if: $withCase) { ${CASE_FIELDS} }
        }`,
        { counter: COUNTER_ID, code: code || "", withCase: Boolean(code) },
      );
      const raced = racedPush();
      if (!raced) acceptCounter(data.counterDisplay);
      if (code && code === panelCode && data.case) acceptCase(data.case, raced);
      banner(null);
    }

    // ---- search ----

    $("search-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const code = $("search-case-code").value.trim();
      showError("search-error", null);
      if (!code) {
        showError("search-error", "Nhập mã hồ sơ cần tìm.");
        return;
      }
      const button = $("search-submit");
      button.disabled = true;
      try {
        const data = await gql(`query($code: String!) { case(code: $code) { ${CASE_FIELDS} } }`, { code });
        if (!data.case) {
          showError("search-error", `Không tìm thấy hồ sơ ${code} (chưa được tính phí).`);
          return;
        }
        showCase(data.case.code, data.case);
      } catch (error) {
        showError("search-error", error);
      } finally {
        button.disabled = false;
      }
    });

    // ---- new assessment ----

    function feeOptions() {
      return fees.map((fee) =>
        h("option", { value: fee.feeCode }, `${fee.name} — ${vnd(fee.unitAmount)}`),
      );
    }

    function addLine(feeCode) {
      const row = h(
        "div",
        { class: "fee-line", "data-testid": "fee-line" },
        h(
          "select",
          { class: "fee-line-code", "data-testid": "fee-line-code", "aria-label": "Khoản thu", onchange: updateTotal },
          feeOptions(),
        ),
        h(
          "button",
          {
            type: "button",
            class: "btn btn-icon",
            "data-testid": "fee-line-remove",
            "aria-label": "Bỏ khoản thu",
            title: "Bỏ khoản thu",
            onclick: () => {
              row.remove();
              updateTotal();
            },
          },
          "×",
        ),
        h(
          "div",
          { class: "fee-line-calc" },
          h("span", { class: "muted" }, "Số lượng"),
          h("input", {
            class: "fee-line-qty num-input",
            "data-testid": "fee-line-qty",
            type: "number",
            min: 1,
            step: 1,
            value: "1",
            "aria-label": "Số lượng",
            oninput: updateTotal,
          }),
          h("span", { class: "fee-line-unit muted" }),
          h("strong", { class: "fee-line-amount" }),
        ),
      );
      if (feeCode) row.querySelector("select").value = feeCode;
      $("assess-lines").append(row);
      updateTotal();
      return row;
    }

    function formLines() {
      return Array.from($("assess-lines").querySelectorAll(".fee-line")).map((row) => ({
        row,
        feeCode: row.querySelector(".fee-line-code").value,
        quantity: Number(row.querySelector(".fee-line-qty").value),
      }));
    }

    function updateTotal() {
      let total = 0n;
      const rows = formLines();
      for (const line of rows) {
        const fee = fees.find((f) => f.feeCode === line.feeCode);
        const ok = fee && Number.isInteger(line.quantity) && line.quantity > 0;
        const amount = ok ? toBig(fee.unitAmount) * BigInt(line.quantity) : 0n;
        total += amount;
        line.row.querySelector(".fee-line-unit").textContent = fee ? `× ${vnd(fee.unitAmount)} =` : "";
        line.row.querySelector(".fee-line-amount").textContent = ok ? vnd(amount) : "—";
        line.row.querySelector("[data-testid=fee-line-remove]").disabled = rows.length <= 1;
      }
      setText("assess-total", vnd(total));
    }

    function resetAssessForm() {
      $("assess-form").reset();
      $("assess-case-code").value = me && me.agencyCode ? `${me.agencyCode}-${todayCode()}-` : "";
      $("assess-lines").replaceChildren();
      if (fees.length) addLine(fees[0].feeCode);
      updateTotal();
    }

    /** One idempotency key per submission; a retry of the very same request reuses it. */
    function keyFor(slot, request) {
      const fingerprint = JSON.stringify(request);
      if (!slot.key || slot.fingerprint !== fingerprint) {
        slot.key = uuid();
        slot.fingerprint = fingerprint;
      }
      return slot.key;
    }
    const assessKey = {};
    const paymentKey = {};

    // A screen left open past midnight: date the prefilled case code today.
    $("assess-case-code").addEventListener("focus", () => {
      const field = $("assess-case-code");
      const prefix = `${me.agencyCode}-${todayCode()}-`;
      if (/-\d{6}-$/.test(field.value) && field.value !== prefix) field.value = prefix;
    });

    $("assess-add-line").addEventListener("click", () => {
      const used = new Set(formLines().map((l) => l.feeCode));
      const next = fees.find((f) => !used.has(f.feeCode)) || fees[0];
      const row = addLine(next ? next.feeCode : null);
      row.querySelector("select").focus();
    });

    $("assess-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("assess-error", null);
      const lines = formLines();
      const input = {
        caseCode: $("assess-case-code").value.trim(),
        agencyCode: me.agencyCode,
        procedureName: $("assess-procedure").value.trim(),
        payer: { name: $("assess-payer-name").value.trim(), idNumber: $("assess-payer-id").value.trim() || null },
        lines: lines.map((l) => ({ feeCode: l.feeCode, quantity: l.quantity })),
      };
      const missing = [];
      if (!/-\d{4}$/.test(input.caseCode)) missing.push("mã hồ sơ (đủ 4 chữ số cuối)");
      if (!input.procedureName) missing.push("thủ tục");
      if (!input.payer.name) missing.push("người nộp");
      if (!lines.length || lines.some((l) => !Number.isInteger(l.quantity) || l.quantity < 1)) {
        missing.push("khoản thu và số lượng");
      }
      if (missing.length) {
        showError("assess-error", `Vui lòng nhập ${missing.join(", ")}.`);
        return;
      }
      input.idempotencyKey = keyFor(assessKey, input);
      const button = $("assess-submit");
      button.disabled = true;
      try {
        const data = await gql(
          `mutation($input: AssessFeesInput!) { assessFees(input: $input) { ${CASE_FIELDS} } }`,
          { input },
        );
        assessKey.key = null;
        resetAssessForm();
        showCase(data.assessFees.code, data.assessFees);
      } catch (error) {
        showError("assess-error", error);
      } finally {
        button.disabled = false;
      }
    });

    // ---- QR and counter payments ----

    $("create-qr").addEventListener("click", async () => {
      if (!panel) return;
      const button = $("create-qr");
      showError("qr-error", null);
      button.disabled = true;
      try {
        await gql(
          `mutation($code: String!, $counter: String!) { issueQr(caseCode: $code, counterId: $counter) { ${QR_FIELDS} } }`,
          { code: panel.code, counter: COUNTER_ID },
        );
        await refreshCase();
      } catch (error) {
        showError("qr-error", error);
      } finally {
        renderCase();
      }
    });

    $("payment-amount").addEventListener("input", () => {
      paymentAmountEdited = true;
    });

    $("payment-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!panel) return;
      showError("payment-error", null);
      const amount = $("payment-amount").value.replace(/[.\s,_]/g, "");
      const reference = $("payment-reference").value.trim();
      if (!/^\d+$/.test(amount) || toBig(amount) === 0n) {
        showError("payment-error", "Số tiền phải là số nguyên dương (VND).");
        return;
      }
      if (!reference) {
        showError("payment-error", "Nhập số hóa đơn POS hoặc số phiếu thu.");
        return;
      }
      const input = { caseCode: panel.code, amount, channel: $("payment-channel").value, reference };
      input.idempotencyKey = keyFor(paymentKey, input);
      const button = $("payment-submit");
      button.disabled = true;
      try {
        const data = await gql(
          `mutation($input: RecordPaymentInput!) { recordPayment(input: $input) { ${CASE_FIELDS} } }`,
          { input },
        );
        paymentKey.key = null;
        $("payment-reference").value = "";
        paymentAmountEdited = false;
        acceptCase(data.recordPayment, false);
      } catch (error) {
        showError("payment-error", error);
      } finally {
        renderCase();
      }
    });

    // ---- start ----

    async function boot() {
      if (!TOKEN) {
        banner(new ApiError("UNAUTHENTICATED", "mở màn hình bằng đường dẫn có ?token="));
        for (const el of document.querySelectorAll("button, input, select")) el.disabled = true;
        return;
      }
      me = await untilItWorks(async () => (await gql("{ me { subject role agencyCode counterId } }")).me, banner);
      setText("officer-name", me.subject);
      if (me.counterId && me.counterId !== COUNTER_ID) {
        standingWarning = `Mã truy cập này dành cho ${counterLabel(me.counterId)}, không phải ${counterLabel(COUNTER_ID)}.`;
      }
      if (!me.agencyCode) {
        banner(new ApiError("FORBIDDEN", "mã truy cập không gắn với cơ quan nào"));
        return;
      }
      const setup = await untilItWorks(
        () =>
          gql(
            `query($a: String!) {
              agency(code: $a) { name counters }
              feeScheduleInForce(agencyCode: $a) { version fees { feeCode name kind unitAmount } }
            }`,
            { a: me.agencyCode },
          ),
        banner,
      );
      agency = setup.agency;
      setText("agency-name", agency ? agency.name : me.agencyCode);
      fees = (setup.feeScheduleInForce && setup.feeScheduleInForce.fees) || [];
      if (!fees.length) {
        showError("assess-error", "Cơ quan chưa có biểu phí đang áp dụng; không thể tính phí.");
        $("assess-submit").disabled = true;
      }
      banner(null);
      resetAssessForm();

      live = new Live(refresh);
      live.onRefreshError = banner;
      await live.refreshNow();
      live.watch(
        "display",
        `subscription($c: String!) { counterDisplay(counterId: $c) { caseCode state version } }`,
        { c: COUNTER_ID },
        (data) => acceptCounter(data.counterDisplay),
        banner,
      );
      await live.start();
    }

    boot();
  }

  if (PAGE === "display") startDisplay();
  else startCounter();
})();
