/**
 * mulberry32: a tiny seeded generator of uniform numbers in [0, 1), for
 * whatever must be a pure function of a seed (a placement search, a generated
 * topology) or replayable (tests, benchmarks). Not for anything that must be
 * unpredictable.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
