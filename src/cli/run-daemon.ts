import type { Logger } from 'pino';
import { loadLayeredMap } from '../onionmap/load.js';
import { MapFileError } from '../common/errors.js';
import { errnoWords } from '../common/words.js';
import { formatEndpoint, type Endpoint } from '../common/endpoint.js';
import { socks5Greeting } from '../proxy/tor-probe.js';
import { describeDoors, ProxyServer } from '../proxy/server.js';
import type { ControlServer } from '../control/control-server.js';
import { reloadFailure, type ReloadOutcome } from '../control/protocol.js';
import type { DaemonConfig } from './daemon-config.js';
import { createLogger } from './logger.js';

import { EXIT } from './exit-codes.js';

/** Runs the daemon in the foreground until SIGINT or SIGTERM; resolves with the exit code. */
export async function runDaemon(config: DaemonConfig): Promise<number> {
  const log = await createLogger(config.logLevel);
  let map;
  let layers;
  try {
    ({ map, used: layers } = loadLayeredMap({ layers: config.mapLayers }));
  } catch (error) {
    if (error instanceof MapFileError) {
      process.stderr.write(`xmpp-onion-proxy: invalid map ${error.message}\n`);
      return EXIT.usage;
    }
    throw error;
  }
  if (config.control === undefined) log.info('no control socket (--no-control, or neither RUNTIME_DIRECTORY nor XDG_RUNTIME_DIR is set: give --control PATH)');
  const control = config.control === undefined ? undefined : await import('../control/daemon-control.js');
  const prepared = control && config.control !== undefined ? await control.prepareDaemonControl(config.control, log) : { ok: true as const, path: undefined };
  if (!prepared.ok) {
    process.stderr.write(`xmpp-onion-proxy: ${prepared.message}\n`);
    return EXIT.failure;
  }
  let proxy: ProxyServer;
  try {
    proxy = await ProxyServer.start(config.proxy, map, log);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === undefined ? (error as Error).message : errnoWords(code);
    const where = config.proxy.doors.map((d) => (d.listen.kind === 'fd' ? `inherited fd ${d.listen.fd}` : formatEndpoint(d.listen))).join(', ');
    process.stderr.write(`xmpp-onion-proxy: cannot listen on ${where}: ${why}\n`);
    return EXIT.failure;
  }
  // Open sessions keep the route they already took; only new connections see the new map.
  // A failed reload is logged at error level with the file, domain and problem, so the admin
  // can fix it: that is configuration, never traffic. Info lines carry counts only.
  // SIGHUP and the control socket's reload both come here.
  const reload = (): ReloadOutcome => {
    try {
      const next = loadLayeredMap({ layers: config.mapLayers });
      proxy.setMap(next.map);
      log.info({ entries: next.map.size, layers: next.used }, 'map reloaded');
      return { ok: true, generation: proxy.mapGeneration, entries: next.map.size, layers: next.used };
    } catch (error) {
      const problems = error instanceof MapFileError ? error.problems.length : undefined;
      log.error({ err: error, problems }, 'map reload failed; keeping the previous map');
      return reloadFailure(error, proxy.mapGeneration, proxy.map.size);
    }
  };
  let controlServer: ControlServer | undefined;
  if (control && prepared.path !== undefined) {
    try {
      controlServer = await control.startDaemonControl(prepared.path, proxy, config.proxy.tor, reload, log);
    } catch (error) {
      process.stderr.write(`xmpp-onion-proxy: cannot open the control socket ${prepared.path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`);
      await proxy.close();
      return EXIT.failure;
    }
  }
  // Signals are handled before the ready line, so a stop sent right after it is a clean stop.
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, open: proxy.connections }, 'stopping');
      void Promise.all([proxy.close(), controlServer?.close()]).then(() => {
        process.removeListener('SIGHUP', reload);
        resolve(EXIT.ok);
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.on('SIGHUP', reload);
  });
  // Logged once the control socket (if any) answers too: the line means "ready".
  const socks = proxy.addressOf('socks');
  log.info({
    port: proxy.addressOf('connect-server')?.port, ...(socks ? { socksPort: socks.port } : {}), entries: map.size, layers,
    ...(controlServer ? { control: controlServer.path } : {}),
  }, describeDoors(proxy, config.proxy.tor));
  void warnIfTorSilent(config.proxy.tor, log);
  return stopped;
}

/** A SOCKS5 greeting, not just a TCP connect: something else on Tor's port is named too. */
async function warnIfTorSilent(tor: Endpoint, log: Logger): Promise<void> {
  const answer = await socks5Greeting(tor);
  if (!answer.ok) {
    log.warn({ tor: formatEndpoint(tor), problem: answer.problem }, `Tor's SOCKS port at ${formatEndpoint(tor)} does not answer (${answer.detail}); connections will fail until Tor runs`);
  }
}
