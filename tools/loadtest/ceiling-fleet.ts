/**
 * Several fair-ceiling processes (tools/loadtest/reference-server.ts) read as one server:
 * one process holds at most ~19,000 sockets here (the 20,000 open-file limit), so
 * 100,000 need a fleet, as the product needs replicas. Their samples are summed the
 * way the replicas' /metrics are: memory, CPU and sockets added up, and each process's
 * tick one observation of the fleet's own fan-out.
 */
import type { FanOutHistogram, ServerSample } from './protocol.js';
import { startReference, type ReferenceProcess } from './reference-process.js';

/** The fleet's figures: the processes' samples added up. */
export function sumSamples(samples: ServerSample[]): ServerSample {
  const withFanOut = samples.filter((sample) => sample.fanOut !== undefined);
  const total: ServerSample = { processes: 0, rssBytes: 0, cpuSeconds: 0, connections: 0 };
  for (const sample of samples) {
    total.processes += sample.processes;
    total.rssBytes += sample.rssBytes;
    total.cpuSeconds += sample.cpuSeconds;
    total.connections += sample.connections;
  }
  if (withFanOut.length > 0) total.fanOut = sumFanOut(withFanOut.map((sample) => sample.fanOut!));
  return total;
}

function sumFanOut(histograms: FanOutHistogram[]): FanOutHistogram {
  const total: FanOutHistogram = { count: 0, sum: 0, buckets: [] };
  for (const histogram of histograms) {
    total.count += histogram.count;
    total.sum += histogram.sum;
    for (const { le, count } of histogram.buckets) {
      const bucket = total.buckets.find((b) => b.le === le);
      if (bucket === undefined) total.buckets.push({ le, count });
      else bucket.count += count;
    }
  }
  return total;
}

export class CeilingFleet {
  private constructor(private readonly members: ReferenceProcess[]) {}

  /**
   * One ceiling per port, all with `args`, started together; resolves once every one
   * listens. If any fails (a port taken), the ones started are stopped before it rejects.
   * Each runs in a session of its own, as each replica it stands in for does, so the
   * kernel schedules the fleet as it schedules the replicas (reference-process.ts).
   */
  static async start(ports: number[], args: string[]): Promise<CeilingFleet> {
    const started = await Promise.allSettled(ports.map((port) => startReference(port, args)));
    const members = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failure = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failure !== undefined) {
      await Promise.all(members.map((member) => member.stop()));
      throw failure.reason instanceof Error ? failure.reason : new Error(String(failure.reason));
    }
    return new CeilingFleet(members);
  }

  get pids(): number[] {
    return this.members.map((member) => member.pid);
  }

  get ports(): number[] {
    return this.members.map((member) => member.port);
  }

  async sample(): Promise<ServerSample> {
    return sumSamples(await Promise.all(this.members.map((member) => member.sample())));
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((member) => member.stop()));
  }
}
