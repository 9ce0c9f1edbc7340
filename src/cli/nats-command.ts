import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { DEV_MAX_PAYLOAD, startNatsServer } from '../runtime/nats-server.js';
import { intOption, untilSignal, type Command } from './command.js';

export const DEFAULT_DEV_NATS_PORT = 4222;

export const natsCommand: Command = {
  name: 'nats',
  summary: 'start a local nats-server with JetStream for development and print its URL',
  usage: `shoal nats [--port <port>] [--store <dir>] [--verbose]

  --port <port>   port to listen on (default ${DEFAULT_DEV_NATS_PORT} when free, else a free one;
                  0 always picks a free one)
  --store <dir>   JetStream store directory (default: a temporary one, removed on exit)
  --verbose       print the server's own log

The server accepts messages up to 8 MiB (nats-server's default is 1 MiB). Prints the URL on the
first line of standard output, then runs until Ctrl-C.`,
  async run(argv) {
    const { values } = parseArgs({
      args: argv,
      options: { port: { type: 'string' }, store: { type: 'string' }, verbose: { type: 'boolean' } },
      strict: true,
    });
    let port = intOption(values.port, '--port', 0, 65535) ?? DEFAULT_DEV_NATS_PORT;
    if (values.port === undefined && !(await portFree(port))) {
      // Debian's nats-server package runs a system server on 4222: don't fight it.
      process.stderr.write(`port ${port} is in use (a system nats-server?); using a free port instead\n`);
      port = 0;
    }
    const server = await startNatsServer({
      port: port === 0 ? -1 : port,
      ...(values.store !== undefined ? { storeDir: values.store } : {}),
      verbose: values.verbose ?? false,
      maxPayload: DEV_MAX_PAYLOAD,
    });
    process.stdout.write(`${server.url}\n`);
    process.stderr.write(`nats-server ${server.pid} is listening on ${server.url} with JetStream in ${server.storeDir}; Ctrl-C stops it\n`);
    const sig = await untilSignal();
    process.stderr.write(`${sig}: stopping nats-server\n`);
    await server.stop();
    return 0;
  },
};

/** Whether 127.0.0.1:`port` can be listened on right now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
