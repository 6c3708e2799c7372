// SockJS echo on sockjs-node (npm `sockjs`, installed by benchmarks/run.py into
// benchmarks/.peers/node). Usage: node sockjs_node_echo.js PORT HEARTBEAT_SECONDS
'use strict';
const path = require('path');
const http = require('http');
const sockjs = require(path.join(__dirname, '..', '.peers', 'node', 'node_modules', 'sockjs'));

const port = parseInt(process.argv[2], 10);
const heartbeat = parseFloat(process.argv[3] || '25');

const service = sockjs.createServer({
  heartbeat_delay: Math.round(heartbeat * 1000),
  disconnect_delay: 5000,
  log: function () {},
});
service.on('connection', function (conn) {
  conn.on('data', function (message) { conn.write(message); });
});
const server = http.createServer();
service.installHandlers(server, { prefix: '/echo' });
server.listen(port, '127.0.0.1', function () {
  process.stdout.write('listening ' + port + '\n');
});
