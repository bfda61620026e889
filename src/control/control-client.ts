import { EventEmitter } from 'node:events';
import { lstatSync } from 'node:fs';
import net from 'node:net';
import WebSocket, { type RawData } from 'ws';
import { ProxyError } from '../common/errors.js';
import { CONTROL_VERSION, type Request, type ServerMessage } from './protocol.js';
import { clientControlPaths } from './socket-path.js';

/** The daemon could not be reached or answered in a way this client does not understand. */
export class ControlClientError extends ProxyError {
  constructor(message: string) {
    super('XOP_ERR_CONTROL_CLIENT', message);
  }
}

/** Snapshots are capped (256 connections listed), far below this. */
const MAX_SERVER_MESSAGE = 4 * 1024 * 1024;

/**
 * The socket to talk to: --control, else the first that exists of the daemon's default and a
 * system service's; with none there, the error names every place looked at.
 */
export function chooseControlPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined) return flag;
  const candidates = clientControlPaths(env);
  const found = candidates.find((p) => lstatSync(p, { throwIfNoEntry: false }) !== undefined);
  if (found) return found;
  if (candidates.length === 1) {
    throw new ControlClientError(`no control socket at ${candidates[0]}: is the daemon running? (XDG_RUNTIME_DIR is not set; give --control PATH as given to the daemon)`);
  }
  return candidates[0]!;
}

export interface ClosedInfo {
  readonly code: number;
  readonly reason: string;
}

/** One connection to the daemon's control socket. Emits 'message' (ServerMessage) and 'close' (ClosedInfo). */
export class ControlClient extends EventEmitter<{ message: [ServerMessage]; close: [ClosedInfo] }> {
  readonly #ws: WebSocket;
  readonly path: string;
  closedWith: ClosedInfo | undefined;

  private constructor(ws: WebSocket, path: string) {
    super();
    this.#ws = ws;
    this.path = path;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) return;
      let message: ServerMessage;
      try {
        message = JSON.parse(data.toString()) as ServerMessage;
      } catch {
        return;
      }
      if (message.version !== CONTROL_VERSION) {
        ws.close();
        this.#closed({ code: 0, reason: `the daemon speaks control protocol version ${String(message.version)}; this command knows ${CONTROL_VERSION}` });
        return;
      }
      this.emit('message', message);
    });
    ws.on('close', (code: number, reason: Buffer) => this.#closed({ code, reason: reason.toString() }));
  }

  static connect(path: string, timeoutMs = 5000): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket('ws://localhost/', {
        createConnection: () => net.connect({ path }),
        maxPayload: MAX_SERVER_MESSAGE,
        perMessageDeflate: false,
        handshakeTimeout: timeoutMs,
      });
      const failed = (error: NodeJS.ErrnoException): void => {
        ws.removeListener('open', opened);
        reject(new ControlClientError(explain(path, error)));
      };
      const opened = (): void => {
        ws.removeListener('error', failed);
        ws.on('error', () => {});
        resolve(new ControlClient(ws, path));
      };
      ws.once('error', failed);
      ws.once('open', opened);
    });
  }

  send(request: Request): void {
    if (this.#ws.readyState === WebSocket.OPEN) this.#ws.send(JSON.stringify({ ...request, version: CONTROL_VERSION }));
  }

  /** The next message of `type`; rejects if the daemon closes first or an error message comes back. */
  next<T extends ServerMessage['type']>(type: T, timeoutMs = 10_000): Promise<Extract<ServerMessage, { type: T }>> {
    return new Promise((resolve, reject) => {
      const onMessage = (message: ServerMessage): void => {
        if (message.type === type) {
          done();
          resolve(message as Extract<ServerMessage, { type: T }>);
        } else if (message.type === 'error') {
          done();
          reject(new ControlClientError(`the daemon answered: ${message.message} (${message.code})`));
        }
      };
      const onClose = (info: ClosedInfo): void => {
        done();
        reject(new ControlClientError(closedWords(info)));
      };
      const timer = setTimeout(() => {
        done();
        reject(new ControlClientError(`no ${type} from the daemon within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.removeListener('message', onMessage);
        this.removeListener('close', onClose);
      };
      if (this.closedWith) return onClose(this.closedWith);
      this.on('message', onMessage);
      this.on('close', onClose);
    });
  }

  close(): void {
    this.#ws.close(1000);
  }

  /** Resolves when the connection has closed (at once if it already has). */
  closed(): Promise<ClosedInfo> {
    if (this.closedWith) return Promise.resolve(this.closedWith);
    return new Promise((resolve) => this.once('close', resolve));
  }

  #closed(info: ClosedInfo): void {
    if (this.closedWith) return;
    this.closedWith = info;
    this.emit('close', info);
  }
}

export function closedWords(info: ClosedInfo): string {
  if (info.code === 0) return info.reason;
  if (info.reason) return `the daemon closed the control connection: ${info.reason}`;
  return `the daemon closed the control connection (code ${info.code})`;
}

function explain(path: string, error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT':
      return `no control socket at ${path}: is the daemon running? (give --control PATH if it was started with one)`;
    case 'ECONNREFUSED':
      return `nothing answers at ${path}: the daemon is not running (the socket is left from an earlier run)`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied on ${path}: the daemon runs as another user; run this command as that user`;
    case 'ENOTSOCK':
      return `${path} is not a socket`;
    default:
      return `cannot reach the daemon at ${path}: ${error.code ?? error.message}`;
  }
}
