// sockjs-client (from npm, in tests/browser/node_modules) driven by the scale-out tests.
//
// Reads one JSON command per line on stdin and answers each with one JSON line on stdout:
//
//   {"cmd": "open", "group": G, "url": U, "transports": [...], "per": N, "who": bool}
//       opens N sessions per transport (sockjs-client restricted to that transport); with
//       "who", each sends "who" and waits for "who:<backend>" (tests/integration/
//       scaleout_app.py). Answers {"sessions": [{name, transport, backend, state}]}.
//   {"cmd": "echo", "group": G, "count": N}
//       every open session of G sends N numbered messages at once and waits for them back
//       in order. Answers {"results": {name: "ok" | "closed" | "wrong" | "timeout"}}.
//   {"cmd": "chat", "group": G, "count": N, "interval": MS}
//       every open session of G sends N numbered messages, one each MS milliseconds, in
//       the background; answers at once.
//   {"cmd": "collect", "group": G, "expect": N, "quiet": MS}
//       waits until every session of G has received N chat messages, or until none has
//       received anything for MS milliseconds after every chat sender is done. Answers
//       {"received": {name: [message, ...]}, "states": {name: state}}.
//   {"cmd": "close", "group": G}
//
// Every wait is bounded (TIMEOUT_MS); nothing but 127.0.0.1 is contacted.
'use strict';

const readline = require('readline');
const SockJS = require('sockjs-client');

const TIMEOUT_MS = 15000;
const groups = new Map();
let sessionCount = 0;

function reply(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

function delay(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

function openOne(name, url, transport, who) {
  return new Promise((resolve) => {
    const session = {
      name, transport, backend: null, state: 'connecting', inbox: [], chat: [],
      listeners: [], sock: null, sending: false,
    };
    let settled = false;
    const done = () => { if (!settled) { settled = true; resolve(session); } };
    const timer = setTimeout(() => { if (session.state === 'connecting') session.state = 'timeout'; done(); }, TIMEOUT_MS);
    let sock;
    try {
      sock = new SockJS(url, null, { transports: [transport], timeout: 5000 });
    } catch (err) {
      session.state = 'failed: ' + err.message;
      clearTimeout(timer);
      done();
      return;
    }
    session.sock = sock;
    sock.onopen = () => {
      session.state = 'open';
      session.actual = sock.transport;
      if (!who) { clearTimeout(timer); done(); return; }
      sock.send('who');
    };
    sock.onmessage = (event) => {
      const data = String(event.data);
      if (who && session.backend === null && data.startsWith('who:')) {
        session.backend = data.slice(4);
        clearTimeout(timer);
        done();
        return;
      }
      if (/^[\w.-]+#\d+$/.test(data)) session.chat.push(data);
      session.inbox.push(data);
      for (const listener of session.listeners.slice()) listener();
    };
    sock.onclose = (event) => {
      session.state = session.state === 'connecting' ? `failed ${event.code} ${event.reason}` : 'closed';
      session.closeCode = event.code;
      for (const listener of session.listeners.slice()) listener();
      clearTimeout(timer);
      done();
    };
  });
}

function waitFor(session, predicate, timeout) {
  return new Promise((resolve) => {
    if (predicate()) { resolve(true); return; }
    const check = () => {
      if (predicate()) { finish(true); }
    };
    const finish = (value) => {
      clearTimeout(timer);
      session.listeners = session.listeners.filter((l) => l !== check);
      resolve(value);
    };
    const timer = setTimeout(() => finish(false), timeout);
    session.listeners.push(check);
  });
}

async function echo(session, count) {
  if (session.state !== 'open') return session.state;
  const start = session.inbox.length;
  const expected = [];
  for (let i = 0; i < count; i++) expected.push(`${session.name}#${i}`);
  try {
    for (const message of expected) session.sock.send(message);
  } catch (err) {
    return 'closed';
  }
  const arrived = await waitFor(
    session, () => session.inbox.length - start >= count || session.state !== 'open', TIMEOUT_MS);
  const got = session.inbox.slice(start, start + count);
  if (got.length === count) {
    return got.every((m, i) => m === expected[i]) ? 'ok' : 'wrong';
  }
  if (session.state !== 'open') return 'closed';
  return arrived ? 'wrong' : 'timeout';
}

async function chat(session, count, interval) {
  session.sending = true;
  for (let i = 0; i < count && session.state === 'open'; i++) {
    session.sock.send(`${session.name}#${i}`);
    await delay(interval);
  }
  session.sending = false;
}

async function collect(group, expect, quiet) {
  const deadline = Date.now() + TIMEOUT_MS;
  let lastCount = -1;
  let lastChange = Date.now();
  while (Date.now() < deadline) {
    const total = group.reduce((n, s) => n + s.chat.length, 0);
    if (total !== lastCount) { lastCount = total; lastChange = Date.now(); }
    const sending = group.some((s) => s.sending);
    if (group.every((s) => s.chat.length >= expect || s.state !== 'open')) break;
    if (!sending && Date.now() - lastChange > quiet) break;
    await delay(20);
  }
  const received = {};
  const states = {};
  for (const s of group) { received[s.name] = s.chat; states[s.name] = s.state; }
  return { received, states };
}

async function handle(command) {
  const group = groups.get(command.group) || [];
  switch (command.cmd) {
    case 'open': {
      const opening = [];
      for (const transport of command.transports) {
        for (let i = 0; i < command.per; i++) {
          const name = `${command.group}-${transport}-${sessionCount++}`;
          opening.push(openOne(name, command.url, transport, command.who));
        }
      }
      const opened = await Promise.all(opening);
      groups.set(command.group, group.concat(opened));
      return {
        sessions: opened.map((s) => ({
          name: s.name, transport: s.transport, actual: s.actual || null,
          backend: s.backend, state: s.state,
        })),
      };
    }
    case 'echo': {
      const results = {};
      await Promise.all(group.map(async (s) => { results[s.name] = await echo(s, command.count); }));
      return { results };
    }
    case 'chat': {
      for (const s of group) chat(s, command.count, command.interval);
      return { started: group.length };
    }
    case 'collect':
      return collect(group, command.expect, command.quiet);
    case 'close': {
      for (const s of group) { if (s.sock && s.state === 'open') s.sock.close(); }
      groups.delete(command.group);
      return { closed: group.length };
    }
    case 'exit':
      setTimeout(() => process.exit(0), 10);
      return { bye: true };
    default:
      return { error: 'unknown command ' + command.cmd };
  }
}

const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => {
  let command;
  try { command = JSON.parse(line); } catch (err) { reply({ error: 'bad JSON: ' + err.message }); return; }
  handle(command).then(
    (result) => reply(Object.assign({ id: command.id }, result)),
    (err) => reply({ id: command.id, error: String(err && err.stack || err) }));
});
input.on('close', () => process.exit(0));
