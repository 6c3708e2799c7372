// The sockjs-node reference for the browser tests, laid out as server.py lays out ours:
// the suite's own server (tests/support/sockjs_server.js) answers everything under
// /sockjs-test/ (as karma's proxy arranges it upstream), and /runner/ is the mocha page.
// Usage: node reference_server.js CHECKOUT PORT BUNDLE
'use strict';
require('./loopback');
var fs = require('fs');
var http = require('http');
var path = require('path');

var checkout = path.resolve(process.argv[2]);
var port = Number(process.argv[3] || 8081);
var bundle = process.argv[4];
var prefix = '/sockjs-test';

var startServer = require(path.join(checkout, 'tests', 'support', 'sockjs_server'));
// It listens on a port of its own too (unused); requests reach it through emit() below.
var inner = startServer(port + 1, { listenAddress: '127.0.0.1', port: port }, prefix);

var runnerFiles = {
  '/runner/': [path.join(__dirname, 'runner.html'), 'text/html'],
  '/runner/mocha.js': [path.join(checkout, 'node_modules', 'mocha', 'mocha.js'), 'text/javascript'],
  '/runner/domain.js': [path.join(checkout, 'tests', 'support', 'domain.js'), 'text/javascript'],
  '/runner/bundle.js': [bundle, 'text/javascript']
};

function strip(req) {
  if (req.url === prefix || req.url.indexOf(prefix + '/') === 0) {
    req.url = req.url.slice(prefix.length) || '/';
    return true;
  }
  return false;
}

var outer = http.createServer(function (req, res) {
  var file = runnerFiles[req.url];
  if (file && file[0]) {
    res.writeHead(200, { 'content-type': file[1] });
    res.end(fs.readFileSync(file[0]));
  } else if (strip(req)) {
    inner.emit('request', req, res);
  } else {
    res.writeHead(404, { 'content-length': '0' });
    res.end();
  }
});
outer.on('upgrade', function (req, socket, head) {
  if (strip(req)) {
    inner.emit('upgrade', req, socket, head);
  } else {
    socket.destroy();
  }
});
outer.listen(port, '127.0.0.1', function () {
  console.log(' [*] reference (sockjs-node) on http://127.0.0.1:' + port + '/runner/');
});
