import type { BaseConfig, ServiceContext } from '@firebreak/shared';

/** Command consumption and the drivers arrive with issue #5. */
export async function start(_ctx: ServiceContext<BaseConfig>): Promise<void> {}
