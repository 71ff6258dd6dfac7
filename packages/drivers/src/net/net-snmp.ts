/** net-snmp resolved from this package, with the shared typed view of it. */
import { loadNetSnmp } from '@firebreak/shared/net-snmp';

export type * from '@firebreak/shared/net-snmp';
export const snmp = loadNetSnmp(import.meta.url);
