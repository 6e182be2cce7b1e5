/** An error meant for the user: one line saying what is wrong and what to do. No stack trace. */
export class DriftlabError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'DriftlabError';
  }
}
