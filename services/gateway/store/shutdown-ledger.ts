/**
 * Shutdown durations outlive the replica that measured them: a draining replica
 * appends its drain time to a Redis list, and the replicas still running take
 * entries off it and observe them in their own histogram, which Prometheus
 * scrapes as usual. Each entry is popped exactly once, so summing the histogram
 * over the fleet counts every shutdown once.
 *
 * Key: <prefix>shutdowns  list of JSON {replica, version, seconds, at}, newest last,
 * trimmed to the last MAX_ENTRIES so a fleet with nobody collecting stays bounded.
 */
/** Entries the list keeps: the newest, so a fleet with nobody collecting stays bounded. */
export const MAX_ENTRIES = 1000;
/** Entries one collect() takes off the list (one LPOP with a count). */
export const COLLECT_BATCH = 100;

/**
 * The commands the ledger sends. A RedisClient is one as it is; the unit tier passes a
 * list kept in memory, so the parse and trim rules are tested without Redis.
 */
export interface LedgerRedis {
  lpop(key: string, count: number): Promise<string[] | null>;
  multi(): LedgerTransaction;
}

export interface LedgerTransaction {
  rpush(key: string, value: string): LedgerTransaction;
  ltrim(key: string, start: number, stop: number): LedgerTransaction;
  exec(): Promise<unknown>;
}

export interface ShutdownRecord {
  replica: string;
  version: string;
  seconds: number;
  at: string;
}

export class ShutdownLedger {
  constructor(
    private readonly redis: LedgerRedis,
    private readonly keyPrefix: string,
  ) {}

  async record(entry: ShutdownRecord): Promise<void> {
    await this.redis.multi().rpush(this.key(), JSON.stringify(entry)).ltrim(this.key(), -MAX_ENTRIES, -1).exec();
  }

  /** Takes up to one batch of entries off the list; malformed entries are dropped. */
  async collect(): Promise<ShutdownRecord[]> {
    const raw = await this.redis.lpop(this.key(), COLLECT_BATCH);
    return (raw ?? []).flatMap((line) => {
      const parsed = parseRecord(line);
      return parsed === undefined ? [] : [parsed];
    });
  }

  private key(): string {
    return `${this.keyPrefix}shutdowns`;
  }
}

function parseRecord(line: string): ShutdownRecord | undefined {
  try {
    const value = JSON.parse(line) as Partial<ShutdownRecord>;
    return typeof value.seconds === 'number' && Number.isFinite(value.seconds) && value.seconds >= 0
      ? (value as ShutdownRecord)
      : undefined;
  } catch {
    return undefined;
  }
}
