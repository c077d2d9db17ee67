import { aptInstall, canAptInstall, isExecutable } from './install.js';

/** Where Debian's `chromium` package puts the browser. */
const DEBIAN_CHROMIUM = '/usr/bin/chromium';

const HOW_TO_GET_ONE =
  'install Debian\'s "chromium" package (apt-get install chromium; the tests do that themselves when run as root) ' +
  'or set CHROMIUM_PATH to a Chromium or Chrome executable';

/**
 * The Chromium the browser tests drive (playwright-core downloads none): CHROMIUM_PATH if set, else
 * Debian's at /usr/bin/chromium, else, as root where apt-get exists, that package installed now
 * (which takes a few minutes: the global setup does it before any suite, test/helpers/global-setup.ts). Rejects with how to get one when none can be had: the tests that
 * need it fail rather than skip.
 */
export async function findChromium(): Promise<string> {
  const configured = process.env.CHROMIUM_PATH;
  if (configured) {
    if (isExecutable(configured)) return configured;
    throw new Error(`CHROMIUM_PATH=${configured} is not an executable file: ${HOW_TO_GET_ONE}`);
  }
  if (isExecutable(DEBIAN_CHROMIUM)) return DEBIAN_CHROMIUM;
  if (!canAptInstall()) {
    throw new Error(`no Chromium at ${DEBIAN_CHROMIUM} and CHROMIUM_PATH is not set: ${HOW_TO_GET_ONE}`);
  }
  await aptInstall(['chromium'], HOW_TO_GET_ONE);
  if (!isExecutable(DEBIAN_CHROMIUM)) throw new Error(`apt-get installed "chromium" but ${DEBIAN_CHROMIUM} is not there: ${HOW_TO_GET_ONE}`);
  return DEBIAN_CHROMIUM;
}
