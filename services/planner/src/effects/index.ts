export { createBusEffects, type BusEffects, type BusEffectsOptions } from './bus-effects.ts';
export { CommandGateway, type EffectsBus } from './command-gateway.ts';
export { HeartbeatWaiter, heartbeatMatches } from './heartbeat-waiter.ts';
export { HostClaims, claimOwner, DEFAULT_CLAIM_TTL_MS } from './host-claims.ts';
export { ProgressPublisher, progressMsgId } from './progress-publisher.ts';
