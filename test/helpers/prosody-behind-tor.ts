/**
 * The usual end-to-end set-up: a real Prosody with the accounts alice and bob (fresh passwords),
 * a SOCKS5 fixture standing in for Tor that reaches its c2s port on 127.0.0.1 (and, with HTTP
 * upload, its HTTPS port under the upload host's name and the domain's), and a map file that
 * sends example.test there. Everything is stopped by `t`'s teardown.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { startProsody, type Prosody } from './prosody.js';
import { startSocks5Fixture, type SocksFixture } from './socks5-server.js';

export interface ProsodyBehindTor {
  readonly prosody: Prosody;
  readonly tor: SocksFixture;
  readonly passwords: { readonly alice: string; readonly bob: string };
  /** A private folder (removed at teardown) holding `mapFile`. */
  readonly dir: string;
  readonly mapFile: string;
}

export async function prosodyBehindTor(t: Test, options: { httpUpload?: boolean } = {}): Promise<ProsodyBehindTor> {
  const passwords = { alice: randomBytes(12).toString('base64url'), bob: randomBytes(12).toString('base64url') };
  const prosody = await startProsody({ users: [['alice', passwords.alice], ['bob', passwords.bob]], muc: false, ...(options.httpUpload ? { httpUpload: true } : {}) });
  t.teardown(() => prosody.stop());
  const upload = prosody.upload;
  // Names reach Prosody's ports on 127.0.0.1, as Tor would resolve them at an exit.
  const tor = await startSocks5Fixture({
    resolve: (host, port) => {
      if (host === '127.0.0.1' && port === prosody.c2sPort) return port;
      if (upload && [upload.domain, prosody.domain].includes(host) && port === upload.httpsPort) return port;
      return undefined;
    },
  });
  t.teardown(() => tor.close());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'xop-e2e-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const mapFile = path.join(dir, 'map.json');
  const https = upload ? { https: { hosts: [upload.domain], ports: [upload.httpsPort] } } : {};
  await writeFile(mapFile, JSON.stringify({ [prosody.domain]: { host: '127.0.0.1', port: prosody.c2sPort, ...https } }));
  return { prosody, tor, passwords, dir, mapFile };
}
