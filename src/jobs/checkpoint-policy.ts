// When the worker checkpoints a job (docs/service.md, "Checkpoints and resuming"): one pure function, so the
// policy is tested on its own (test/jobs/checkpoint-policy.test.ts) and the attempt
// (job-attempt.ts) only asks it.

/** How often the worker checkpoints (ServiceConfig's CHECKPOINT_EVERY and CHECKPOINT_SECONDS). */
export interface CheckpointPolicy {
  checkpointEvery: number;
  checkpointSeconds: number;
}

/**
 * Whether the worker checkpoints right after this epoch's event: after epoch 1, every
 * checkpointEvery epochs, at the last epoch, at an early stop (stopReason: the child then holds the
 * best weights), and when checkpointSeconds have passed since the last checkpoint — but never twice
 * for one epoch (a resumed worker re-trains epochs up to the checkpoint it resumed from).
 */
export function checkpointDue(
  ev: { epoch: number; epochs: number; stopReason?: string },
  last: { epoch: number; at: number },
  policy: CheckpointPolicy,
  now: number,
): boolean {
  const due =
    ev.epoch === 1 ||
    ev.epoch % policy.checkpointEvery === 0 ||
    ev.epoch === ev.epochs ||
    ev.stopReason !== undefined ||
    now - last.at >= policy.checkpointSeconds * 1000;
  return due && ev.epoch > last.epoch;
}
