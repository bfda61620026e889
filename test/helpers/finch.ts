/**
 * Debian's finch (libpurple 2.14, the same core and the same accounts.xml as Pidgin) run
 * headless in tmux, for tests that log in with real libpurple.
 *
 *   const finch = await startFinch({ purpleDir, caCertPath, workDir });
 *   t.teardown(() => finch.stop());
 *   await finch.waitForScreen(/could not be validated/);
 *
 * - finch runs in a private mount namespace (`unshare -m`, so root is needed) where three
 *   files are replaced for it alone: /etc/ssl/certs holds only the test CA (libpurple reads
 *   no other CA store), /etc/hosts has this machine's own name (Cyrus SASL looks it up at
 *   every login), and /etc/resolv.conf points at 127.0.0.1 so that the lookups libpurple
 *   makes outside its proxy (the `_stun._udp.<domain>` SRV record, even with a connect
 *   server) fail at once on loopback instead of leaving the machine.
 * - Auto-login comes from `<settings ui='gnt-purple'>` in accounts.xml (Pidgin writes
 *   `ui='gtk-gaim'`), written by the test.
 * - tmux as in test/helpers/tmux.ts.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCommand } from './run-command.js';
import { startInTmux } from './tmux.js';

export interface FinchOptions {
  /** libpurple's settings folder (`finch -c`), holding accounts.xml. */
  readonly purpleDir: string;
  /** The one CA that libpurple trusts (PEM). */
  readonly caCertPath: string;
  /** A private folder for the tmux socket and the replacement /etc files. */
  readonly workDir: string;
  readonly columns?: number;
  readonly rows?: number;
}

export interface Finch {
  /** The screen as text. */
  screen(): Promise<string>;
  /** Polls the screen until it matches; rejects with the last screen after `timeoutMs`. */
  waitForScreen(match: RegExp | string, timeoutMs?: number): Promise<string>;
  /** tmux key names: 'Enter', 'M-n', 'Tab', or text. */
  sendKeys(...keys: string[]): Promise<void>;
  /** Cycles windows (Alt-n) until the one titled `title` has the focus. */
  focusWindow(title: string): Promise<void>;
  /** Ends finch and the tmux server. Idempotent. */
  stop(): Promise<void>;
}

export async function startFinch(options: FinchOptions): Promise<Finch> {
  for (const tool of ['finch', 'tmux', 'unshare']) {
    if ((await runCommand('sh', ['-c', `command -v ${tool}`])).code !== 0) throw new Error(`${tool} is not installed (Debian: apt install finch tmux util-linux)`);
  }
  if (process.getuid?.() !== 0) throw new Error('finch tests need root: a private mount namespace (unshare -m) gives finch its own CA store');
  const certs = path.join(options.workDir, 'ssl-certs');
  mkdirSync(certs, { recursive: true });
  copyFileSync(options.caCertPath, path.join(certs, 'xmpp-onion-proxy-test-ca.pem'));
  const hosts = path.join(options.workDir, 'hosts');
  writeFileSync(hosts, `127.0.0.1 localhost\n::1 localhost ip6-localhost\n127.0.0.1 ${os.hostname()}\n`);
  const resolv = path.join(options.workDir, 'resolv.conf');
  writeFileSync(resolv, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
  const home = path.join(options.workDir, 'home');
  mkdirSync(home, { recursive: true });

  const script = 'mount --bind "$1" /etc/ssl/certs && mount --bind "$2" /etc/hosts && mount --bind "$3" /etc/resolv.conf && exec finch -c "$4"';
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', TERM: 'xterm-256color' };
  const app = await startInTmux({
    workDir: options.workDir, env, name: 'finch', columns: options.columns ?? 200, rows: options.rows ?? 50,
    command: ['unshare', '-m', 'sh', '-c', script, 'sh', certs, hosts, resolv, options.purpleDir],
  });
  return {
    screen: () => app.screen(),
    waitForScreen: (match, timeoutMs) => app.waitForScreen(match, timeoutMs),
    sendKeys: (...keys) => app.sendKeys(...keys),
    focusWindow: async (title) => {
      // gnt draws the focused window's title white on blue (SGR 44); the others are not blue.
      const focused = new RegExp(`\\x1b\\[[0-9;]*44m(?:\\x1b\\[[0-9;]*m)*${title.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`);
      for (let tries = 0; tries < 8; tries++) {
        if (focused.test(await app.screen(true))) return;
        await app.sendKeys('M-n');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`finch: could not focus the window "${title}"; the screen:\n${await app.screen()}`);
    },
    stop: () => app.stop(),
  };
}
