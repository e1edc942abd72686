/** A startup problem the operator must fix; the CLI prints its message, without a stack trace, and exits 2. */
export class StartupError extends Error {}
