// Drives sockjs-client through every check of one transport and resolves to a JSON-able
// result. The Python side calls `runChecks(options)` through Playwright and asserts on it.
// Every wait is bounded by a timeout and ends on a real event from the client.
"use strict";

function logLine(text) {
  var el = document.getElementById("log");
  if (el) {
    el.textContent += text + "\n";
  }
}

// One SockJS connection with a queue of received messages and counters of events.
function Connection(url, transport) {
  var self = this;
  this.messages = [];
  this.waiters = [];
  this.heartbeats = 0;
  this.heartbeatWaiters = [];
  this.closeEvent = null;
  this.closeWaiters = [];
  this.opened = new Promise(function (resolve, reject) {
    self.sj = new SockJS(url, null, { transports: [transport] });
    self.sj.onopen = function () {
      resolve(self.sj.transport);
    };
    self.sj.onmessage = function (e) {
      self.messages.push(e.data);
      self._wake();
    };
    self.sj.addEventListener("heartbeat", function () {
      self.heartbeats += 1;
      self._wake();
    });
    self.sj.onclose = function (e) {
      self.closeEvent = { code: e.code, reason: e.reason, wasClean: e.wasClean };
      reject(new Error("closed before open: " + e.code + " " + e.reason));
      self._wake();
    };
  });
}

Connection.prototype._wake = function () {
  var waiters = this.waiters;
  this.waiters = [];
  waiters.forEach(function (w) {
    w();
  });
};

// Resolve once predicate() is true, re-checking after every client event; reject after ms.
Connection.prototype.until = function (predicate, ms, what, closeExpected) {
  var self = this;
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () {
      reject(new Error("timed out after " + ms + " ms waiting for " + what));
    }, ms);
    function check() {
      var value;
      try {
        value = predicate();
      } catch (err) {
        clearTimeout(timer);
        reject(err);
        return;
      }
      if (value) {
        clearTimeout(timer);
        resolve(value);
      } else if (self.closeEvent && !closeExpected) {
        clearTimeout(timer);
        reject(
          new Error(
            "connection closed (" + self.closeEvent.code + " " + self.closeEvent.reason +
              ") while waiting for " + what
          )
        );
      } else {
        self.waiters.push(check);
      }
    }
    check();
  });
};

// Take the next `count` messages.
Connection.prototype.take = function (count, ms, what) {
  var self = this;
  return this.until(
    function () {
      return self.messages.length >= count;
    },
    ms,
    what
  ).then(function () {
    return self.messages.splice(0, count);
  });
};

function describe(value) {
  var s = JSON.stringify(value);
  if (s.length > 200) {
    s = s.slice(0, 200) + "... (" + value.length + " chars)";
  }
  return s;
}

// Messages the echo checks send; each is a separate check so a failure names the content.
var ASTRAL = "\uD83D\uDE00\uD83D\uDC4D\uD834\uDD1E\uD800\uDC00";
var ECHO_CASES = {
  echo_ascii: "Hello, SockJS! 0123456789 ~!@#$^&*()_+-=[]{};:,./?",
  echo_non_ascii:
    "caf\u00e9 \u00fc\u00df \u65e5\u672c\u8a9e \u0416 \u2603 " + ASTRAL +
    " line\u2028separator para\u2029separator",
  // If a transport lets this break out of its script context (htmlfile pages), the injected
  // script tells the test page; postMessage reaches it from any frame and any origin. No
  // quotes or backslashes, which JSON escaping would turn into a syntax error.
  echo_script_tag:
    "</script><script>top.postMessage(/txsockjs-injected/.source, String.fromCharCode(42))" +
    "</script><!-- -->",
  echo_json_specials: "quote\" backslash\\ slash/ tab\t newline\n return\r nul\u0000 %41 % end",
};

var injectedScripts = 0;
window.addEventListener("message", function (e) {
  if (e.data === "txsockjs-injected") {
    injectedScripts += 1;
  }
});

function checkNoInjection(results) {
  var r = results.echo_script_tag;
  if (r && injectedScripts > 0) {
    r.ok = false;
    r.detail = "a script inside a message ran in the page (" + injectedScripts + " times); " + r.detail;
  }
}

function bigMessage() {
  var unit = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
  var out = "";
  while (out.length < 100 * 1024) {
    out += unit + "[" + out.length + "]";
  }
  return out.slice(0, 100 * 1024);
}

async function runCheck(results, name, fn) {
  var started = Date.now();
  try {
    var detail = await fn();
    results[name] = { ok: true, detail: detail === undefined ? "" : detail };
  } catch (err) {
    results[name] = { ok: false, detail: String(err && err.message ? err.message : err) };
  }
  results[name].ms = Date.now() - started;
  logLine(name + ": " + (results[name].ok ? "ok" : "FAIL " + results[name].detail));
  return results[name].ok;
}

