import { z } from 'zod';

/** An id that is safe as a NATS subject token and a Redis key part. */
export const Id = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/, 'must be 1-128 letters, digits, "-" or "_", starting with a letter or digit');
export type Id = z.infer<typeof Id>;

export const Mac = z
  .string()
  .regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i, 'not a MAC address (expected six hex pairs like 52:54:00:12:34:56)')
  .transform((mac) => mac.toLowerCase());
export type Mac = z.infer<typeof Mac>;

export const Wwpn = z
  .string()
  .regex(/^[0-9a-f]{2}(:[0-9a-f]{2}){7}$/i, 'not a WWPN (expected eight hex pairs like 50:01:43:80:12:34:56:78)')
  .transform((w) => w.toLowerCase());

export const Iqn = z
  .string()
  .regex(/^iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:.+)?$/i, 'not an iSCSI IQN (expected iqn.YYYY-MM.reverse.domain[:name])');

/**
 * A storage initiator: a Fibre Channel WWPN or an iSCSI IQN. Not a z.union:
 * when both branches fail, zod reports only the last one, so a mistyped WWPN
 * was refused as "not an iSCSI IQN".
 */
export const Initiator = z
  .string()
  .refine(
    (value) => Wwpn.safeParse(value).success || Iqn.safeParse(value).success,
    'not a WWPN (eight hex pairs like 50:01:43:80:12:34:56:78) or an iSCSI IQN (iqn.YYYY-MM.reverse.domain[:name])',
  )
  .transform((value) => (Wwpn.safeParse(value).success ? value.toLowerCase() : value));
export type Initiator = z.infer<typeof Initiator>;

export const VlanId = z.number().int().min(1, 'VLAN ids run 1-4094').max(4094, 'VLAN ids run 1-4094');

/** Milliseconds since the epoch. */
export const EpochMs = z.number().int().nonnegative();

export const Arch = z.enum(['x86_64', 'aarch64', 'ppc64le', 's390x', 'sparc64', 'riscv64']);
export type Arch = z.infer<typeof Arch>;

/** 0 is the most critical tier. */
export const PriorityTier = z.number().int().min(0).max(3);

/**
 * Where a secret lives, never the secret: `env:VAR_NAME` or `file:/path[#key]`.
 */
export const CredentialsRef = z
  .string()
  .regex(/^(env:[A-Z_][A-Z0-9_]*|file:\/[^#\s]+(#[\w.-]+)?)$/, 'must be a reference like env:BMC_PASSWORD or file:/etc/firebreak/bmc.json#r1, never the secret itself');

export const FailureDomainKind = z.enum(['site', 'rack', 'pdu', 'tor']);
export type FailureDomainKind = z.infer<typeof FailureDomainKind>;

export const FailureDomain = z.object({
  kind: FailureDomainKind,
  id: Id,
  site: Id,
});
export type FailureDomain = z.infer<typeof FailureDomain>;
