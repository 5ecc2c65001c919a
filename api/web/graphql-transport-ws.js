/*
 * A compact client of the graphql-transport-ws protocol (the one /graphql/ws speaks), written
 * here so that the screens are live with nothing but the binary: no npm step at build time, no
 * CDN at run time. It offers the part of the `graphql-ws` library's API the screens use:
 *
 *   const client = graphqlWs.createClient({ url, connectionParams, lazy: false, retryAttempts,
 *     shouldRetry, retryWait, keepAlive, onNonLazyError, on: { connected, closed, ping, pong } });
 *   const dispose = client.subscribe({ query, variables }, { next, error, complete });
 *   client.dispose(); client.terminate();
 *
 * Protocol (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md): connection_init →
 * connection_ack; subscribe {id, payload} → next* (error | complete); complete from either side;
 * ping ↔ pong from either side. After a lost socket it reconnects (retryWait between tries) and
 * subscribes again whatever was active. Close codes 4400 (bad message), 4401 (unauthorised),
 * 4403, 4406 (protocol), 4409 (duplicate id), 4429 (too many inits) and 4500 end it for good.
 */
"use strict";

(function () {
  const FATAL_CLOSE_CODES = new Set([4400, 4401, 4403, 4406, 4409, 4429, 4500]);
  const PROTOCOL = "graphql-transport-ws";

  function createClient(options) {
    const on = options.on || {};
    const emit = (name, ...args) => {
      if (typeof on[name] === "function") on[name](...args);
    };
    const retryAttempts = options.retryAttempts === undefined ? 5 : options.retryAttempts;
    const shouldRetry = options.shouldRetry || (() => true);
    const retryWait =
      options.retryWait || ((retries) => new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** retries)));
    const keepAlive = options.keepAlive || 0;

    /** id → { payload, sink, done } of the subscriptions the caller has not ended. */
    const active = new Map();
    let nextId = 1;
    let socket = null;
    let acknowledged = false;
    let retries = 0;
    let retrying = false;
    let disposed = false;
    let pingTimer = null;

    function send(message) {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    }

    function startSubscription(id) {
      const subscription = active.get(id);
      if (subscription && acknowledged) send({ id, type: "subscribe", payload: subscription.payload });
    }

    function fail(error) {
      // Nothing more will come: tell every subscriber, then the owner.
      for (const subscription of active.values()) {
        if (typeof subscription.sink.error === "function") subscription.sink.error(error);
      }
      active.clear();
      if (typeof options.onNonLazyError === "function") options.onNonLazyError(error);
    }

    async function connect() {
      if (disposed) return;
      let params = {};
      try {
        params = typeof options.connectionParams === "function" ? await options.connectionParams() : options.connectionParams || {};
      } catch (error) {
        fail(error);
        return;
      }
      const ws = new WebSocket(options.url, PROTOCOL);
      socket = ws;
      acknowledged = false;
      ws.onopen = () => {
        emit("opened", ws);
        send({ type: "connection_init", payload: params });
      };
      ws.onmessage = (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (_) {
          ws.close(4400, "Invalid message received");
          return;
        }
        handle(ws, message);
      };
      ws.onclose = (event) => closed(ws, event);
    }

    function handle(ws, message) {
      const subscription = message.id === undefined ? undefined : active.get(message.id);
      switch (message.type) {
        case "connection_ack":
          acknowledged = true;
          retries = 0;
          emit("connected", ws, message.payload);
          for (const id of active.keys()) startSubscription(id);
          if (keepAlive > 0) {
            clearInterval(pingTimer);
            pingTimer = setInterval(() => {
              send({ type: "ping" });
              emit("ping", false, undefined);
            }, keepAlive);
          }
          break;
        case "ping":
          emit("ping", true, message.payload);
          send({ type: "pong" });
          break;
        case "pong":
          emit("pong", true, message.payload);
          break;
        case "next":
          if (subscription && typeof subscription.sink.next === "function") subscription.sink.next(message.payload);
          break;
        case "error":
          if (subscription) {
            active.delete(message.id);
            if (typeof subscription.sink.error === "function") subscription.sink.error(message.payload);
          }
          break;
        case "complete":
          if (subscription) {
            active.delete(message.id);
            if (typeof subscription.sink.complete === "function") subscription.sink.complete();
          }
          break;
        default:
          ws.close(4400, "Invalid message received");
      }
    }

    async function closed(ws, event) {
      clearInterval(pingTimer);
      if (socket === ws) socket = null;
      emit("closed", event);
      if (disposed) return;
      const fatal = FATAL_CLOSE_CODES.has(event.code);
      if (fatal || retries >= retryAttempts || !shouldRetry(event)) {
        fail(event);
        return;
      }
      const attempt = retries;
      retries += 1;
      retrying = true;
      await retryWait(attempt);
      retrying = false;
      connect();
    }

    const client = {
      subscribe(payload, sink) {
        const id = String(nextId++);
        active.set(id, { payload, sink });
        if (options.lazy !== false && !socket && !retrying && !disposed) connect();
        else startSubscription(id);
        return () => {
          if (!active.has(id)) return;
          active.delete(id);
          send({ id, type: "complete" });
          if (typeof sink.complete === "function") sink.complete();
        };
      },
      /** Ends every subscription and closes the socket for good. */
      dispose() {
        disposed = true;
        clearInterval(pingTimer);
        for (const [id] of active) send({ id, type: "complete" });
        active.clear();
        if (socket) socket.close(1000, "Normal Closure");
      },
      /** Drops the socket at once (it stopped answering); the client reconnects. */
      terminate() {
        if (!socket) return;
        const ws = socket;
        ws.onclose = null;
        ws.onmessage = null;
        try {
          ws.close(4499, "Terminated");
        } catch (_) {
          // already closed
        }
        closed(ws, { code: 4499, reason: "Terminated", wasClean: false });
      },
    };
    if (options.lazy === false) connect();
    return client;
  }

  window.graphqlWs = { createClient };
})();
