/** The first file descriptor systemd passes (sd_listen_fds(3)). */
const SD_LISTEN_FDS_START = 3;

/**
 * Listening sockets inherited from systemd, by `FileDescriptorName=`. The variables are removed
 * so that nothing started later inherits them. Empty when not socket-activated.
 */
export function takeInheritedListeners(env: NodeJS.ProcessEnv = process.env, pid = process.pid): Map<string, number> {
  const listeners = new Map<string, number>();
  const count = Number(env.LISTEN_FDS ?? 0);
  const forUs = env.LISTEN_PID === undefined || Number(env.LISTEN_PID) === pid;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  if (!forUs || !Number.isInteger(count) || count <= 0) return listeners;
  for (let i = 0; i < count; i++) {
    const name = names[i] && names[i] !== 'unknown' ? names[i]! : i === 0 ? 'connect-server' : `fd${SD_LISTEN_FDS_START + i}`;
    listeners.set(name, SD_LISTEN_FDS_START + i);
  }
  return listeners;
}
