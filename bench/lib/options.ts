/** The bench's command line: `npm run bench -- [--quick] [--repeat N] [--only a,b] [--skip x,y] [--json FILE] [--daemon-arg ARG]`. */

export const WORKLOADS = ['startup', 'roundtrips', 'login', 'handshake', 'echo', 'bulk', 'idle', 'pretls', 'maxconn'] as const;
export type Workload = (typeof WORKLOADS)[number];

export interface BenchOptions {
  readonly quick: boolean;
  readonly repeat: number;
  readonly workloads: ReadonlySet<Workload>;
  /** Baselines not to run even when installed: socat, haproxy. */
  readonly skip: ReadonlySet<string>;
  readonly json: string;
  readonly daemonArgs: readonly string[];
  /** Node flags for the daemon processes (experiments, e.g. --max-semi-space-size=1). */
  readonly daemonNodeFlags: readonly string[];
  readonly sizes: {
    readonly bulkRecordsBytes: number;
    readonly bulkTlsBytes: number;
    readonly handshakesPerRep: number;
    readonly echoPerRep: number;
    readonly idleDaemon: readonly number[];
    readonly idleBaselines: readonly number[];
    readonly idleSocat: readonly number[];
    readonly maxConnFdLimit: number;
    readonly refusalLimit: number;
    readonly startupRuns: number;
    readonly settleMs: number;
    /** The modelled circuit's one-way delay (a real onion circuit: 150–500 ms), and connections per path over it. */
    readonly circuitDelayMs: number;
    readonly roundTripsPerPath: number;
    /** Real logins (go-sendxmpp against Prosody) per path over the same circuit. */
    readonly loginsPerPath: number;
  };
}

export const USAGE = `npm run bench -- [options]
  --quick            a smoke run of about a minute (fewer, smaller repetitions)
  --repeat N         repetitions of each interleaved workload (default 3 quick, 5 full)
  --only LIST        some of: ${WORKLOADS.join(',')}
  --skip LIST        baselines to leave out: socat,haproxy
  --json FILE        where the results go (default bench/results/latest.json)
  --daemon-arg ARG   an extra flag for the daemon (repeatable), e.g. --daemon-arg=--log-level=warn
  --daemon-node-flag FLAG  a Node flag for the daemon (repeatable), e.g. --daemon-node-flag=--max-semi-space-size=1
`;

const MiB = 1024 * 1024;

export function parseOptions(argv: readonly string[]): BenchOptions | 'help' {
  let quick = false;
  let repeat: number | undefined;
  let only: Workload[] | undefined;
  const skip = new Set<string>();
  let json = 'bench/results/latest.json';
  const daemonArgs: string[] = [];
  const daemonNodeFlags: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.indexOf('=');
    const name = raw.startsWith('--') && eq > 0 ? raw.slice(0, eq) : raw;
    const value = (): string => {
      if (raw.startsWith('--') && eq > 0) return raw.slice(eq + 1);
      const next = argv[++i];
      if (next === undefined) throw new Error(`${name} needs a value`);
      return next;
    };
    switch (name) {
      case '--quick':
        quick = true;
        break;
      case '--repeat':
        repeat = Number(value());
        if (!Number.isInteger(repeat) || repeat < 1 || repeat > 50) throw new Error('--repeat: a whole number from 1 to 50');
        break;
      case '--only':
        only = value().split(',').map((w) => {
          if (!(WORKLOADS as readonly string[]).includes(w)) throw new Error(`--only: unknown workload "${w}" (${WORKLOADS.join(', ')})`);
          return w as Workload;
        });
        break;
      case '--skip':
        for (const s of value().split(',')) skip.add(s);
        break;
      case '--json':
        json = value();
        break;
      case '--daemon-arg':
        daemonArgs.push(value());
        break;
      case '--daemon-node-flag':
        daemonNodeFlags.push(value());
        break;
      case '--help':
      case '-h':
        return 'help';
      default:
        throw new Error(`unknown option ${raw}\n${USAGE}`);
    }
  }
  return {
    quick,
    repeat: repeat ?? (quick ? 3 : 5),
    workloads: new Set(only ?? WORKLOADS),
    skip,
    json,
    daemonArgs,
    daemonNodeFlags,
    sizes: quick
      ? {
        bulkRecordsBytes: 128 * MiB,
        bulkTlsBytes: 48 * MiB,
        handshakesPerRep: 40,
        echoPerRep: 200,
        idleDaemon: [1000, 5000],
        idleBaselines: [1000],
        idleSocat: [1000],
        maxConnFdLimit: 1024,
        refusalLimit: 100,
        startupRuns: 5,
        settleMs: 500,
        circuitDelayMs: 100,
        roundTripsPerPath: 3,
        loginsPerPath: 2,
      }
      : {
        bulkRecordsBytes: 256 * MiB,
        bulkTlsBytes: 128 * MiB,
        handshakesPerRep: 100,
        echoPerRep: 1000,
        idleDaemon: [1000, 5000],
        idleBaselines: [1000, 5000],
        idleSocat: [1000],
        maxConnFdLimit: 4096,
        refusalLimit: 200,
        startupRuns: 15,
        settleMs: 1500,
        circuitDelayMs: 100,
        roundTripsPerPath: 9,
        loginsPerPath: 5,
      },
  };
}
