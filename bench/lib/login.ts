/**
 * A real login over the modelled circuit: go-sendxmpp logs in to a real Prosody (STARTTLS
 * required, test CA) and sends one message, alone (its connection carried through the circuit
 * by a SOCKS forwarder, as a client with a proxy setting does), through the connect-server door
 * and through the SOCKS door. Time from spawn to exit, in round trips of the circuit.
 */
import { randomBytes } from 'node:crypto';
import { startProsody } from '../../test/helpers/prosody.js';
import { runGoSendxmpp } from '../../test/helpers/sendxmpp.js';
import { startSocksForwarder } from '../../test/helpers/socks-forwarder.js';
import { tool } from './processes.js';
import { startDaemon, startHop, type RelayEnv, type RelayOptions } from './relays.js';
import { rotate } from './stats.js';
import type { PathName } from './workloads.js';

/** The domain Prosody serves; the hop carries names under bench.test to 127.0.0.1. */
export const LOGIN_DOMAIN = 'login.bench.test';

export interface LoginResult {
  readonly delayMs: number;
  /** Per path: go-sendxmpp's spawn → exit, ms, one sample per login. */
  readonly samples: Partial<Record<PathName, number[]>>;
  readonly failures: string[];
}

/** Undefined, with the reason in `notes`, when Prosody or go-sendxmpp is not installed. */
export async function logins(env: RelayEnv, options: RelayOptions, count: number, delayMs: number, notes: string[]): Promise<LoginResult | undefined> {
  const missing = ['prosody', 'go-sendxmpp'].filter((name) => !tool(name));
  if (missing.length > 0) {
    notes.push(`login: not measured, ${missing.join(' and ')} not installed (./scripts/install-test-deps installs them)`);
    return undefined;
  }
  const password = randomBytes(12).toString('base64url');
  const prosody = await startProsody({ domain: LOGIN_DOMAIN, users: [['alice', password], ['bob', password]], muc: false, logLevel: 'warn' });
  const circuit = await startHop(env.dir, delayMs);
  const circuitEnv = { ...env, hopPort: circuit.port, loginPort: prosody.c2sPort };
  const stops: Array<() => Promise<void>> = [() => prosody.stop(), () => circuit.stop()];
  try {
    const daemon = await startDaemon('daemon', circuitEnv, options);
    stops.push(() => daemon.stop());
    const daemonSocks = await startDaemon('daemon-socks', circuitEnv, options);
    stops.push(() => daemonSocks.stop());
    const alone = await startSocksForwarder(circuit.port, { host: '127.0.0.1', port: prosody.c2sPort });
    stops.push(() => alone.close());
    const throughSocksDoor = await startSocksForwarder(daemonSocks.port, { host: LOGIN_DOMAIN, port: 5222 });
    stops.push(() => throughSocksDoor.close());
    const paths: Array<{ name: PathName; port: number }> = [
      { name: 'direct', port: alone.port },
      { name: 'daemon', port: daemon.port },
      { name: 'daemon-socks', port: throughSocksDoor.port },
    ];
    const samples: Partial<Record<PathName, number[]>> = {};
    const failures: string[] = [];
    for (const path of paths) samples[path.name] = [];
    for (let i = 0; i < count; i++) {
      for (const path of rotate(paths, i)) {
        const started = performance.now();
        const result = await runGoSendxmpp({
          jidUser: 'alice', domain: LOGIN_DOMAIN, password, hostPort: `127.0.0.1:${path.port}`,
          to: `bob@${LOGIN_DOMAIN}`, body: `bench ${i}`, caCertPath: prosody.caCertPath, timeoutMs: 60 * delayMs + 10_000,
        });
        if (result.code === 0) samples[path.name]!.push(performance.now() - started);
        else failures.push(`${path.name}: go-sendxmpp exit ${result.code ?? result.signal}: ${result.stderr.trim().slice(0, 300)}`);
      }
    }
    return { delayMs, samples, failures };
  } finally {
    for (const stop of stops.reverse()) await stop();
  }
}
