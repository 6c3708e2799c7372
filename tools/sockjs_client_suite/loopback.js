// Loaded with `node --require` for the sockjs-node reference runs: the suite's own server
// calls listen(port) (every interface); this makes any listen without a host use 127.0.0.1.
'use strict';
var net = require('net');

var listen = net.Server.prototype.listen;
net.Server.prototype.listen = function () {
  var args = Array.prototype.slice.call(arguments);
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1');
  } else if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined &&
             !args[0].host) {
    args[0] = Object.assign({}, args[0], { host: '127.0.0.1' });
  }
  return listen.apply(this, args);
};
