import net from 'node:net';
import type { Logger } from 'pino';
import { loadOnionMap } from '../onionmap/load.js';
import { MapFileError } from '../onionmap/map-file.js';
import { formatEndpoint, type Endpoint } from '../proxy/endpoint.js';
import { describeListen, ProxyServer } from '../proxy/server.js';
import type { DaemonConfig } from './daemon-config.js';
import { createLogger } from './logger.js';

import { EXIT } from './exit-codes.js';

/** Runs the daemon in the foreground until SIGINT or SIGTERM; resolves with the exit code. */
export async function runDaemon(config: DaemonConfig): Promise<number> {
  const log = await createLogger(config.logLevel);
  let map;
  try {
    map = loadOnionMap({ files: config.mapFiles });
  } catch (error) {
    if (error instanceof MapFileError) {
      process.stderr.write(`xmpp-onion-proxy: invalid map ${error.message}\n`);
      return EXIT.usage;
    }
    throw error;
  }
  let proxy: ProxyServer;
  try {
    proxy = await ProxyServer.start(config.proxy, map, log);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the address is in use (is another copy running?)'
      : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'no such local address' : (error as Error).message;
    process.stderr.write(`xmpp-onion-proxy: cannot listen on ${formatEndpoint(config.proxy.listen)}: ${why}\n`);
    return EXIT.failure;
  }
  log.info({ port: proxy.address.port, entries: map.size }, describeListen({ ...config.proxy, listen: { ...config.proxy.listen, port: proxy.address.port } }));
  void warnIfTorSilent(config.proxy.tor, log);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, open: proxy.connections }, 'stopping');
      void proxy.close().then(() => {
        process.removeListener('SIGHUP', reload);
        resolve(EXIT.ok);
      });
    };
    const reload = (): void => {
      try {
        const next = loadOnionMap({ files: config.mapFiles });
        proxy.setMap(next);
        log.info({ entries: next.size }, 'map reloaded');
      } catch (error) {
        log.error({ err: error }, 'map reload failed; keeping the previous map');
      }
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.on('SIGHUP', reload);
  });
}

async function warnIfTorSilent(tor: Endpoint, log: Logger): Promise<void> {
  const answered = await new Promise<string | undefined>((resolve) => {
    const socket = tor.kind === 'tcp' ? net.connect({ host: tor.host, port: tor.port }) : net.connect({ path: tor.path });
    socket.setTimeout(3000, () => {
      socket.destroy();
      resolve('no answer within 3 seconds');
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
  if (answered !== undefined) {
    log.warn({ tor: formatEndpoint(tor), problem: answered }, `Tor's SOCKS port at ${formatEndpoint(tor)} does not answer (${answered}); connections will fail until Tor runs`);
  }
}
