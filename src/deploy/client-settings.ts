import type { DoorAddress } from './doors.js';

/**
 * The settings each client needs, in words, for the clients whose settings this program does not
 * write itself: `configure gajim|poezio|dino` print them and doctor points at them. Pidgin and
 * Profanity are written by `configure pidgin|profanity`.
 */
export type ClientName = 'gajim' | 'poezio' | 'dino';

export interface ClientSettings {
  readonly title: string;
  /** Why this program does not write the settings itself. */
  readonly why: string;
  readonly steps: (doors: { socks: DoorAddress; listen: DoorAddress }) => readonly string[];
}

export const CLIENT_SETTINGS: Readonly<Record<ClientName, ClientSettings>> = {
  gajim: {
    title: 'Gajim (the SOCKS door)',
    why: 'Gajim keeps its settings in an SQLite database (settings.sqlite) that this program does not write; they are two dialogs away',
    steps: ({ socks }) => {
      const { host, port } = socks;
      return [
        `Preferences › Advanced › Proxies: add a proxy "xmpp-onion-proxy": type SOCKS5, host ${host}, port ${port}, no user name.`,
        'Accounts › your account › Connection › Proxy: "xmpp-onion-proxy" (not the built-in "Tor": that is Tor itself, without the checks).',
        'Accounts › your account › Connection: no custom host; Connection type: STARTTLS.',
        'Gajim checks the certificate against your domain; its HTTP uploads go through the same proxy as HTTPS, which the daemon checks as TLS.',
      ];
    },
  },
  poezio: {
    title: 'Poezio (the connect-server door)',
    why: 'Poezio has no proxy setting; three lines of its poezio.cfg do it',
    steps: ({ listen }) => {
      const { host, port } = listen;
      return [
        'In ~/.config/poezio/poezio.cfg, section [Poezio] (or your account\'s section):',
        `  custom_host = ${host}`,
        `  custom_port = ${port}`,
        '  force_encryption = true',
        'Poezio (slixmpp) still checks the certificate against your domain.',
      ];
    },
  },
  dino: {
    title: 'Dino (no setting of its own: a limit)',
    why: 'Dino has no proxy and no host setting',
    steps: ({ socks }) => {
      const { host, port } = socks;
      return [
        `GNOME proxy settings (Settings › Network › Proxy, Manual; or gsettings: org.gnome.system.proxy mode manual, org.gnome.system.proxy.socks host ${host} port ${port}) carry Dino's connection to the SOCKS door, with your domain as a name.`,
        'But before connecting Dino asks the system resolver for your domain\'s SRV records (_xmpp-client._tcp and _xmpps-client._tcp): a DNS lookup outside Tor that names your server.',
        'Use Dino only where DNS outside Tor cannot leave the machine (on Tails it fails, and Dino falls back to the domain through the proxy); elsewhere prefer Gajim, Pidgin or Profanity.',
      ];
    },
  },
};

export function formatClientSettings(name: ClientName, doors: { socks: DoorAddress; listen: DoorAddress }): string {
  const settings = CLIENT_SETTINGS[name];
  const steps = settings.steps(doors);
  return [`${settings.title}: ${settings.why}. Set by hand:`, ...steps.map((s) => `  ${s}`), ''].join('\n');
}
