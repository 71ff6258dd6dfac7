import type { BaseConfig, ServiceContext } from '@firebreak/shared';

/** Heartbeat, BMC and SNMP failure detection arrives with issue #4. */
export async function start(_ctx: ServiceContext<BaseConfig>): Promise<void> {}
