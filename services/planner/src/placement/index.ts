export { defaultPolicy, UnplacedReason, type PlacementPolicy, type PlacementInput, type Placement, type Plan, type PlanScore } from './placement-types.ts';
export { planPlacement } from './plan-placement.ts';
export { compareScores } from './plan-score.ts';
export { checkPlan } from './check-plan.ts';
