// Load generator for the txsockjs benchmarks: a SockJS client written on Node's raw `net`
// sockets (no npm dependency), lean enough that one core of it outruns the servers measured.
//
//   node loadgen.js --port P --mode MODE [options]
//
// Modes:
//   ws            SockJS websocket (/PREFIX/000/SID/websocket): echo, INFLIGHT messages in
//                 flight per session
//   ws-raw        plain websocket to "/" of a raw echo server: one frame per message
//   xhr-streaming one xhr_streaming receive stream + one keep-alive connection for xhr_send
//                 per session
//   xhr-polling   one xhr receive connection (re-polled at once) + one xhr_send connection
//   idle-ws, idle-ws-raw, idle-xhr-streaming
//                 open SESSIONS sessions, then stay idle and time every heartbeat
//
// It writes JSON lines on stdout: {"event": ...} progress lines that benchmarks/run.py uses
// to sample the server's CPU and memory at the right moments, then one {"event":"result"}.
'use strict';

const net = require('net');

// ---------------------------------------------------------------- options
const opts = {
  host: '127.0.0.1', port: 0, prefix: '/echo', mode: 'ws', sessions: 1, inflight: 1,
  warmup: 1, duration: 5, size: 100, concurrency: 256, heartbeat: 5, idle: 12,
  settle: 1, timeout: 120,
};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  if (!(key in opts)) { fail('unknown option ' + process.argv[i]); }
  const v = process.argv[i + 1];
  opts[key] = typeof opts[key] === 'number' ? parseFloat(v) : v;
}

function emit(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }
function fail(msg) { emit({ event: 'error', error: msg }); process.exit(2); }
const now = () => performance.now();
const IDLE = opts.mode.startsWith('idle');

// ---------------------------------------------------------------- the message
// SIZE printable ASCII characters that JSON leaves alone, so every server sends them back
// byte for byte: an "a" frame of n messages is 2 + n * (SIZE + 3) bytes long.
const MSG = ('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_').repeat(
  Math.ceil(opts.size / 64)).slice(0, opts.size);
const MSG_JSON = '["' + MSG + '"]';
const MSG_JSON_BUF = Buffer.from(MSG_JSON);
const PER_MSG = opts.size + 3;

// A masked client text frame with an all-zero masking key (valid per RFC 6455; the
// server still runs its unmasking code): header, 4 zero bytes, payload as is.
function clientFrame(payload) { return clientFrameOp(0x81, payload); }
function clientFrameOp(b0, payload) {
  const len = payload.length;
  let head;
  if (len < 126) { head = Buffer.from([b0, 0x80 | len, 0, 0, 0, 0]); }
  else if (len < 65536) { head = Buffer.from([b0, 0x80 | 126, len >> 8, len & 255, 0, 0, 0, 0]); }
  else { fail('message too large'); }
  return Buffer.concat([head, payload]);
}
const WS_FRAME = clientFrame(MSG_JSON_BUF);
const WS_FRAMES = [Buffer.alloc(0)];  // WS_FRAMES[n]: n frames back to back, one write
for (let n = 1; n <= 64; n++) { WS_FRAMES.push(Buffer.concat(Array(n).fill(WS_FRAME))); }
const PONG_EMPTY = Buffer.from([0x8a, 0x80, 0, 0, 0, 0]);
const CLOSE_FRAME = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);

// ---------------------------------------------------------------- statistics
let measuring = false;
let received = 0;           // messages received while measuring
let sent = 0;
let errors = 0;
let errorSamples = [];
let lat = new Float64Array(1 << 20);
let latN = 0;
function recordLatency(ms) {
  if (latN === lat.length) { const bigger = new Float64Array(lat.length * 2); bigger.set(lat); lat = bigger; }
  lat[latN++] = ms;
}
function error(msg) {
  errors++;
  if (errorSamples.length < 10) { errorSamples.push(msg); }
}
function percentile(sorted, n, p) {
  if (n === 0) { return null; }
  return sorted[Math.min(n - 1, Math.floor(p * n))];
}

// ---------------------------------------------------------------- sessions
let sidCounter = 0;
function newSid() { return 's' + process.pid.toString(36) + '_' + (sidCounter++).toString(36); }

