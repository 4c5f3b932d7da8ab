import amqp, { type AmqpConnectionManager } from 'amqp-connection-manager';
import type { Options } from 'amqplib';
import type { Logger } from 'pino';
import { observeBlocked } from '../observability/metrics.js';

/** What a connection of a process is for: RabbitMQ blocks a connection that publishes during an alarm, so the two are apart. */
export type ConnectionRole = 'consume' | 'publish';

/**
 * A broker connection, reconnecting by itself. Nagle is off (`noDelay`): with it on, amqplib adds ~40 ms to
 * every small confirm/ack round trip. Given a cluster's nodes, it reconnects to the next one in turn when its
 * node goes. A memory or disk alarm blocks a connection that publishes: logged, and counted in /metrics.
 */
export function connectBroker(urls: string | string[], name: string, role: ConnectionRole, logger: Logger): AmqpConnectionManager {
  const connection = amqp.connect(typeof urls === 'string' ? [urls] : urls, {
    heartbeatIntervalInSeconds: 5,
    reconnectTimeInSeconds: 1,
    connectionOptions: { noDelay: true, clientProperties: { connection_name: `${name} (${role})` } },
  });
  logger = logger.child({ connection: role });
  connection.on('connect', ({ connection: model, url }) => {
    coalesceWrites(model);
    logger.info({ broker: redact(urlText(url)) }, 'connected to RabbitMQ');
  });
  connection.on('disconnect', ({ err }) => logger.warn({ err: err?.message }, 'disconnected from RabbitMQ; reconnecting'));
  connection.on('connectFailed', ({ err, url }) => logger.warn({ err: err?.message, broker: redact(urlText(url)) }, 'cannot reach RabbitMQ; retrying'));
  connection.on('blocked', ({ reason }) => {
    observeBlocked(role, true);
    logger.warn({ reason }, 'RabbitMQ blocked this connection: publishing waits until the alarm clears');
  });
  connection.on('unblocked', () => {
    observeBlocked(role, false);
    logger.info('RabbitMQ unblocked this connection');
  });
  connection.on('disconnect', () => observeBlocked(role, false));
  // A channel whose setup failed (a declaration refused) is closed and, while the connection stays up, never
  // opened again by amqp-connection-manager; unheard, its error would kill the process. So every channel says
  // why and reconnects (to the next node of a cluster), which runs every channel's setup again.
  const createChannel = connection.createChannel.bind(connection);
  connection.createChannel = (options) => {
    const channel = createChannel(options);
    channel.on('error', (error: Error, { name }: { name?: string } = {}) => {
      logger.error({ err: error.message, channel: name }, 'channel setup failed; reconnecting');
      connection.reconnect();
    });
    return channel;
  };
  return connection;
}

const urlText = (url: string | Options.Connect | undefined): string => (typeof url === 'string' ? url : `${url?.protocol ?? 'amqp'}://${url?.hostname}:${url?.port}`);

/** The URL without its password, for logs and error messages. */
export const redact = (url: string): string => url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');

/**
 * amqplib hands the frames of all its channels to the socket in one pass (its muxer), but one write
 * each: a batch of publishes and acks cost a system call and a TCP segment apiece, here and in RabbitMQ.
 * Corked for the pass, they leave as one write.
 */
function coalesceWrites(model: unknown): void {
  const muxer = (model as { connection?: { muxer?: { out?: NodeJS.WritableStream & { cork(): void; uncork(): void }; _readIncoming?: () => void } } })
    .connection?.muxer;
  const out = muxer?.out;
  const pass = muxer?._readIncoming;
  if (!muxer || !out || typeof pass !== 'function' || typeof out.cork !== 'function') return;
  muxer._readIncoming = () => {
    out.cork();
    try {
      pass.call(muxer);
    } finally {
      out.uncork();
    }
  };
}
