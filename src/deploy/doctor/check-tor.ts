import { formatEndpoint, type Endpoint } from '../../common/endpoint.js';
import type { CheckLine } from '../check-line.js';
import type { DoorAddress } from '../doors.js';
import { socks5Greeting } from '../../proxy/tor-probe.js';

const START_TOR = 'start Tor (Debian: `sudo apt install tor && sudo systemctl start tor`; Tails and Tor Browser start their own), or give --tor the address of its SOCKS port';

/** Tor's SOCKS port must answer a SOCKS5 greeting, and must not be the daemon's own SOCKS door. */
export async function checkTor(tor: Endpoint, socksDoor?: DoorAddress): Promise<CheckLine> {
  const where = formatEndpoint(tor);
  if (socksDoor && tor.kind === 'tcp' && tor.host === socksDoor.host && tor.port === socksDoor.port) {
    return { status: 'fail', text: `--tor ${where} is the daemon's own SOCKS door: connections would loop`, fix: "give --tor Tor's SOCKS port (127.0.0.1:9050 on Debian and Tails; 9150 for Tor Browser)" };
  }
  const result = await socks5Greeting(tor);
  if (result.ok) return { status: 'ok', text: `Tor's SOCKS port ${where} answers SOCKS5` };
  switch (result.problem) {
    case 'refused':
      return { status: 'fail', text: `Tor's SOCKS port ${where}: nothing listens there (connection refused)`, fix: START_TOR };
    case 'no-such-socket':
      return { status: 'fail', text: `Tor's SOCKS socket ${where} does not exist`, fix: `add \`SocksPort ${where} WorldWritable\` to /etc/tor/torrc (Debian's tor has it by default) and restart tor, or ${START_TOR}` };
    case 'permission':
      return { status: 'fail', text: `Tor's SOCKS socket ${where}: permission denied`, fix: 'make it reachable (Debian: `SocksPort unix:/run/tor/socks WorldWritable`), or run as a member of its group' };
    case 'timeout':
      return { status: 'fail', text: `Tor's SOCKS port ${where}: ${result.detail}`, fix: `check that Tor (and not something else) listens on ${where}` };
    default:
      return { status: 'fail', text: `Tor's SOCKS port ${where}: ${result.detail}`, fix: `${where} is not a SOCKS5 port: give --tor Tor's SocksPort (127.0.0.1:9050 on Debian and Tails)` };
  }
}
