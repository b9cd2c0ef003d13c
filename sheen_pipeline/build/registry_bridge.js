// Runs inside an npm install's sandbox, whose network namespace has only its own loopback:
// listens on 127.0.0.1:<port> and hands each connection to the registry socket the pipeline
// bound in (the only way out), then runs the command and exits with its status.
'use strict';
const net = require('net');
const { spawn } = require('child_process');

const [socketPath, port, ...command] = process.argv.slice(2);
const server = net.createServer((client) => {
  const upstream = net.connect(socketPath);
  const close = () => { client.destroy(); upstream.destroy(); };
  client.on('error', close);
  upstream.on('error', close);
  client.pipe(upstream).pipe(client);
});
server.listen(Number(port), '127.0.0.1', () => {
  const child = spawn(command[0], command.slice(1), { stdio: 'inherit' });
  child.on('exit', (code, signal) => {
    process.exit(code === null ? 128 + (require('os').constants.signals[signal] || 1) : code);
  });
});