class Session {
  constructor() {
    this.sid = newSid();
    this.opened = false;
    this.openedAt = 0;
    this.closed = false;
    this.inflight = 0;
    this.stamps = new Float64Array(Math.max(1, opts.inflight));  // ring of send times
    this.head = 0;
    this.count = 0;
    this.heartbeats = [];  // times of the heartbeat frames ("h", SockJS or raw)
    this.pings = [];  // times of the websocket pings
    this.verified = false;
    this.stopped = false;
    this.inRead = false;  // while set, replies wait for the end of the read: one write
  }
  pushStamp(t) {
    const k = this.stamps.length;
    this.stamps[(this.head + this.count) % k] = t;
    this.count++;
  }
  // n echoed messages arrived
  gotMessages(n) {
    const t = now();
    for (let i = 0; i < n; i++) {
      if (this.count === 0) { error('more echoes than sends'); break; }
      const sentAt = this.stamps[this.head];
      this.head = (this.head + 1) % this.stamps.length;
      this.count--;
      if (measuring) { recordLatency(t - sentAt); received++; }
    }
    this.inflight -= n;
    if (this.inflight < 0) { this.inflight = 0; }
    if (!this.inRead) { this.pump(); }
  }
  gotHeartbeat() { this.heartbeats.push(now()); }
  gotPing() { this.pings.push(now()); }
  // A session's heartbeats: its "h" frames; its pings only if it never got an "h" frame.
  // sockjs-node and aiohttp's sockjs send their websocket heartbeats as pings; txsockjs sends
  // an "h" frame and, for liveness, sometimes a ping with it, which is no second heartbeat.
  beats() { return this.heartbeats.length ? this.heartbeats : this.pings; }
}

// Count the messages of an "a" frame, checking the first one of each session fully.
function countArray(session, buf, start, end) {
  const len = end - start;
  const n = (len - 2) / PER_MSG;
  if (!session.verified || !Number.isInteger(n) || n < 1) {
    let arr;
    try { arr = JSON.parse(buf.toString('utf8', start + 1, end)); } catch (e) {
      error('bad frame ' + buf.toString('utf8', start, Math.min(end, start + 60))); return 0;
    }
    for (const m of arr) { if (m !== MSG) { error('echo differs'); } }
    session.verified = true;
    return arr.length;
  }
  return n;
}

