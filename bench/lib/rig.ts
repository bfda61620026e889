/** The fixed part of every bench run: test PKI, the bench XMPP server, the SOCKS hop. */
import path from 'node:path';
import tls from 'node:tls';
import { createTestPki } from '../../test/helpers/certs.js';
import type { RelayEnv } from './relays.js';
import { startHop } from './relays.js';
import { RECORDS_DOMAIN, TLS_DOMAIN } from './wire.js';
import type { Rig } from './workloads.js';
import { startBenchServer } from './xmpp-server.js';

export interface RigWithEnv extends Rig {
  readonly env: RelayEnv;
  stop(): Promise<void>;
}

export async function createRig(dir: string): Promise<RigWithEnv> {
  const pki = await createTestPki(path.join(dir, 'pki'), [TLS_DOMAIN, RECORDS_DOMAIN]);
  const server = await startBenchServer(pki.serverKey, pki.serverCert);
  const hop = await startHop(dir);
  return {
    server,
    hop,
    env: { dir, hopPort: hop.port, serverPort: server.port },
    context: { serverPort: server.port, secureContext: tls.createSecureContext({ ca: pki.caCert }), timeoutMs: 10_000 },
    stop: async () => {
      await hop.stop();
      await server.close();
    },
  };
}
