/*
 * Unstable semantic-convention names Firebreak uses, copied here rather than
 * imported from `@opentelemetry/semantic-conventions/incubating`, which may
 * break in a minor release. Stable names (server.address, error.type, …)
 * come from `@opentelemetry/semantic-conventions` itself.
 * Source: semantic-conventions 1.38.0 (messaging spans, service resource).
 */

export const ATTR_MESSAGING_SYSTEM = 'messaging.system';
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
/** Low-cardinality form of the destination, e.g. `fb.res.{incident}.{command}`. */
export const ATTR_MESSAGING_DESTINATION_TEMPLATE = 'messaging.destination.template';
export const ATTR_MESSAGING_DESTINATION_SUBSCRIPTION_NAME = 'messaging.destination.subscription.name';
export const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name';
/** For JetStream, the `Nats-Msg-Id` header. */
export const ATTR_MESSAGING_MESSAGE_ID = 'messaging.message.id';
export const ATTR_MESSAGING_MESSAGE_CONVERSATION_ID = 'messaging.message.conversation_id';
export const ATTR_MESSAGING_MESSAGE_BODY_SIZE = 'messaging.message.body.size';
/** For JetStream, the durable consumer; for core NATS, the queue group. */
export const ATTR_MESSAGING_CONSUMER_GROUP_NAME = 'messaging.consumer.group.name';
export const ATTR_MESSAGING_BATCH_MESSAGE_COUNT = 'messaging.batch.message_count';
export const ATTR_MESSAGING_CLIENT_ID = 'messaging.client.id';

/** NATS has no well-known value in the conventions; this is the custom one. */
export const MESSAGING_SYSTEM_VALUE_NATS = 'nats';

export const messagingOperationTypes = {
  create: 'create',
  send: 'send',
  receive: 'receive',
  process: 'process',
  settle: 'settle',
} as const;
export type MessagingOperationType = (typeof messagingOperationTypes)[keyof typeof messagingOperationTypes];

export const ATTR_SERVICE_INSTANCE_ID = 'service.instance.id';
