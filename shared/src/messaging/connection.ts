import amqp, { type AmqpConnectionManager } from 'amqp-connection-manager';
import type { Logger } from 'pino';

/**
 * One broker connection per process, reconnecting by itself. Nagle is off (`noDelay`): with it on,
 * amqplib adds ~40 ms to every small confirm/ack round trip.
 */
export function connectBroker(url: string, name: string, logger: Logger): AmqpConnectionManager {
  const connection = amqp.connect([url], {
    heartbeatIntervalInSeconds: 5,
    reconnectTimeInSeconds: 1,
    connectionOptions: { noDelay: true, clientProperties: { connection_name: name } },
  });
  connection.on('connect', ({ connection: model }) => {
    coalesceWrites(model);
    logger.info({ broker: redact(url) }, 'connected to RabbitMQ');
  });
  connection.on('disconnect', ({ err }) => logger.warn({ err: err?.message }, 'disconnected from RabbitMQ; reconnecting'));
  connection.on('connectFailed', ({ err }) => logger.warn({ err: err?.message, broker: redact(url) }, 'cannot reach RabbitMQ; retrying'));
  connection.on('blocked', ({ reason }) => logger.warn({ reason }, 'RabbitMQ blocked this connection'));
  return connection;
}

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
