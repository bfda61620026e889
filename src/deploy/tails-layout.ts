import path from 'node:path';

/** Overrides where the unlocked Persistent Storage is (tests use a fake Tails layout in a temp folder). */
export const TAILS_PERSISTENCE_ENV = 'XOP_TAILS_PERSISTENCE';
export const TAILS_PERSISTENCE = '/live/persistence/TailsData_unlocked';

/**
 * Where things are in an unlocked Tails Persistent Storage, one folder per feature (Tails
 * design: persistence; Persistent Storage settings): `Persistent` is ~/Persistent, `dotfiles`
 * is linked file by file into /home/amnesia at login, `pidgin` is mounted on ~/.purple, and
 * `live-additional-software.conf` lists the Debian packages installed at every start.
 */
export interface TailsLayout {
  readonly root: string;
  readonly persistentFolder: string;
  readonly dotfiles: string;
  readonly pidgin: string;
  readonly additionalSoftware: string;
  /** Ours: the daemon's code, its configuration, and the autostart entry (through Dotfiles). */
  readonly home: string;
  readonly appDir: string;
  readonly configFile: string;
  readonly autostartFile: string;
}

export function tailsLayout(env: NodeJS.ProcessEnv = process.env): TailsLayout {
  const root = path.resolve(env[TAILS_PERSISTENCE_ENV] || TAILS_PERSISTENCE);
  const persistentFolder = path.join(root, 'Persistent');
  const dotfiles = path.join(root, 'dotfiles');
  const home = path.join(persistentFolder, 'xmpp-onion-proxy');
  return {
    root,
    persistentFolder,
    dotfiles,
    pidgin: path.join(root, 'pidgin'),
    additionalSoftware: path.join(root, 'live-additional-software.conf'),
    home,
    appDir: path.join(home, 'app'),
    configFile: path.join(home, 'config.json'),
    autostartFile: path.join(dotfiles, '.config', 'autostart', 'xmpp-onion-proxy.desktop'),
  };
}

/** Tails' Tor: `SocksPort 127.0.0.1:9050 IsolateDestAddr IsolateDestPort`, no ExtendedErrors. */
export const TAILS_TOR = '127.0.0.1:9050';
/** Debian's nodejs package, installed through Additional Software. */
export const TAILS_NODE = '/usr/bin/node';
