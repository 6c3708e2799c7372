// Raw WebSocket echo on node's `ws` package (npm `ws`, installed by benchmarks/run.py into
// benchmarks/.peers/node), no SockJS: every message goes back as the frame it came in. The
// limit baseline of the websocket workloads. For the idle workload it sends a text frame "h"
// to every connection every HEARTBEAT seconds from one shared timer, as the raw autobahn
// echo does. Usage: node ws_raw_echo.js PORT HEARTBEAT_SECONDS
'use strict';
const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, '..', '.peers', 'node', 'node_modules', 'ws'));

const port = parseInt(process.argv[2], 10);
const heartbeat = parseFloat(process.argv[3] || '25');

// Defaults otherwise: no permessage-deflate unless asked, which the load generator never asks.
const wss = new WebSocketServer({ host: '127.0.0.1', port: port, backlog: 4096 }, function () {
  process.stdout.write('listening ' + port + '\n');
});
wss.on('connection', function (ws) {
  ws.on('message', function (data, isBinary) { ws.send(data, { binary: isBinary }); });
});
setInterval(function () {
  for (const ws of wss.clients) { ws.send('h'); }
}, Math.round(heartbeat * 1000));
