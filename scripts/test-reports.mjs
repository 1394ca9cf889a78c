// Where a run of the integration suite against one server writes vitest's JSON report:
// scripts/matrix.mjs writes it (VITEST_JSON_OUTPUT), scripts/test-summary.mjs reads it.
import path from 'node:path';

/** The report of the suite's run against `server`, relative to the repository root. */
export const reportFile = (server) => path.join('test-results', `vitest-${server}.json`);
