export { readinessReport, readinessRun, type ReadinessInput, type ReadinessRun } from './readiness.ts';
export { startReadiness, type ReadinessService, type ReadinessServiceOptions } from './readiness-service.ts';