function skipRest(results, names, why) {
  names.forEach(function (n) {
    if (!results[n]) {
      results[n] = { ok: false, detail: "not run: " + why, ms: 0 };
    }
  });
}

async function echoOne(conn, text, ms) {
  conn.sj.send(text);
  var got = (await conn.take(1, ms, "echo of " + describe(text)))[0];
  if (got !== text) {
    throw new Error("sent " + describe(text) + " but received " + describe(got));
  }
  return "echoed " + text.length + " chars";
}

// options: {base, transport, heartbeatDelay (s), closeCode, closeReason}
async function runChecks(options) {
  var results = {};
  var base = options.base;
  var transport = options.transport;
  var allChecks = [
    "open", "transport_reported", "echo_ascii", "echo_non_ascii", "echo_script_tag",
    "echo_json_specials", "echo_100kb", "echo_100_in_order", "heartbeats", "server_close",
  ];
  var conn = new Connection(base + "/echo", transport);
  var opened = await runCheck(results, "open", async function () {
    var timer;
    var timeout = new Promise(function (_, reject) {
      timer = setTimeout(function () {
        reject(new Error("no open event within 15 s"));
      }, 15000);
    });
    try {
      return "transport " + (await Promise.race([conn.opened, timeout]));
    } finally {
      clearTimeout(timer);
    }
  });
  if (!opened) {
    try {
      conn.sj.close();
    } catch (e) {
      /* already closed */
    }
    skipRest(results, allChecks, "the connection did not open");
    return results;
  }
  await runCheck(results, "transport_reported", async function () {
    if (conn.sj.transport !== transport) {
      throw new Error("sj.transport is " + describe(conn.sj.transport) + ", wanted " + transport);
    }
    return conn.sj.transport;
  });
  for (var name of Object.keys(ECHO_CASES)) {
    await runCheck(results, name, function () {
      return echoOne(conn, ECHO_CASES[name], 5000);
    });
  }
  await runCheck(results, "echo_100kb", function () {
    return echoOne(conn, bigMessage(), 15000);
  });
  await runCheck(results, "echo_100_in_order", async function () {
    var sent = [];
    for (var i = 0; i < 100; i++) {
      sent.push("message " + i + " \u00e9\uD83D\uDE00");
      conn.sj.send(sent[i]);
    }
    var got = await conn.take(100, 15000, "100 echoes");
    for (var j = 0; j < 100; j++) {
      if (got[j] !== sent[j]) {
        throw new Error("position " + j + ": wanted " + describe(sent[j]) + ", got " + describe(got[j]));
      }
    }
    return "100 messages in order";
  });
  await runCheck(results, "heartbeats", async function () {
    // No traffic from here on: the connection must live through three heartbeat periods,
    // and the client sees each heartbeat frame as a `heartbeat` event.
    var start = conn.heartbeats;
    var t0 = Date.now();
    var limit = Math.round(options.heartbeatDelay * 1000 * 3 + 10000);
    await conn.until(
      function () {
        return conn.heartbeats >= start + 3;
      },
      limit,
      "three heartbeats"
    );
    var elapsed = Date.now() - t0;
    // The first may come at any time in its period; three of them span two whole periods.
    if (elapsed < options.heartbeatDelay * 1000 * 2) {
      throw new Error("3 heartbeats within " + elapsed + " ms, faster than every " + options.heartbeatDelay + " s");
    }
    if (conn.messages.length) {
      throw new Error("unexpected messages while idle: " + describe(conn.messages));
    }
    // Still usable after the idle period.
    await echoOne(conn, "after heartbeats", 5000);
    return "3 heartbeats in " + elapsed + " ms, still open";
  });
  try {
    conn.sj.close();
  } catch (e) {
    /* already closed */
  }

  await runCheck(results, "server_close", async function () {
    var closer = new Connection(base + "/close_on_request", transport);
    var timer;
    await Promise.race([
      closer.opened,
      new Promise(function (_, reject) {
        timer = setTimeout(function () {
          reject(new Error("close service: no open event within 15 s"));
        }, 15000);
      }),
    ]).finally(function () {
      clearTimeout(timer);
    });
    closer.sj.send("close " + options.closeCode + " " + options.closeReason);
    await closer.until(
      function () {
        return closer.closeEvent;
      },
      10000,
      "the close event",
      true
    );
    var ev = closer.closeEvent;
    if (ev.code !== options.closeCode || ev.reason !== options.closeReason) {
      throw new Error(
        "close event " + ev.code + " " + describe(ev.reason) + ", wanted " + options.closeCode +
          " " + describe(options.closeReason)
      );
    }
    if (!ev.wasClean) {
      throw new Error("close event has wasClean false");
    }
    return "closed " + ev.code + " " + ev.reason;
  });
  checkNoInjection(results);
  return results;
}

