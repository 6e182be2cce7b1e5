/**
 * Entry of the process a sweep worker starts for one arm: the ordinary driftlab CLI, plus one
 * rule. The worker holds an IPC channel open to it; when the worker dies (killed, crashed, its
 * machine gone) the channel closes and the arm stops too, so a job BullMQ hands to another worker
 * after the stall is never run twice at once. The arm then resumes from its own saved state.
 */
if (process.send) {
  process.on('disconnect', () => {
    process.stderr.write('driftlab: error: the sweep worker that started this arm is gone; stopping (the arm resumes when the job is retried)\n');
    process.exit(137);
  });
  process.channel?.unref(); // the channel alone must not keep a finished arm alive
}
await import('../cli.js');
