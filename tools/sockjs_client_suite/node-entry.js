// Runs sockjs-client's node tests (the modules tests/node.js requires) WITHOUT the
// sockjs-node server tests/node.js starts: the server is whatever listens on
// localhost:8081 (ours). SOCKJS_CLIENT_DIR is the checkout.
'use strict';
var fs = require('fs');
var path = require('path');

var checkout = process.env.SOCKJS_CLIENT_DIR;
if (!checkout) {
  throw new Error('set SOCKJS_CLIENT_DIR to a sockjs-client checkout');
}
var entry = path.join(checkout, 'tests', 'node.js');
var source = fs.readFileSync(entry, 'utf8');
var re = /require\('(\.\/lib\/[^']+)'\)/g;
var match, count = 0;
while ((match = re.exec(source)) !== null) {
  require(path.join(path.dirname(entry), match[1]));
  count++;
}
if (count === 0) {
  throw new Error('no test modules found in ' + entry);
}
