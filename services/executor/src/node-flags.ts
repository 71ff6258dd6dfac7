/**
 * The Node flags the executor runs with, wherever it is started: `firebreak
 * up`, the executor bench, deploy/compose.yaml and deploy/k8s/executor.yaml
 * (deploy/test/manifests.test.ts holds those two to this list). Kept apart
 * from the service so a launcher can read it without loading the drivers.
 *
 * A larger young generation: under a burst each command's objects live for
 * its whole round trip through Redis, the device and JetStream, so with V8's
 * default semi-space many are copied by a scavenge or two before they die.
 * At 64 MB the executor bench ran 8–10 % faster in three paired runs out of
 * three; the heap still grows only as far as the load takes it.
 */
export const executorNodeFlags: readonly string[] = ['--max-semi-space-size=64'];
