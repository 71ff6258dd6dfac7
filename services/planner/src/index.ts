import type { BaseConfig, ServiceContext } from '@firebreak/shared';

/** The placement engine and incident machine arrive with issue #6. */
export async function start(_ctx: ServiceContext<BaseConfig>): Promise<void> {}
