import assert from 'node:assert/strict';
import { PlainClient, SocketIoClient } from '../../tools/harness/clients.js';
import { RedisServer, ReplicaProcess, sleep, eventually } from '../../tools/harness/processes.js';
import { FleetProbe } from '../smoke/fleet-probe.js';

const INTERVAL_MS = 400;
/** Time allowed for a tick to reach every socket on loopback before a window closes. */
const DELIVERY_SLACK_MS = 150;

type Client = PlainClient | SocketIoClient;

describe('heartbeat', () => {
  let redis: RedisServer;
  let replicas: ReplicaProcess[] = [];
  const clientsOf = new Map<ReplicaProcess, Client[]>();

  before(async () => {
    redis = await RedisServer.start();
    const env = { HEARTBEAT_INTERVAL_MS: String(INTERVAL_MS) };
    replicas = await Promise.all([1, 2, 3].map(() => ReplicaProcess.start(redis, env)));
    for (const replica of replicas) {
      clientsOf.set(replica, [
        await PlainClient.connect(replica.wsUrl),
        await PlainClient.connect(replica.wsUrl),
        await SocketIoClient.connect(replica.httpUrl),
      ]);
    }
  });

  after(async () => {
    for (const client of [...clientsOf.values()].flat()) client.close();
    await Promise.all(replicas.map((replica) => replica.stop()));
    await redis?.destroy();
  });

  /** Every tick won in (from, to], by ts, across the given replicas' logs. */
  function ticksWon(from: ReplicaProcess[], since: number, until: number): string[] {
    return from
      .flatMap((replica) => replica.events('heartbeat_won').map((line) => String(line.ts)))
      .filter((ts) => Date.parse(ts) > since && Date.parse(ts) <= until)
      .sort();
  }

  function assertConsecutive(ticks: string[]): void {
    for (let i = 1; i < ticks.length; i += 1) {
      assert.equal(Date.parse(ticks[i]!) - Date.parse(ticks[i - 1]!), INTERVAL_MS, `gap or duplicate: ${ticks.join(' ')}`);
    }
  }

  function assertEveryClientGot(clients: Client[], expected: string[], since: number, until: number): void {
    for (const client of clients) {
      const got = client.heartbeats();
      assert.equal(new Set(got).size, got.length, `duplicate heartbeat: ${got.join(' ')}`);
      const inWindow = got.filter((ts) => Date.parse(ts) > since && Date.parse(ts) <= until).sort();
      assert.deepEqual(inWindow, expected);
    }
  }

  it('publishes exactly once per tick for the fleet and reaches every socket on both transports', async () => {
    const since = Date.now();
    await sleep(INTERVAL_MS * 5);
    const until = Date.now() - DELIVERY_SLACK_MS;

    const won = ticksWon(replicas, since, until);
    assert.ok(won.length >= 4, `only ${won.length} ticks in the window`);
    assertConsecutive(won);
    assertEveryClientGot([...clientsOf.values()].flat(), won, since, until);

    for (const ts of won) {
      assert.match(ts, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      assert.equal(Date.parse(ts) % INTERVAL_MS, 0, `${ts} is not aligned to the interval`);
    }
    const published = await Promise.all(replicas.map((r) => r.metric('wschat_heartbeats_published_total')));
    const allWon = replicas.flatMap((replica) => replica.events('heartbeat_won'));
    assert.equal(published.reduce((sum, n) => sum + n, 0), allWon.length, 'one publish per won tick');
    assert.equal(new Set(allWon.map((line) => line.ts)).size, allWon.length, 'no tick won twice');
    const delivered = await replicas[0]!.metric('wschat_heartbeats_delivered_total', { transport: 'plain' });
    assert.ok(delivered >= won.length * 2, `plain deliveries ${delivered}`);
  });

  it('keeps beating when a replica dies', async () => {
    const [survivorA, survivorB, victim] = replicas as [ReplicaProcess, ReplicaProcess, ReplicaProcess];
    victim.signal('SIGKILL');
    await victim.exited;
    const since = Date.now();
    await sleep(INTERVAL_MS * 5);
    const until = Date.now() - DELIVERY_SLACK_MS;

    const won = ticksWon([survivorA, survivorB], since, until);
    assert.ok(won.length >= 4, `only ${won.length} ticks after the kill`);
    assertConsecutive(won);
    assertEveryClientGot([...clientsOf.get(survivorA)!, ...clientsOf.get(survivorB)!], won, since, until);
  });

  // After 'keeps beating': a probe's ts must not fall in another test's window.
  it("writes a fleet channel probe to the probed session's sockets only", async () => {
    const [first, second] = replicas as [ReplicaProcess, ReplicaProcess];
    const [target, sameReplica, socketIo] = clientsOf.get(second)! as [PlainClient, PlainClient, SocketIoClient];
    const probe = await FleetProbe.open(redis.url, INTERVAL_MS);
    try {
      const ts = probe.send(target.sessionId!);
      assert.notEqual(Date.parse(ts) % INTERVAL_MS, 0, `a probe's ts is never a tick's: ${ts}`);
      await eventually(() => target.heartbeats().includes(ts), `the probe ${ts} on its session's socket`, 3000);
      // Another replica's ticks have reached every client since: the probe would have too.
      const tickAfter = Math.ceil((Date.now() + 1) / INTERVAL_MS) * INTERVAL_MS;
      await eventually(() => clientsOf.get(first)!.every((client) => client.heartbeats().some((beat) => Date.parse(beat) >= tickAfter)), 'a tick after the probe', 5000);
      for (const client of [sameReplica, socketIo, ...clientsOf.get(first)!]) assert.ok(!client.heartbeats().includes(ts), 'the probe reached another session');
      const probed = second.events('heartbeat_probe');
      assert.equal(probed.length, 1, JSON.stringify(probed));
      assert.equal(probed[0]!.sockets, 1);
      assert.deepEqual(first.events('heartbeat_probe'), [], 'a replica without the session logs nothing');
    } finally {
      await probe.close();
    }
  });
});
