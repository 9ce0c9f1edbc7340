/** Reading a collection's change stream (docs/changes.md) whole, message by message, with its ids. */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';

export interface ChangeMessage {
  seq: number;
  msgId: string;
  subject: string;
  body: { shard: number; index: number; time: string; op: 'upsert' | 'delete'; points?: { id: string; vector: number[]; metadata?: Record<string, unknown>; shardKey?: string }[]; ids?: string[] };
}

export async function withNats<T>(url: string, fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: url });
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}

/** Every message of stream `name`, in stream order; undefined when the stream does not exist. */
export async function readChangeStream(nc: NatsConnection, name: string): Promise<ChangeMessage[] | undefined> {
  const jsm = await jetstreamManager(nc);
  let info;
  try {
    info = await jsm.streams.info(name);
  } catch (err) {
    if (/stream not found/i.test((err as Error).message)) return undefined;
    throw err;
  }
  const out: ChangeMessage[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(name, { seq });
    if (!m) continue;
    out.push({ seq: m.seq, msgId: m.header.get('Nats-Msg-Id'), subject: m.subject, body: m.json() });
  }
  return out;
}
