/**
 * Turns a raw heartbeat payload into a `Heartbeat`, or undefined when it is
 * not one. The shared zod schema decides what is valid.
 */
import { Heartbeat } from '@firebreak/shared';

const decoder = new TextDecoder();

export function parseHeartbeat(data: Uint8Array): Heartbeat | undefined {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
  const result = Heartbeat.safeParse(json);
  return result.success ? result.data : undefined;
}