// Cookie phase: open the JSESSIONID service, echo, close from the client.
async function runCookieSession(options) {
  var conn = new Connection(options.base + "/cookie_echo", options.transport);
  var timer;
  try {
    var used = await Promise.race([
      conn.opened,
      new Promise(function (_, reject) {
        timer = setTimeout(function () {
          reject(new Error("no open event within 15 s"));
        }, 15000);
      }),
    ]);
    clearTimeout(timer);
    for (var i = 0; i < 3; i++) {
      await echoOne(conn, "cookie " + i, 5000);
    }
    conn.sj.close();
    await conn.until(
      function () {
        return conn.closeEvent;
      },
      5000,
      "the close event",
      true
    );
    return { ok: true, transport: used };
  } catch (err) {
    clearTimeout(timer);
    return { ok: false, detail: String(err && err.message ? err.message : err) };
  }
}

// ---------------------------------------------------------------------------------------------
// Message fidelity: a SockJS message is any JavaScript string, so the empty string, lone
// surrogates and every UTF-16 code unit must come back exactly (=== compares code units), in
// order, mixed with ordinary messages.

// Every code unit 0..65535 in ascending order, as FIDELITY_CHUNKS messages of equal length
// (small enough that a few of them in one jsonp_send form body stay far under the server's
// 1 MiB body limit). Inside the surrogate range the chunk holds \udbff\udc00, a valid pair;
// every other surrogate in it is lone.
var FIDELITY_CHUNKS = 8;

function codeUnitChunks() {
  var size = 65536 / FIDELITY_CHUNKS;
  var chunks = [];
  for (var c = 0; c < FIDELITY_CHUNKS; c++) {
    var units = new Array(size);
    for (var i = 0; i < size; i++) {
      units[i] = c * size + i;
    }
    // fromCharCode keeps lone surrogates as they are.
    chunks.push(String.fromCharCode.apply(null, units));
  }
  return chunks;
}

// The payloads of the fidelity checks, by check name; each value is a list of messages.
function fidelityPayloads() {
  return {
    fidelity_empty: [""],
    fidelity_lone_high: ["\ud800"],
    fidelity_lone_low: ["\udfff"],
    fidelity_high_inside: ["a\ud800b"],
    fidelity_high_at_end: ["end \udbff"],
    fidelity_low_at_start: ["\udc00 start"],
    fidelity_all_code_units: codeUnitChunks(),
  };
}

// Where two strings first differ, as text for a failure message.
function firstDifference(wanted, got) {
  if (typeof got !== "string") {
    return "got a " + typeof got + " instead of a string";
  }
  var n = Math.min(wanted.length, got.length);
  for (var i = 0; i < n; i++) {
    if (wanted.charCodeAt(i) !== got.charCodeAt(i)) {
      return (
        "at code unit " + i + " wanted \\u" + wanted.charCodeAt(i).toString(16) + ", got \\u" +
        got.charCodeAt(i).toString(16) + " (lengths " + wanted.length + " and " + got.length + ")"
      );
    }
  }
  return "lengths differ: wanted " + wanted.length + " code units, got " + got.length;
}

// Compare the echoes with what was sent, message by message; throws on the first mismatch.
function assertSequence(sent, got) {
  for (var i = 0; i < Math.max(sent.length, got.length); i++) {
    if (i >= got.length) {
      throw new Error("missing echo " + i + " of " + sent.length + ": " + describe(sent[i]));
    }
    if (i >= sent.length) {
      throw new Error("unexpected extra echo " + describe(got[i]));
    }
    if (got[i] !== sent[i]) {
      throw new Error(
        "echo " + i + " is not what was sent (" + describe(sent[i]) + " came back as " +
          describe(got[i]) + "): " + firstDifference(sent[i], got[i]) +
          (got.length !== sent.length ? "; " + got.length + " echoes for " + sent.length + " messages" : "")
      );
    }
  }
}