// ---------------------------------------------------------------- websocket sessions
class WsSession extends Session {
  constructor(raw) {
    super();
    this.raw = raw;
    this.pending = null;
    this.handshaken = false;
    const path = raw ? '/' : opts.prefix + '/000/' + this.sid + '/websocket';
    this.sock = net.connect({ host: opts.host, port: opts.port });
    this.sock.setNoDelay(true);
    this.sock.on('connect', () => {
      this.sock.write('GET ' + path + ' HTTP/1.1\r\nHost: ' + opts.host + ':' + opts.port +
        '\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    });
    this.sock.on('data', (d) => this.onData(d));
    this.sock.on('error', (e) => { if (!this.stopped) { error('ws socket: ' + e.message); } });
    this.sock.on('close', () => { if (!this.stopped) { error('ws closed by server'); } this.closed = true; });
  }
  onData(d) {
    this.inRead = true;
    try { this.parse(d); } finally { this.inRead = false; }
    if (this.opened) { this.pump(); }
  }
  parse(d) {
    let buf = this.pending === null ? d : Buffer.concat([this.pending, d]);
    this.pending = null;
    let pos = 0;
    if (!this.handshaken) {
      const endHead = buf.indexOf('\r\n\r\n');
      if (endHead < 0) { this.pending = buf; return; }
      const status = buf.toString('latin1', 0, 12);
      if (status.indexOf(' 101') < 0) {
        error('handshake: ' + buf.toString('latin1', 0, Math.min(80, endHead)));
        this.stopped = true; this.sock.destroy(); return;
      }
      this.handshaken = true;
      pos = endHead + 4;
      if (this.raw) { this.onOpen(); }
    }
    const len = buf.length;
    while (pos + 2 <= len) {
      const b0 = buf[pos];
      let plen = buf[pos + 1] & 127;
      let hlen = 2;
      if (plen === 126) {
        if (pos + 4 > len) { break; }
        plen = buf.readUInt16BE(pos + 2); hlen = 4;
      } else if (plen === 127) {
        if (pos + 10 > len) { break; }
        plen = Number(buf.readBigUInt64BE(pos + 2)); hlen = 10;
      }
      if (pos + hlen + plen > len) { break; }
      const start = pos + hlen;
      const end = start + plen;
      const opcode = b0 & 15;
      if (opcode === 1 || opcode === 2) {
        if ((b0 & 0x80) === 0) { error('fragmented frame'); }
        this.onText(buf, start, end);
      } else if (opcode === 9) {
        this.gotPing();
        this.sock.write(plen === 0 ? PONG_EMPTY : clientFrameOp(0x8a, buf.subarray(start, end)));
      } else if (opcode === 8) {
        if (!this.stopped) { error('close frame from server'); }
      }
      pos = end;
    }
    if (pos < len) { this.pending = buf.subarray(pos); }
  }
  onOpen() {
    this.opened = true;
    this.openedAt = now();
    onSessionOpen(this);
  }
  onText(buf, start, end) {
    if (this.raw) {
      if (end - start === 1 && buf[start] === 0x68) { this.gotHeartbeat(); return; }
      if (!this.verified) {
        if (buf.toString('utf8', start, end) !== MSG_JSON) { error('raw echo differs'); }
        this.verified = true;
      }
      this.gotMessages(1);
      return;
    }
    const c = buf[start];
    if (c === 0x61) { const n = countArray(this, buf, start, end); if (n) { this.gotMessages(n); } }  // a
    else if (c === 0x68) { this.gotHeartbeat(); }  // h
    else if (c === 0x6f) { this.onOpen(); }  // o
    else if (c === 0x63) { if (!this.stopped) { error('sockjs close ' + buf.toString('utf8', start, end)); } }
    else { error('unknown frame ' + buf.toString('utf8', start, Math.min(end, start + 40))); }
  }
  pump() {
    if (this.stopped || !running || IDLE || !loadStarted) { return; }
    let n = opts.inflight - this.inflight;
    if (n <= 0) { return; }
    const t = now();
    for (let i = 0; i < n; i++) { this.pushStamp(t); }
    this.inflight += n;
    sent += n;
    while (n > 64) { this.sock.write(WS_FRAMES[64]); n -= 64; }
    this.sock.write(WS_FRAMES[n]);
  }
  stop() {
    this.stopped = true;
    if (!this.closed) { this.sock.write(CLOSE_FRAME); this.sock.end(); setTimeout(() => this.sock.destroy(), 500).unref(); }
  }
}

// ---------------------------------------------------------------- minimal HTTP/1.1 client
// One keep-alive connection; requests are not pipelined. Reads Content-Length, chunked
// and until-close bodies; hands body bytes to onBody and calls onEnd per response.
class HttpConn {
  constructor(owner, onStatus, onBody, onEnd) {
    this.owner = owner;
    this.onStatus = onStatus;
    this.onBody = onBody;
    this.onEnd = onEnd;
    this.queue = [];
    this.connect();
  }
  connect() {
    this.state = 'idle';  // idle | head | body
    this.pending = null;
    this.busy = false;
    this.ready = false;
    this.sock = net.connect({ host: opts.host, port: opts.port });
    this.sock.setNoDelay(true);
    this.sock.on('connect', () => { this.ready = true; this.flush(); });
    this.sock.on('data', (d) => this.onData(d));
    this.sock.on('error', (e) => { if (!this.owner.stopped) { error('http socket: ' + e.message); } });
    this.sock.on('close', () => this.onClose());
  }
  request(bytes) { this.queue.push(bytes); this.flush(); }
  flush() {
    if (!this.ready || this.busy || this.queue.length === 0) { return; }
    this.busy = true;
    this.state = 'head';
    this.sock.write(this.queue.shift());
  }
  onClose() {
    this.ready = false;
    if (this.state === 'body' && this.mode === 'close') { this.finish(); }
    else if (this.busy && !this.owner.stopped) { error('http connection closed mid-response'); }
    if (!this.owner.stopped && running) { this.connect(); }
  }
  finish() {
    this.state = 'idle';
    this.busy = false;
    const close = this.closeAfter;
    this.onEnd(this);
    if (close) { this.ready = false; this.sock.destroy(); return; }
    this.flush();
  }
  onData(d) {
    let buf = this.pending === null ? d : Buffer.concat([this.pending, d]);
    this.pending = null;
    let pos = 0;
    const len = buf.length;
    while (pos < len) {
      if (this.state === 'head') {
        const e = buf.indexOf('\r\n\r\n', pos);
        if (e < 0) { this.pending = buf.subarray(pos); return; }
        const head = buf.toString('latin1', pos, e).toLowerCase();
        pos = e + 4;
        const status = parseInt(head.slice(9, 12), 10);
        this.status = status;
        this.closeAfter = /\r\nconnection: *close/.test(head) || head.startsWith('http/1.0');
        if (status === 204 || status === 304 || status < 200) { this.mode = 'none'; }
        else if (/\r\ntransfer-encoding: *chunked/.test(head)) { this.mode = 'chunked'; this.cstate = 0; }
        else {
          const m = /\r\ncontent-length: *(\d+)/.exec(head);
          if (m) { this.mode = 'length'; this.left = parseInt(m[1], 10); }
          else { this.mode = 'close'; }
        }
        this.onStatus(this, status);
        if (this.mode === 'none' || (this.mode === 'length' && this.left === 0)) { this.finish(); continue; }
        this.state = 'body';
      } else if (this.state === 'body') {
        if (this.mode === 'length') {
          const take = Math.min(this.left, len - pos);
          this.onBody(this, buf, pos, pos + take);
          pos += take; this.left -= take;
          if (this.left === 0) { this.finish(); }
        } else if (this.mode === 'close') {
          this.onBody(this, buf, pos, len); pos = len;
        } else if (this.cstate === 0) {  // chunked: the size line
          const e = buf.indexOf('\r\n', pos);
          if (e < 0) { this.pending = buf.subarray(pos); return; }
          const size = parseInt(buf.toString('latin1', pos, e), 16);
          pos = e + 2;
          if (size === 0) { this.cstate = 3; this.crlfLeft = 2; }  // then the empty trailer
          else { this.cstate = 1; this.chunkLeft = size; }
        } else if (this.cstate === 1) {  // chunk data
          const take = Math.min(this.chunkLeft, len - pos);
          this.onBody(this, buf, pos, pos + take);
          pos += take; this.chunkLeft -= take;
          if (this.chunkLeft === 0) { this.cstate = 2; this.crlfLeft = 2; }
        } else {  // 2: CRLF after a chunk, 3: CRLF that ends the body
          const skip = Math.min(this.crlfLeft, len - pos);
          pos += skip; this.crlfLeft -= skip;
          if (this.crlfLeft === 0) {
            if (this.cstate === 3) { this.finish(); } else { this.cstate = 0; }
          }
        }
      } else {
        error('unexpected bytes from server');
        pos = len;
      }
    }
  }
  stop() { this.sock.destroy(); }
}
function post(path, body, contentType) {
  const b = body || '';
  return Buffer.from('POST ' + path + ' HTTP/1.1\r\nHost: ' + opts.host + ':' + opts.port +
    '\r\nContent-Type: ' + (contentType || 'text/plain') + '\r\nContent-Length: ' +
    Buffer.byteLength(b) + '\r\n\r\n' + b);
}

// ---------------------------------------------------------------- xhr sessions
class XhrSession extends Session {
  constructor(streaming, withSender) {
    super();
    this.streaming = streaming;
    this.base = opts.prefix + '/000/' + this.sid + '/';
    this.recvReq = post(this.base + (streaming ? 'xhr_streaming' : 'xhr'));
    this.sendReq = post(this.base + 'xhr_send', MSG_JSON);
    this.line = null;  // partial line of the receive body
    this.recv = new HttpConn(this,
      (c, status) => { if (status !== 200) { error('receive status ' + status); } },
      (c, buf, s, e) => this.onRecvBody(buf, s, e),
      () => this.onRecvEnd());
    this.recv.request(this.recvReq);
    this.sender = null;
    this.sending = false;
    this.withSender = withSender;
  }
  onRecvBody(buf, s, e) {
    while (s < e) {
      const nl = buf.indexOf(10, s);
      if (nl < 0 || nl >= e) {
        const part = buf.subarray(s, e);
        this.line = this.line === null ? Buffer.from(part) : Buffer.concat([this.line, part]);
        return;
      }
      if (this.line !== null) {
        const whole = Buffer.concat([this.line, buf.subarray(s, nl)]);
        this.line = null;
        this.onFrame(whole, 0, whole.length);
      } else {
        this.onFrame(buf, s, nl);
      }
      s = nl + 1;
    }
  }
  onFrame(buf, s, e) {
    const c = buf[s];
    if (c === 0x61) { const n = countArray(this, buf, s, e); if (n) { this.gotMessages(n); } }
    else if (c === 0x68) { if (e - s === 1) { this.gotHeartbeat(); } }  // longer: the prelude
    else if (c === 0x6f) {
      this.opened = true; this.openedAt = now();
      if (this.withSender) {
        this.sender = new HttpConn(this,
          (conn, status) => { if (status !== 204 && status !== 200) { error('xhr_send status ' + status); } },
          () => {},
          () => { this.sending = false; this.pump(); });
      }
      onSessionOpen(this);
    }
    else if (c === 0x63) { if (!this.stopped) { error('sockjs close ' + buf.toString('utf8', s, e)); } }
    else { error('unknown frame ' + buf.toString('utf8', s, Math.min(e, s + 40))); }
  }
  onRecvEnd() {
    // a streaming response ended (response_limit) or a poll answered: receive again
    if (!this.stopped && running) { this.recv.request(this.recvReq); }
  }
  pump() {
    if (this.stopped || !running || !loadStarted || this.sending || !this.sender) { return; }
    if (this.inflight >= opts.inflight) { return; }
    this.sending = true;
    this.inflight++;
    sent++;
    this.pushStamp(now());
    this.sender.request(this.sendReq);
  }
  stop() {
    this.stopped = true;
    this.recv.stop();
    if (this.sender) { this.sender.stop(); }
  }
}

// ---------------------------------------------------------------- driver
let running = true;
// The load starts once every session is open: sessions that echo while the others open
// would slow the opening down (sockjs-node took 39 s to open 1,000 websockets that way).
let loadStarted = false;
const sessions = [];
let openedCount = 0;
let openStart = 0;
let allOpenResolve;
const allOpen = new Promise((r) => { allOpenResolve = r; });

function onSessionOpen(s) {
  openedCount++;
  if (openedCount === opts.sessions) { allOpenResolve(); }
  startMore();
  if (loadStarted) { s.pump(); }
}

let started = 0;
function makeSession() {
  switch (opts.mode) {
    case 'ws': case 'idle-ws': return new WsSession(false);
    case 'ws-raw': case 'idle-ws-raw': return new WsSession(true);
    case 'xhr-streaming': return new XhrSession(true, true);
    case 'idle-xhr-streaming': return new XhrSession(true, false);
    case 'xhr-polling': return new XhrSession(false, true);
    default: fail('unknown mode ' + opts.mode);
  }
}
// keep at most CONCURRENCY sessions opening at once
function startMore() {
  while (started < opts.sessions && started - openedCount < opts.concurrency) {
    sessions.push(makeSession());
    started++;
  }
}

const sleep = (s) => new Promise((r) => setTimeout(r, s * 1000));

async function withTimeout(promise, seconds, what) {
  let t;
  const timer = new Promise((_, rej) => { t = setTimeout(() => rej(new Error(what)), seconds * 1000); });
  try { return await Promise.race([promise, timer]); } finally { clearTimeout(t); }
}

function cpuSeconds(u) { return (u.user + u.system) / 1e6; }

async function throughput() {
  openStart = now();
  startMore();
  await withTimeout(allOpen, opts.timeout, 'only ' + openedCount + ' of ' + opts.sessions + ' sessions opened');
  const openSecs = (now() - openStart) / 1000;
  loadStarted = true;
  for (const s of sessions) { s.pump(); }
  await sleep(opts.warmup);
  received = 0; latN = 0;
  const sentBefore = sent;
  measuring = true;
  emit({ event: 'measure_start' });
  const cpu0 = process.cpuUsage();
  const t0 = now();
  await sleep(opts.duration);
  measuring = false;
  const elapsed = (now() - t0) / 1000;
  const cpu = cpuSeconds(process.cpuUsage(cpu0));
  emit({ event: 'measure_end' });
  const got = received;
  const sentIn = sent - sentBefore;
  running = false;
  const sorted = lat.subarray(0, latN).sort();
  for (const s of sessions) { s.stop(); }
  return {
    event: 'result', mode: opts.mode, sessions: opts.sessions, inflight: opts.inflight,
    open_seconds: openSecs, seconds: elapsed, messages: got, sent: sentIn,
    msgs_per_s: got / elapsed,
    p50_ms: percentile(sorted, latN, 0.5), p90_ms: percentile(sorted, latN, 0.9),
    p99_ms: percentile(sorted, latN, 0.99), max_ms: latN ? sorted[latN - 1] : null,
    loadgen_cpu_s: cpu, loadgen_cpu_share: cpu / elapsed,
    errors, error_samples: errorSamples,
  };
}

async function idle() {
  openStart = now();
  const cpuA = process.cpuUsage();
  startMore();
  await withTimeout(allOpen, opts.timeout, 'only ' + openedCount + ' of ' + opts.sessions + ' sessions opened');
  const openSecs = (now() - openStart) / 1000;
  const openCpu = cpuSeconds(process.cpuUsage(cpuA));
  await sleep(opts.settle);
  emit({ event: 'idle_start', opened: openedCount, open_seconds: openSecs });
  const cpu0 = process.cpuUsage();
  const t0 = now();
  await sleep(opts.idle);
  const t1 = now();
  const cpu = cpuSeconds(process.cpuUsage(cpu0));
  emit({ event: 'idle_end' });
  running = false;
  // Every heartbeat of every session, from its open to the end of the idle window: the
  // first one is due HEARTBEAT after the open, each next one HEARTBEAT after the previous;
  // one that comes more than 0.5 s late (or not at all by the end) is late.
  const hb = opts.heartbeat * 1000;
  const slack = 500;
  let intervals = 0; let late = 0; let maxDev = 0; let sumDev = 0; let silent = 0;
  let firstLate = 0; let missing = 0; let maxFirst = 0;
  for (const s of sessions) {
    if (!s.opened) { continue; }
    const times = s.beats().filter((x) => x <= t1);
    if (times.length === 0) { silent++; missing++; continue; }
    const first = times[0] - s.openedAt;
    if (first > maxFirst) { maxFirst = first; }
    if (first > hb + slack) { firstLate++; }
    for (let i = 1; i < times.length; i++) {
      const dev = Math.abs(times[i] - times[i - 1] - hb);
      intervals++;
      sumDev += dev;
      if (dev > maxDev) { maxDev = dev; }
      if (dev > slack) { late++; }
    }
    if (t1 - times[times.length - 1] > hb + slack) { missing++; }
  }
  for (const s of sessions) { s.stop(); }
  return {
    event: 'result', mode: opts.mode, sessions: opts.sessions, opened: openedCount,
    open_seconds: openSecs, opens_per_s: openedCount / openSecs, loadgen_open_cpu_s: openCpu,
    idle_seconds: (t1 - t0) / 1000, heartbeat_s: opts.heartbeat,
    heartbeat_intervals: intervals, heartbeat_late: late,
    heartbeat_max_dev_ms: maxDev, heartbeat_mean_dev_ms: intervals ? sumDev / intervals : null,
    first_heartbeat_late: firstLate, first_heartbeat_max_ms: maxFirst,
    sessions_without_heartbeat: silent, sessions_missing_heartbeats: missing,
    heartbeats_on_time: intervals > 0 && late === 0 && firstLate === 0 && missing === 0,
    loadgen_cpu_s: cpu, loadgen_cpu_share: cpu / ((t1 - t0) / 1000),
    errors, error_samples: errorSamples,
  };
}

(async () => {
  if (!opts.port) { fail('--port is required'); }
  try {
    const result = opts.mode.startsWith('idle') ? await idle() : await throughput();
    emit(result);
    setTimeout(() => process.exit(0), 300);
  } catch (e) {
    running = false;
    emit({ event: 'error', error: String(e && e.message || e), errors, error_samples: errorSamples });
    setTimeout(() => process.exit(1), 100);
  }
})();
