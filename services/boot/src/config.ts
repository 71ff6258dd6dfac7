import { z } from 'zod';
import { defaultInstanceId, logLevels } from '@firebreak/shared';

/** `host:port` or `[v6]:port`. */
const listen = z
  .string()
  .transform((value, ctx) => {
    const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
    const port = Number(match?.[3]);
    const host = match?.[1] ?? match?.[2];
    if (host === undefined || !Number.isInteger(port) || port > 65_535) {
      ctx.addIssue({ code: 'custom', message: 'expected host:port' });
      return z.NEVER;
    }
    return { host, port };
  })
  .describe('e.g. 127.0.0.1:8081 or 0.0.0.0:8081');

/**
 * The boot service keeps its state in files (that dnsmasq reads too), not in
 * NATS or Redis, so it reads none of the base configuration's connections.
 */
export const bootConfigSchema = z.object({
  FB_BOOT_DIR: z.string().min(1).describe('directory of the entries, e.g. /var/lib/firebreak/boot'),
  FB_BOOT_LISTEN: listen.default({ host: '127.0.0.1', port: 8081 }),
  FB_BOOT_PUBLIC_URL: z
    .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' })
    .optional()
    .describe('the URL hosts reach this service at, e.g. http://10.0.0.5:8081'),
  LOG_LEVEL: z.enum(logLevels).default('info'),
  SERVICE_INSTANCE_ID: z.string().default(defaultInstanceId),
});
export type BootConfig = z.output<typeof bootConfigSchema>;