// Open an echo connection within 15 s or throw.
async function openEcho(base, transport) {
  var conn = new Connection(base + "/echo", transport);
  var timer;
  try {
    await Promise.race([
      conn.opened,
      new Promise(function (_, reject) {
        timer = setTimeout(function () {
          reject(new Error("no open event within 15 s"));
        }, 15000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return conn;
}

// Send `messages` then a unique ordinary marker, and wait for the marker's echo: everything
// echoed before it is compared with `messages`. A dropped message therefore fails at once
// instead of by timeout, and a session the server closes fails with its close code.
async function echoSequence(conn, messages, marker, ms) {
  messages.forEach(function (m) {
    conn.sj.send(m);
  });
  conn.sj.send(marker);
  await conn.until(
    function () {
      return conn.messages.indexOf(marker) >= 0;
    },
    ms,
    "the echo of " + describe(marker) + " after " + messages.length + " messages"
  );
  var got = conn.messages.splice(0, conn.messages.indexOf(marker) + 1);
  got.pop();
  assertSequence(messages, got);
}

function closeQuietly(conn) {
  if (conn) {
    try {
      conn.sj.close();
    } catch (e) {
      /* already closed */
    }
  }
}

// options: {base, transport}. One check per payload, each between ordinary messages on a
// connection that is replaced when the server has closed it; then fidelity_mixed sends every
// payload in one burst, interleaved with ordinary messages, on a fresh connection.
async function runFidelity(options) {
  var results = {};
  var payloads = fidelityPayloads();
  var names = Object.keys(payloads);
  var conn = null;
  var opened = await runCheck(results, "fidelity_open", async function () {
    conn = await openEcho(options.base, options.transport);
    return "transport " + conn.sj.transport;
  });
  if (!opened) {
    skipRest(results, names.concat(["fidelity_mixed"]), "the connection did not open");
    return results;
  }
  var counter = 0;
  for (var name of names) {
    await runCheck(results, name, async function () {
      if (conn.closeEvent) {
        conn = await openEcho(options.base, options.transport);
      }
      var messages = [];
      payloads[name].forEach(function (p) {
        counter += 1;
        messages.push("ordinary " + counter, p);
      });
      messages.push("ordinary last " + name);
      await echoSequence(conn, messages, "marker " + name, 15000);
      return payloads[name].length + " payload message(s) echoed exactly";
    });
  }
  closeQuietly(conn);
  await runCheck(results, "fidelity_mixed", async function () {
    var mixed = await openEcho(options.base, options.transport);
    try {
      var messages = ["mixed start"];
      names.forEach(function (n) {
        payloads[n].forEach(function (p, i) {
          messages.push(p, n + " " + i);
        });
      });
      await echoSequence(mixed, messages, "mixed marker", 20000);
      return messages.length + " messages echoed exactly and in order";
    } finally {
      closeQuietly(mixed);
    }
  });
  return results;
}

// ---------------------------------------------------------------------------------------------
// The raw websocket endpoint (/echo/websocket) from the browser's own WebSocket. The browser
// sends text as UTF-8 of the string's USVString conversion (WebIDL): each lone surrogate
// becomes U+FFFD before anything leaves the page, so the server cannot echo one back. What
// the page can check: "" round-trips, and a string with lone surrogates comes back as exactly
// that conversion.

// The WebIDL USVString conversion: pairs kept, every lone surrogate replaced by U+FFFD.
function toScalarValues(s) {
  var out = "";
  for (var i = 0; i < s.length; i++) {
    var u = s.charCodeAt(i);
    if (u >= 0xd800 && u <= 0xdbff && i + 1 < s.length) {
      var next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += s[i] + s[i + 1];
        i += 1;
        continue;
      }
    }
    out += u >= 0xd800 && u <= 0xdfff ? "\ufffd" : s[i];
  }
  return out;
}

// Send `messages` (the last one an ordinary marker) over one WebSocket and resolve with every
// echo up to and including the marker's, so a dropped message shows at once.
function rawEcho(url, messages, ms) {
  var marker = messages[messages.length - 1];
  return new Promise(function (resolve, reject) {
    var got = [];
    var ws = new WebSocket(url);
    var timer = setTimeout(function () {
      ws.close();
      reject(new Error("timed out after " + ms + " ms with " + got.length + " of " + messages.length + " echoes"));
    }, ms);
    ws.onopen = function () {
      messages.forEach(function (m) {
        ws.send(m);
      });
    };
    ws.onmessage = function (e) {
      got.push(e.data);
      if (e.data === marker) {
        clearTimeout(timer);
        ws.close();
        resolve(got);
      }
    };
    ws.onclose = function (e) {
      clearTimeout(timer);
      reject(new Error("closed (" + e.code + " " + describe(e.reason) + ") after " + got.length + " of " + messages.length + " echoes"));
    };
  });
}

// options: {base}
async function runRawWebSocket(options) {
  var results = {};
  var url = options.base.replace(/^http/, "ws") + "/echo/websocket";
  var payloads = fidelityPayloads();
  var names = Object.keys(payloads);
  for (var name of names) {
    await runCheck(results, name, async function () {
      var messages = ["ordinary before"].concat(payloads[name], ["marker " + name]);
      var wanted = messages.map(toScalarValues);
      var got = await rawEcho(url, messages, 15000);
      assertSequence(wanted, got);
      var replaced = messages.some(function (m, i) {
        return wanted[i] !== m;
      });
      return replaced
        ? "lone surrogates came back as U+FFFD (the browser's WebSocket replaces them before sending)"
        : "echoed exactly";
    });
  }
  return results;
}
